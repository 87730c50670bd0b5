package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/duck"
)

// cdw runs the CLI in-process and returns exit code, stdout and stderr.
func cdw(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	full := append([]string{args[0], "--log-level", "warn"}, args[1:]...)
	code := run(full, &o, &e)
	return code, o.String(), e.String()
}

func memDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := duck.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// martChecksum is an order-independent checksum of a Parquet mart's content.
func martChecksum(t *testing.T, db *sql.DB, path string) string {
	t.Helper()
	var h string
	if err := db.QueryRow(`SELECT count(*) || ':' || coalesce(md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY CAST(t AS VARCHAR))), '')
		FROM read_parquet(?) t`, path).Scan(&h); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return h
}

func rawRows(t *testing.T, dir string) int64 {
	t.Helper()
	states, err := extract.StateStore{Dir: dir}.All()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, s := range states {
		for _, f := range s.Files {
			n += f.Rows
		}
	}
	return n
}

func TestDemoEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	code, stdout, stderr := cdw(t, "demo", "--dir", dir, "--customers", "800")
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "Segment summary") || !strings.Contains(stdout, "champions") {
		t.Fatalf("demo output lacks the segment summary:\n%s", stdout)
	}
	db := memDB(t)
	seg := filepath.Join(dir, "marts", "customer_segments.parquet")
	sum := filepath.Join(dir, "marts", "segment_summary.parquet")
	var rows, customers, ordered int64
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT customer_id) FROM read_parquet(?)`, seg).Scan(&rows, &customers); err != nil {
		t.Fatal(err)
	}
	// Every customer with an order, once.
	if err := db.QueryRow(`SELECT count(DISTINCT customer) FROM read_csv(?) WHERE TRY_CAST(qty AS INT) IS NOT NULL AND TRY_CAST(ordered_at AS TIMESTAMP) IS NOT NULL`,
		filepath.Join(dir, "sources", "orders.csv")).Scan(&ordered); err != nil {
		t.Fatal(err)
	}
	if rows != customers || rows != ordered {
		t.Fatalf("customer_segments has %d rows, %d distinct customers; sources have %d ordering customers", rows, customers, ordered)
	}
	var segRows, groups, segCustomers int64
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT (business_unit, segment)), sum(customers) FROM read_parquet(?)`, sum).Scan(&segRows, &groups, &segCustomers); err != nil {
		t.Fatal(err)
	}
	if segRows != groups || segCustomers != rows {
		t.Fatalf("segment_summary: %d rows, %d distinct unit×segment, %d customers (want %d)", segRows, groups, segCustomers, rows)
	}
	// The two malformed demo rows are in quarantine with line and reason.
	qs, _ := filepath.Glob(filepath.Join(dir, "quarantine", "shop", "orders", "*.parquet"))
	if len(qs) != 1 {
		t.Fatalf("quarantine files: %v", qs)
	}
	var bad int64
	var reasons string
	if err := db.QueryRow(`SELECT count(*), string_agg(reason, ' | ') FROM read_parquet(?) WHERE line > 1`, qs[0]).Scan(&bad, &reasons); err != nil {
		t.Fatal(err)
	}
	if bad != 2 || !strings.Contains(reasons, "order_ts") || !strings.Contains(reasons, "quantity") {
		t.Fatalf("quarantine: %d rows: %s", bad, reasons)
	}

	// A second run over unchanged sources adds no raw rows and rebuilds identical marts.
	before := rawRows(t, dir)
	marts, _ := filepath.Glob(filepath.Join(dir, "marts", "*.parquet"))
	if len(marts) < 2 {
		t.Fatalf("published marts: %v", marts)
	}
	sums := map[string]string{}
	for _, m := range marts {
		sums[m] = martChecksum(t, db, m)
	}
	cfg := filepath.Join(dir, "cdw.yaml")
	if code, _, stderr := cdw(t, "run", "--config", cfg); code != 0 {
		t.Fatalf("second run exit %d: %s", code, stderr)
	}
	if after := rawRows(t, dir); after != before {
		t.Fatalf("raw rows went from %d to %d on an unchanged rerun", before, after)
	}
	for _, m := range marts {
		if martChecksum(t, db, m) != sums[m] {
			t.Errorf("%s changed on an unchanged rerun", filepath.Base(m))
		}
	}

	// cdw query: table, csv and json, over the published marts.
	code, stdout, stderr = cdw(t, "query", "--dir", dir, "--format", "csv", "SELECT segment, sum(customers) AS n FROM segment_summary GROUP BY segment ORDER BY segment")
	if code != 0 || !strings.HasPrefix(stdout, "segment,n\n") || !strings.Contains(stdout, "champions,") {
		t.Fatalf("query csv: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = cdw(t, "query", "--config", cfg, "--format", "json", "SELECT count(*) AS n FROM customer_segments")
	var obj map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &obj) != nil || obj["n"] != float64(rows) {
		t.Fatalf("query json: exit %d: %q", code, stdout)
	}
	code, stdout, _ = cdw(t, "query", "--dir", dir, "SELECT segment FROM segment_summary LIMIT 3")
	if code != 0 || !strings.Contains(stdout, "(3 rows)") {
		t.Fatalf("query table: %d %q", code, stdout)
	}
	// Read-only: writes and file access are refused with one line.
	for _, q := range []string{"CREATE TABLE x AS SELECT 1", "COPY segment_summary TO '/tmp/cdw-leak.csv'"} {
		code, _, stderr = cdw(t, "query", "--dir", dir, q)
		if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Fatalf("query %q: exit %d, stderr %q", q, code, stderr)
		}
	}
	// Run records are queryable in the warehouse.
	code, stdout, stderr = cdw(t, "query", "--dir", dir, "--warehouse", "--format", "csv", "SELECT count(DISTINCT run_id) AS runs FROM cdw_model_runs")
	if code != 0 || stdout != "runs\n2\n" {
		t.Fatalf("query --warehouse: exit %d: %q %s", code, stdout, stderr)
	}
	// cdw runs shows both runs.
	code, stdout, _ = cdw(t, "runs", "--config", cfg)
	if code != 0 || strings.Count(stdout, "success") != 2 {
		t.Fatalf("runs:\n%s", stdout)
	}
}

