package main

import (
	"database/sql"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/transform/clv"
)

// TestQueryCLVFunctions asks the published marts for a horizon no mart
// stores: the CLV functions must be there, and agree with the Go models.
func TestQueryCLVFunctions(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("duckdb", filepath.Join(dir, "marts.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE clv_params AS SELECT 0.243 AS r, 4.414 AS alpha, 0.793 AS a, 2.426 AS b`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, stdout, stderr := cdw(t, "query", "--dir", dir, "--format", "json",
		`SELECT bgnbd_expected_purchases(r, alpha, a, b, 39, 2, 30.43, 38.86) AS e,
		        bgnbd_p_alive(r, alpha, a, b, 2, 30.43, 38.86) AS p FROM clv_params`)
	if code != 0 {
		t.Fatalf("query exit %d: %s", code, stderr)
	}
	var got struct{ E, P float64 }
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("%v in %q", err, stdout)
	}
	m := clv.BGNBD{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
	if want := m.ExpectedPurchases(39, 2, 30.43, 38.86); math.Abs(got.E-want) > 1e-9 || math.Abs(got.E-1.226) > 0.001 {
		t.Errorf("bgnbd_expected_purchases = %v, want %v (FHL 2005: 1.226)", got.E, want)
	}
	if want := m.ProbabilityAlive(2, 30.43, 38.86); math.Abs(got.P-want) > 1e-9 {
		t.Errorf("bgnbd_p_alive = %v, want %v", got.P, want)
	}
}

// marts writes a marts.duckdb with table t(n) under dir.
func marts(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open("duckdb", filepath.Join(dir, "marts.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t AS SELECT 7 AS n`); err != nil {
		t.Fatal(err)
	}
}

// TestQuerySettings: cdw query runs under the duckdb: limits of cdw.yaml.
func TestQuerySettings(t *testing.T) {
	dir := t.TempDir()
	marts(t, dir)
	cfg := filepath.Join(dir, "cdw.yaml")
	if err := os.WriteFile(cfg, []byte("warehouse: .\nsources: []\nduckdb: {memory_limit: 1GB, threads: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cdw(t, "query", "--config", cfg, "--format", "csv",
		"SELECT current_setting('memory_limit') AS mem, current_setting('threads') AS threads")
	// DuckDB shows 1GB as 953.6 MiB.
	if code != 0 || stdout != "mem,threads\n953.6 MiB,1\n" {
		t.Fatalf("query settings: exit %d: %q %s", code, stdout, stderr)
	}
}

// TestQueryStatements: several statements are refused (DuckDB would print only
// the last result); DuckDB's caret stays under the error position.
func TestQueryStatements(t *testing.T) {
	dir := t.TempDir()
	marts(t, dir)
	code, stdout, stderr := cdw(t, "query", "--dir", dir, "SELECT 1; SELECT 2")
	if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "cdw query: give one SQL statement") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("two statements: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = cdw(t, "query", "--dir", dir, "SELECT n FORM t")
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if code != 1 || stdout != "" || len(lines) != 3 || !strings.HasPrefix(lines[0], "cdw query: ") ||
		lines[1] != "LINE 1: SELECT n FORM t" || strings.TrimSpace(lines[2]) != "^" {
		t.Fatalf("syntax error: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	// "SELECT n FORM t" reads as "n AS FORM", so the error is at "t".
	if caret, at := strings.Index(lines[2], "^"), strings.LastIndex(lines[1], "t"); caret != at {
		t.Errorf("caret at column %d, want %d under the t:\n%s\n%s", caret, at, lines[1], lines[2])
	}
}
