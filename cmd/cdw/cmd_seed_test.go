package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDBTProjectWithCdwRun: a dbt project (transform/testdata/jaffle) named
// by dbt_project: in cdw.yaml, with cdw's built-in package off, loads its
// seeds with cdw seed, then builds, tests and publishes its marts with cdw
// run, with nothing in the project changed.
func TestDBTProjectWithCdwRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	if code, _, stderr := cdw(t, "demo", "--dir", dir, "--customers", "50"); code != 0 {
		t.Fatal(stderr)
	}
	jaffle := filepath.Join(dir, "jaffle")
	if err := os.CopyFS(jaffle, os.DirFS(filepath.Join("..", "..", "transform", "testdata", "jaffle"))); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cdw.yaml")
	body, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(body), "warehouse: .\n", "warehouse: .\nbuiltins: false\ndbt_project: jaffle\n", 1)), 0o644)

	// schema.yml descriptions are the models' documentation.
	code, stdout, stderr := cdw(t, "models", "--columns", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "customers — One row per customer, with their order history.") ||
		!regexpLine(stdout, "customer_id", "The customer's id in the shop.") {
		t.Fatalf("cdw models --columns: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = cdw(t, "seed", "--config", cfg)
	if code != 0 {
		t.Fatalf("cdw seed: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, s := range []string{"raw_customers", "raw_orders", "raw_payments"} {
		if !regexpLine(stdout, s, "success") {
			t.Errorf("cdw seed did not load %s:\n%s", s, stdout)
		}
	}
	if strings.Contains(stdout, "stg_orders") {
		t.Errorf("cdw seed built models:\n%s", stdout)
	}
	code, stdout, stderr = cdw(t, "run", "--config", cfg)
	if code != 0 {
		t.Fatalf("cdw run: exit %d\n%s%s", code, stdout, stderr)
	}
	if !regexpLine(stdout, "raw_orders", "up-to-date") || !regexpLine(stdout, "customers", "success") {
		t.Errorf("cdw run after cdw seed:\n%s", stdout)
	}
	var n int64
	if err := memDB(t).QueryRow(`SELECT count(*) FROM read_parquet(?)`, filepath.Join(dir, "marts", "customers.parquet")).Scan(&n); err != nil || n != 6 {
		t.Fatalf("customers published with %d rows: %v", n, err)
	}
	// schema.yml's descriptions travel with the marts: comments in
	// marts.duckdb, key-value metadata in the Parquet file.
	db := memDB(t)
	var table, column, kv string
	if _, err := db.Exec(`ATTACH '` + filepath.Join(dir, "marts.duckdb") + `' AS m (READ_ONLY)`); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT (SELECT comment FROM duckdb_tables() WHERE database_name = 'm' AND table_name = 'customers'),
		(SELECT comment FROM duckdb_columns() WHERE database_name = 'm' AND table_name = 'customers' AND column_name = 'customer_id'),
		(SELECT value::VARCHAR FROM parquet_kv_metadata(?) WHERE key::VARCHAR = 'description')`,
		filepath.Join(dir, "marts", "customers.parquet")).Scan(&table, &column, &kv); err != nil {
		t.Fatal(err)
	}
	if table != "One row per customer, with their order history." || column != "The customer's id in the shop." || kv != table {
		t.Errorf("published descriptions: table %q, column %q, Parquet %q", table, column, kv)
	}
	// The built-in package is off: none of its marts was built.
	if _, err := os.Stat(filepath.Join(dir, "marts", "customer_segments.parquet")); err == nil {
		t.Error("builtins: false, yet customer_segments was published")
	}
}