func TestConfigErrorsNameKeyAndFile(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"warehouse: x\nsourcez: []\n":                                        `unknown key "sourcez"`,
		"warehouse: x\n":                                                     `missing required key "sources"`,
		"sources:\n  - kind: files\n    entities: {}\n":                      `missing required key "name"`,
		"sources:\n  - name: a\n    kind: ftp\n    entities: {orders: {}}\n": `unknown source kind "ftp"`,
		"sources: []\nduckdb: {threads: many}\n":                             `duckdb.threads`,
	}
	for body, want := range cases {
		cfg := filepath.Join(dir, "cdw.yaml")
		os.WriteFile(cfg, []byte(body), 0o644)
		code, _, stderr := cdw(t, "run", "--config", cfg)
		if code == 0 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "cdw.yaml") {
			t.Errorf("config %q: exit %d, stderr %q; want %q and the file name", body, code, stderr, want)
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
			t.Errorf("config %q: error is %d lines, want one", body, n+1)
		}
	}
}

// TestUserModels: a model added in a user directory joins the DAG in the right
// place; a cycle is an error naming both files.
func TestUserModels(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	if code, _, stderr := cdw(t, "demo", "--dir", dir, "--customers", "200"); code != 0 {
		t.Fatal(stderr)
	}
	cfg := filepath.Join(dir, "cdw.yaml")
	body, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(body), "warehouse: .\n", "warehouse: .\nmodels: [my_models]\n", 1)), 0o644)
	os.MkdirAll(filepath.Join(dir, "my_models", "marts"), 0o755)
	os.WriteFile(filepath.Join(dir, "my_models", "marts", "vip_customers.sql"), []byte(
		"-- materialized: table\n-- description: Champions with over 1000 net revenue.\nSELECT customer_id, business_unit, monetary FROM customer_segments WHERE segment = 'champions' AND monetary > 1000\n"), 0o644)
	code, stdout, stderr := cdw(t, "models", "--config", cfg)
	if code != 0 {
		t.Fatal(stderr)
	}
	pos := func(name string) int { return strings.Index(stdout, " "+name+" ") }
	if pos("vip_customers") < 0 || pos("vip_customers") < pos("customer_segments") || pos("customer_segments") < pos("stg_orders") {
		t.Fatalf("models out of order:\n%s", stdout)
	}
	if code, _, stderr := cdw(t, "run", "--config", cfg); code != 0 {
		t.Fatal(stderr)
	}
	var n int64
	if err := memDB(t).QueryRow(`SELECT count(*) FROM read_parquet(?)`, filepath.Join(dir, "marts", "vip_customers.parquet")).Scan(&n); err != nil || n == 0 {
		t.Fatalf("vip_customers published with %d rows: %v", n, err)
	}
	// A cycle.
	os.WriteFile(filepath.Join(dir, "my_models", "a_model.sql"), []byte("SELECT * FROM b_model\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "my_models", "b_model.sql"), []byte("SELECT * FROM a_model\n"), 0o644)
	code, _, stderr = cdw(t, "models", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "cycle") || !strings.Contains(stderr, "a_model.sql") || !strings.Contains(stderr, "b_model.sql") {
		t.Fatalf("cycle: exit %d: %s", code, stderr)
	}
}

// TestSelectOnNewWarehouse: a partial selection on a new warehouse publishes
// the marts it built and does not fail on the ones it did not.
func TestSelectOnNewWarehouse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	if code, _, stderr := cdw(t, "demo", "--dir", dir, "--customers", "100"); code != 0 {
		t.Fatal(stderr)
	}
	os.Remove(filepath.Join(dir, "warehouse.duckdb"))
	os.RemoveAll(filepath.Join(dir, "marts"))
	os.Remove(filepath.Join(dir, "marts.duckdb"))
	code, stdout, stderr := cdw(t, "run", "--config", filepath.Join(dir, "cdw.yaml"), "--select", "+customer_segments")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !regexp.MustCompile(`Published 1 marts as version \S+: customer_segments\n`).MatchString(stdout) {
		t.Fatalf("want only customer_segments published:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "marts", "customer_segments.parquet")); err != nil {
		t.Fatal(err)
	}
}
