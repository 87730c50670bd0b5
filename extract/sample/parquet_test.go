package sample

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// TestParquetMatchesCSV generates the same options as CSV and as Parquet and
// has DuckDB compare them row for row (EXCEPT ALL both ways), with the CSV's
// text cast to the Parquet file's types: same rows, same values, typed.
func TestParquetMatchesCSV(t *testing.T) {
	o := Options{Customers: 400, Orders: 4000, Seed: 11, Updates: 0.02}
	c, err := Write(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	p, err := WriteParquet(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	if p.OrderLines != c.OrderLines || p.TicketRows != c.TicketRows || p.ContactRows != c.ContactRows {
		t.Fatalf("counts differ: parquet %+v, csv %+v", p, c)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{{c.Orders, p.Orders}, {c.Tickets, p.Tickets}, {c.CRMContacts, p.CRMContacts}, {c.WebSignups, p.WebSignups}} {
		rows, err := db.Query(fmt.Sprintf("SELECT column_name, column_type FROM (DESCRIBE FROM read_parquet('%s'))", pair[1]))
		if err != nil {
			t.Fatal(err)
		}
		var casts []string
		for rows.Next() {
			var name, typ string
			if err := rows.Scan(&name, &typ); err != nil {
				t.Fatal(err)
			}
			casts = append(casts, fmt.Sprintf("CAST(%q AS %s) AS %q", name, typ, name))
		}
		rows.Close()
		if len(casts) < 5 {
			t.Fatalf("%s: only %d columns", pair[1], len(casts))
		}
		csvSide := fmt.Sprintf("SELECT %s FROM read_csv('%s', all_varchar = true)", strings.Join(casts, ", "), pair[0])
		pqSide := fmt.Sprintf("SELECT * FROM read_parquet('%s')", pair[1])
		var total, onlyCSV, onlyParquet int
		q := fmt.Sprintf("SELECT (SELECT count(*) FROM (%[2]s)), (SELECT count(*) FROM (%[1]s EXCEPT ALL %[2]s)), (SELECT count(*) FROM (%[2]s EXCEPT ALL %[1]s))", csvSide, pqSide)
		if err := db.QueryRow(q).Scan(&total, &onlyCSV, &onlyParquet); err != nil {
			t.Fatalf("%s: %v", pair[1], err)
		}
		if total == 0 || onlyCSV != 0 || onlyParquet != 0 {
			t.Errorf("%s: %d rows; %d only in the CSV, %d only in the Parquet file", pair[1], total, onlyCSV, onlyParquet)
		}
	}
	// Typed, not text: money is an exact decimal.
	var typ string
	if err := db.QueryRow(fmt.Sprintf("SELECT typeof(unit_price) FROM read_parquet('%s') LIMIT 1", p.Orders)).Scan(&typ); err != nil {
		t.Fatal(err)
	}
	if typ != "DECIMAL(12,2)" {
		t.Errorf("unit_price is %s, want DECIMAL(12,2)", typ)
	}
	if _, err := WriteParquet(t.TempDir(), Options{Customers: 10, BadRows: 1}); err == nil {
		t.Error("BadRows in Parquet: want an error")
	}
}
