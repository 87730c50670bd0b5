package files_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/datasets"
)

// TestCompositeKeyCDNOW loads the real CDNOW master file with the order key
// customer + day (a day alone is not unique per customer) and checks that
// every (customer, day) pair is one order and no amount is cut short.
func TestCompositeKeyCDNOW(t *testing.T) {
	master := datasets.Path(t, "cdnow/CDNOW_master.txt")
	dir, wh := filepath.Dir(master), t.TempDir()
	src := openSource(t, dir, `
entities:
  orders:
    path: CDNOW_master.txt
    format: fixed
    skip_lines: 1
    fields: [{name: cust, start: 1, width: 6}, {name: day, start: 8, width: 8},
             {name: cds, start: 17, width: 2}, {name: usd, start: 19, width: 8}]
    timestamp_formats: ["20060102"]
    columns: {order_id: [cust, day], customer_id: cust, order_ts: day, quantity: cds, amount: usd}
`)
	x := &extract.Extractor{Dir: wh}
	res, err := x.Extract(context.Background(), "cdnow", src, "orders", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 69659 || res.Rejected != 0 {
		t.Fatalf("rows=%d rejected=%d, want 69659 and 0", res.Rows, res.Rejected)
	}
	// Figures computed from the file with awk: 67,591 distinct (customer,
	// day) pairs; the dollar column sums to 2,500,315.63.
	var orders, mismatched int
	var cents int64
	var sample string
	if err := rawQuery(t, wh, "cdnow", "orders", `SELECT count(DISTINCT order_id),
		count(*) FILTER (WHERE order_id <> customer_id || chr(31) || strftime(order_ts, '%Y%m%d')),
		sum(round(amount*100))::BIGINT, min(order_id) FROM RAW`).Scan(&orders, &mismatched, &cents, &sample); err != nil {
		t.Fatal(err)
	}
	if orders != 67591 || mismatched != 0 || cents != 250031563 {
		t.Fatalf("orders=%d mismatched=%d cents=%d, want 67591, 0, 250031563", orders, mismatched, cents)
	}
	if sample != "00001\x1f19970101" {
		t.Fatalf("first order_id = %q, want customer and day joined by U+001F", sample)
	}
}

// TestCompositeKeyCSV maps a two-column ticket key in a CSV file: a row
// missing a part is rejected naming the part, and a header lacking a part is
// an error naming it.
func TestCompositeKeyCSV(t *testing.T) {
	dir, wh := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "t.csv"), "desk,no,opened\n"+
		"EU,1,2024-01-02\n"+
		"US,1,2024-01-02\n"+
		",2,2024-01-03\n"+ // line 4: no desk
		"EU,2,2024-01-03\n")
	src := openSource(t, dir, `
entities:
  tickets:
    path: t.csv
    max_rejected: 100%
    columns: {ticket_id: [desk, no], created_at: opened}
`)
	x := &extract.Extractor{Dir: wh}
	res, err := x.Extract(context.Background(), "desk", src, "tickets", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 3 || res.Rejected != 1 {
		t.Fatalf("rows=%d rejected=%d, want 3 and 1", res.Rows, res.Rejected)
	}
	var ids string
	if err := rawQuery(t, wh, "desk", "tickets", "SELECT string_agg(replace(ticket_id, chr(31), '|'), ',' ORDER BY ticket_id) FROM RAW").Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if ids != "EU|1,EU|2,US|1" {
		t.Fatalf("ticket ids = %q", ids)
	}
	st, _ := extract.StateStore{Dir: wh}.Load("desk", "tickets")
	var reason string
	var line int
	if err := rawQuery(t, wh, "desk", "tickets", "SELECT reason, line FROM read_parquet('"+filepath.Join(wh, st.Quarantine[0].Path)+"')").Scan(&reason, &line); err != nil {
		t.Fatal(err)
	}
	if line != 4 || !strings.Contains(reason, `key part "desk" is empty`) {
		t.Fatalf("reject at line %d: %q", line, reason)
	}

	write(t, filepath.Join(dir, "u.csv"), "desk,opened\nEU,2024-01-02\n")
	src = openSource(t, dir, `
entities:
  tickets:
    path: u.csv
    columns: {ticket_id: [desk, no], created_at: opened}
`)
	_, err = x.Extract(context.Background(), "desk2", src, "tickets", false)
	if err == nil || !strings.Contains(err.Error(), `"no" not found in header`) {
		t.Fatalf("missing key part: %v", err)
	}
	for yml, want := range map[string]string{
		`{ticket_id: [desk, desk], created_at: opened}`:               `source column "desk" listed twice`,
		`{ticket_id: desk, created_at: opened, satisfaction: [a, b]}`: `only text columns`,
		`{ticket_id: {a: b}, created_at: opened}`:                     `unknown key "a" (known keys: value)`,
	} {
		err := openErr(t, dir, "entities:\n  tickets:\n    path: u.csv\n    columns: "+yml+"\n")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", yml, err, want)
		}
	}
}
