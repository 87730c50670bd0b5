package main

import (
	"database/sql"
	"encoding/json"
	"math"
	"path/filepath"
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
