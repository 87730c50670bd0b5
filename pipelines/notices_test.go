package pipelines_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/pipelines"
)

// runFiles writes files and cdw.yaml into a temp directory, runs the whole
// pipeline and returns its report and the warehouse, opened read-only.
func runFiles(t *testing.T, cfgYAML string, files map[string]string) (*pipelines.Report, *sql.DB) {
	t.Helper()
	return runFilesIn(t, t.TempDir(), cfgYAML, files)
}

// runFilesIn is runFiles in a given directory, so a second run sees the
// warehouse of the first (the database handle of a run must be closed
// before the next run).
func runFilesIn(t *testing.T, dir, cfgYAML string, files map[string]string) (*pipelines.Report, *sql.DB) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "cdw.yaml")
	if err := os.WriteFile(cfgPath, []byte("warehouse: wh\n"+cfgYAML+publishYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipelines.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := (&pipelines.Runner{Cfg: cfg}).Run(context.Background(), pipelines.Options{
		Steps: pipelines.AllSteps, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	db, err := sql.Open("duckdb", filepath.Join(cfg.Warehouse, "warehouse.duckdb")+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return rep, db
}

func noticeTexts(rep *pipelines.Report) string {
	var b strings.Builder
	for _, n := range rep.Notices {
		b.WriteString(n.String() + "\n")
	}
	return b.String()
}

// A marketplace's contacts carry a person id, not an e-mail: mapped to
// email it linked no one and nothing said so. The run now names the
// rejected values, and match_key links the two records of one person.
func TestIdentityNoticesAndMatchKey(t *testing.T) {
	cfg := `vars:
  as_of: 2024-05-01
sources:
  - name: shop
    kind: files
    entities:
      orders:
        path: orders.csv
        columns: {order_id: order_id, customer_id: customer_id, order_ts: order_ts, quantity: quantity, unit_price: unit_price}
  - name: market
    kind: files
    entities:
      contacts:
        path: people.csv
        columns: {contact_id: id, customer_id: customer_id, email: person, phone: phone}
  - name: reviews
    kind: files
    entities:
      contacts:
        path: reviewers.csv
        columns: {contact_id: id, match_key: person, name: name}
`
	rep, db := runFiles(t, cfg, map[string]string{
		"orders.csv": "order_id,customer_id,order_ts,quantity,unit_price\n" +
			"1,A,2024-05-01 10:00:00,1,10\n2,A,2024-05-03 10:00:00,1,10\n",
		"people.csv":    "id,customer_id,person,phone\np1,A,8f3a2c,0\np2,B,77b0e1,\n",
		"reviewers.csv": "id,person,name\nr1,8f3a2c,Ann\n",
	})
	got := noticeTexts(rep)
	for _, want := range []string{
		`WARNING: as_of 2024-05-01 (vars.as_of in the config): the marts ignore 1 order lines dated after it`,
		`WARNING: identity: contacts of market: 2 e-mail(s) without @ (e.g. "77b0e1"), 1 phone(s) with too few digits (e.g. "0") not used for matching`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("notices lack %q:\n%s", want, got)
		}
	}
	// the e-mail column held the person id: mapped to match_key instead, it links
	rep, db = runFiles(t, strings.Replace(cfg, "email: person", "match_key: person", 1), map[string]string{
		"orders.csv":    "order_id,customer_id,order_ts,quantity,unit_price\n1,A,2024-05-01 10:00:00,1,10\n",
		"people.csv":    "id,customer_id,person,phone\np1,A,8f3a2c,\np2,B,77b0e1,\n",
		"reviewers.csv": "id,person,name\nr1,8f3a2c,Ann\n",
	})
	var key, matched string
	if err := db.QueryRow(`SELECT customer_key, matched_on FROM customer_identity WHERE member_id = 'r1'`).Scan(&key, &matched); err != nil {
		t.Fatal(err)
	}
	if key != "A" || matched != "match_key" {
		t.Errorf("reviewer r1: customer %s matched on %q, want A on match_key", key, matched)
	}
	if got := noticeTexts(rep); strings.Contains(got, "WARNING") {
		t.Errorf("unexpected warnings:\n%s", got)
	}
}

// A warehouse with only a CRM export: as_of comes from the contacts, and
// every contact is a customer in customer_360.
func TestContactsOnlyWarehouse(t *testing.T) {
	rep, db := runFiles(t, `sources:
  - name: crm
    kind: files
    entities:
      contacts:
        path: contacts.csv
        columns: {contact_id: id, name: name, email: email, business_unit: unit, last_contact_at: last_contact}
`, map[string]string{"contacts.csv": "id,name,email,unit,last_contact\n" +
		"c1,Ann,ann@example.com,North,2024-03-01\nc2,Bob,bob@example.com,South,2024-04-02\n"})
	if got, want := noticeTexts(rep), "as_of 2024-04-02 (the latest contact date): no order line, ticket or contact after it\n"; got != want {
		t.Errorf("notices:\n%s\nwant\n%s", got, want)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM customer_360 WHERE as_of = DATE '2024-04-02' AND name IS NOT NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("customer_360: %d named customers at as_of 2024-04-02, want 2", n)
	}
	// churn_risk lists both, unscored: a CRM alone has no churn signal.
	// Ann, last contacted 32 days before as_of, is on the follow-up list.
	risk := rows(t, db, `SELECT c.name, r.churn_band, r.churn_score IS NULL, r.has_orders, r.drivers
		FROM churn_risk r JOIN customer_360 c USING (customer_id)`)
	expectRows(t, "churn_risk", risk, map[string][]string{
		"Ann": {"unscored", "true", "false", "no orders or tickets to score"},
		"Bob": {"unscored", "true", "false", "no orders or tickets to score"},
	})
	follow := rows(t, db, `SELECT name, reason FROM service_followup`)
	expectRows(t, "service_followup", follow, map[string][]string{"Ann": {"no touch for 32 days"}})
}

// A warehouse with only a helpdesk export: as_of comes from the tickets,
// and the ticket customers are in customer_360 and on the follow-up list.
func TestTicketsOnlyWarehouse(t *testing.T) {
	rep, db := runFiles(t, `sources:
  - name: helpdesk
    kind: files
    entities:
      tickets:
        path: tickets.csv
        columns: {ticket_id: id, customer_id: customer, created_at: created, resolved_at: resolved, category: category}
`, map[string]string{"tickets.csv": "id,customer,created,resolved,category\n" +
		"T1,A,2024-01-02 10:00:00,2024-01-03 10:00:00,repair\nT2,B,2024-03-01 10:00:00,,complaint\n"})
	if got, want := noticeTexts(rep), "as_of 2024-03-01 (the latest ticket date): no order line, ticket or contact after it\n"; got != want {
		t.Errorf("notices:\n%s\nwant\n%s", got, want)
	}
	var n360, followups int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM customer_360 WHERE open_tickets IS NOT NULL OR customer_id IN ('A', 'B')),
	                              (SELECT count(*) FROM service_followup WHERE customer_id = 'A' AND no_touch)`).Scan(&n360, &followups); err != nil {
		t.Fatal(err)
	}
	if n360 != 2 || followups != 1 {
		t.Errorf("customer_360 has %d of the 2 ticket customers; A (last touch 57 days before as_of) on the follow-up list %d times, want 1", n360, followups)
	}
	// churn_risk scores both from the ticket signals alone: B's open
	// complaint is 10 of the 30 ticket points (open 5, complaint 5).
	risk := rows(t, db, `SELECT customer_id, churn_score, churn_band, has_orders, weight_present, drivers FROM churn_risk`)
	expectRows(t, "churn_risk", risk, map[string][]string{
		"A": {"0", "low", "false", "30", ""},
		"B": {"33", "low", "false", "30", "1 open ticket(s); 1 complaint(s) in 90 days"},
	})
}

// An export that lists the same order line twice with different values:
// the later line wins (not whichever DuckDB read last), and the run says
// how many keys were duplicated and by which rule one was kept.
func TestDuplicateKeysInOneBatch(t *testing.T) {
	rep, db := runFiles(t, `sources:
  - name: shop
    kind: files
    entities:
      orders:
        path: orders.csv
        columns: {order_id: order_id, line_no: line, customer_id: customer_id, order_ts: order_ts, quantity: quantity, unit_price: unit_price}
`, map[string]string{"orders.csv": "order_id,line,customer_id,order_ts,quantity,unit_price\n" +
		"1,1,A,2024-05-01 10:00:00,1,10\n1,1,A,2024-05-01 10:00:00,1,12\n2,1,B,2024-05-01 11:00:00,1,5\n" +
		"1,1,A,2024-05-01 10:00:00,1,15\n"})
	want := "WARNING: orders of shop: 1 key(s) occur more than once within one file (1 file(s); e.g. 1/1): kept one row per key, the latest updated_at, then the later file, then the later line of the file (see raw_duplicate_keys)"
	if got := noticeTexts(rep); !strings.Contains(got, want) {
		t.Errorf("notices lack\n%s\ngot\n%s", want, got)
	}
	var amount float64
	if err := db.QueryRow(`SELECT net_amount FROM stg_orders WHERE order_id = '1'`).Scan(&amount); err != nil {
		t.Fatal(err)
	}
	if amount != 15 {
		t.Errorf("order 1 line 1: net_amount %v, want 15 (the file's last version)", amount)
	}
}
