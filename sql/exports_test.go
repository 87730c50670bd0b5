package models_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFiles writes name → content into a fresh directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A CRM export without an updated_at column (most have none): every
// attribute must still reach the customer, including a customer known only
// from the CRM. They were all NULL ("Unassigned") because the latest value
// was picked by updated_at alone.
func TestContactsWithoutUpdatedAt(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"orders.csv": "order_id,customer_id,order_ts,quantity,unit_price\n" +
			"1,A,2024-05-01 10:00:00,1,10\n2,B,2024-05-02 10:00:00,1,20\n",
		"contacts.csv": "id,customer_no,name,email,phone,unit\n" +
			"c1,A,Anna Alpha,anna@example.com,0151 1234567,North\n" +
			"c2,B,Ben Beta,ben@example.com,,South\n" +
			"c3,,Paula Prospect,paula@example.com,,South\n",
	})
	db := build(t, fmt.Sprintf(`sources:
  - name: shop
    kind: files
    entities:
      orders:
        path: %[1]s/orders.csv
        columns: {order_id: order_id, customer_id: customer_id, order_ts: order_ts, quantity: quantity, unit_price: unit_price}
  - name: crm
    kind: files
    entities:
      contacts:
        path: %[1]s/contacts.csv
        columns: {contact_id: id, customer_id: customer_no, name: name, email: email, phone: phone, business_unit: unit}
`, dir), nil)
	got := rows(t, db, `SELECT coalesce(source_customer_ids, name), business_unit, name, email, phone
	                    FROM customer_360`)
	expectRows(t, "customer_360", got, map[string][]string{
		"A":              {"North", "Anna Alpha", "anna@example.com", "491511234567"},
		"B":              {"South", "Ben Beta", "ben@example.com", "NULL"},
		"Paula Prospect": {"South", "Paula Prospect", "paula@example.com", "NULL"},
	})
}

// A generic e-mail shared by 500 contacts (a shop's info@ address typed
// into every sign-up) must not merge 500 strangers into one customer;
// identity_quality names it. Two records of one person still merge.
func TestIdentitySharedValueNotLinked(t *testing.T) {
	var contacts strings.Builder
	contacts.WriteString("id,customer_no,email,phone\n")
	for i := range 500 {
		fmt.Fprintf(&contacts, "s%d,,info@shop.example,+1 555 %07d\n", i, i)
	}
	contacts.WriteString("a1,A,anna@example.com,\na2,,Anna@Example.com,+1 555 9999999\n")
	dir := writeFiles(t, map[string]string{
		"orders.csv":   "order_id,customer_id,order_ts,quantity,unit_price\n1,A,2024-05-01 10:00:00,1,10\n",
		"contacts.csv": contacts.String(),
	})
	db := build(t, fmt.Sprintf(`sources:
  - name: shop
    kind: files
    entities:
      orders:
        path: %[1]s/orders.csv
        columns: {order_id: order_id, customer_id: customer_id, order_ts: order_ts, quantity: quantity, unit_price: unit_price}
  - name: crm
    kind: files
    entities:
      contacts:
        path: %[1]s/contacts.csv
        columns: {contact_id: id, customer_id: customer_no, email: email, phone: phone}
`, dir), nil)
	if n := scalar[int](t, db, `SELECT count(DISTINCT customer_key) FROM customer_identity`); n != 501 {
		t.Errorf("%d customers, want 501 (500 strangers and Anna)", n)
	}
	if n := scalar[int](t, db, `SELECT count(*) FROM customer_identity WHERE customer_key = 'A'`); n != 3 {
		t.Errorf("customer A has %d members, want 3 (a1, a2 and the id A)", n)
	}
	got := rows(t, db, `SELECT metric || coalesce(':' || rule, '') || coalesce(':' || value, ''), amount FROM identity_quality`)
	expectRows(t, "identity_quality", got, map[string][]string{
		"skipped_value:email:info@shop.example": {"500"},
		"cluster_members_max":                   {"3"},
		"cluster_members_p99":                   {"1"},
		"customers":                             {"501"},
		"merged_customers:email":                {"1"},
		"members_matched:email":                 {"2"},
	})
	if len(got) != 13 {
		t.Errorf("identity_quality has %d rows, want 13: %v", len(got), got)
	}
}

// A shop in another time zone: its orders between 00:00 and 08:00 in
// Shanghai fell on the previous (UTC) day. With timezone: set, order days
// equal DuckDB's own zone conversion for every line, across DST changes
// (Europe/Berlin) too, and the marts measure recency in local days.
func TestReportingTimezone(t *testing.T) {
	var orders strings.Builder
	orders.WriteString("order_id,customer_id,order_ts,quantity,unit_price\n")
	start := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 30000 { // every 37 minutes for 25 months: every hour of the day, four DST changes
		ts := start.Add(time.Duration(i) * 37 * time.Minute)
		fmt.Fprintf(&orders, "%d,C%d,%s,1,10\n", i, i%50, ts.Format(time.RFC3339))
	}
	// the last order: 2025-02-20 18:30 UTC is 2025-02-21 02:30 in Shanghai
	orders.WriteString("last,LATE,2025-02-20T18:30:00Z,1,10\n")
	dir := writeFiles(t, map[string]string{"orders.csv": orders.String()})
	for _, tz := range []string{"Asia/Shanghai", "Europe/Berlin"} {
		t.Run(tz, func(t *testing.T) {
			db := build(t, fmt.Sprintf(`timezone: %s
sources:
  - name: shop
    kind: files
    entities:
      orders:
        path: %s/orders.csv
        columns: {order_id: order_id, customer_id: customer_id, order_ts: order_ts, quantity: quantity, unit_price: unit_price}
`, tz, dir), nil)
			if n := scalar[int](t, db, `SELECT count(*) FROM stg_orders WHERE order_date IS DISTINCT FROM timezone(?, order_ts)::DATE`, tz); n != 0 {
				t.Errorf("%d of 30001 order days differ from timezone(%q, order_ts)::DATE", n, tz)
			}
			if tz != "Asia/Shanghai" {
				return
			}
			got := rows(t, db, `SELECT customer_id, as_of::VARCHAR, last_order_date::VARCHAR, recency_days FROM customer_segments WHERE customer_id = 'LATE'`)
			expectRows(t, "customer_segments", got, map[string][]string{"LATE": {"2025-02-21", "2025-02-21", "0"}})
		})
	}
}
