// Package loadtest holds what publisher tests share: a real warehouse file
// to publish from.
package loadtest

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cdwhq/cdw/internal/duck"
)

// Warehouse opens a new, empty DuckDB warehouse file under t.TempDir() with
// cdw's session settings (UTC on every connection, as the pipeline's
// warehouse has), closed when the test ends. Tests build their marts in it.
func Warehouse(t testing.TB) *sql.DB {
	t.Helper()
	db, err := duck.Open(filepath.Join(t.TempDir(), "warehouse.duckdb"), duck.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// BuildMarts makes version v of two marts in db with the column types cdw's
// marts use (decimals, dates, timestamps with and without zone, lists,
// structs, booleans): customer_segments (1000+500·v rows, three business
// units) and segment_summary. v changes the row count and the amounts, so
// each version has its own fingerprint.
func BuildMarts(t testing.TB, db *sql.DB, v int) {
	t.Helper()
	n := 1000 + 500*v
	q := fmt.Sprintf(`CREATE OR REPLACE TABLE customer_segments AS
		SELECT i AS customer_id,
		       ['North','South','West'][1 + i %% 3] AS business_unit,
		       CAST(((i * 7 + %d) %% 1000) / 4 AS DECIMAL(18,2)) AS revenue,
		       CASE WHEN i %% 5 = 0 THEN NULL ELSE 'seg' || (i %% 4) END AS segment,
		       DATE '2024-01-01' + CAST(i %% 365 AS INTEGER) AS last_order,
		       TIMESTAMP '2024-03-01 12:34:56.789' + to_seconds(i) AS updated_at,
		       TIMESTAMPTZ '2024-03-01 00:00:00+00' + to_hours(i) AS seen_at,
		       ['a' || i, NULL, 'b'] AS tags,
		       {'k': i} AS attrs,
		       i / 3.0 AS score,
		       CAST(i %% 7 AS INTEGER) AS small,
		       i %% 2 = 0 AS active
		FROM range(%d) r(i)`, v, n)
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE OR REPLACE TABLE segment_summary AS
		SELECT segment, count(*) AS customers, sum(revenue) AS revenue FROM customer_segments GROUP BY segment`); err != nil {
		t.Fatal(err)
	}
}
