package sample

import (
	"context"
	"encoding/csv"
	"os"
	"testing"

	"github.com/cdwhq/cdw/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestLoadPostgresAppliesUpdates loads generated data with changed order
// lines into a real PostgreSQL and checks each line is there once, in its
// latest version, as the CSV export of the same options has it.
func TestLoadPostgresAppliesUpdates(t *testing.T) {
	o := Options{Customers: 300, Orders: 4000, Seed: 11, Updates: 0.05}
	db := pgtest.NewDB(t)
	n, err := LoadPostgres(context.Background(), db.DSN, o)
	if err != nil {
		t.Fatal(err)
	}

	files, err := Write(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(files.Orders)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// order_no,line → status of the version with the latest updated_at.
	type version struct{ status, updated string }
	latest := map[string]version{}
	updates := 0
	for _, r := range recs[1:] {
		k := r[0] + "/" + r[1]
		v, seen := latest[k]
		if seen {
			updates++
		}
		if !seen || r[13] > v.updated {
			latest[k] = version{r[4], r[13]}
		}
	}
	if updates == 0 {
		t.Fatal("the options generated no updates; the test would prove nothing")
	}
	if n.OrderLines != len(latest) {
		t.Errorf("LoadPostgres counted %d order lines, want %d distinct lines", n.OrderLines, len(latest))
	}

	conn := db.Connect(t)
	rows, err := conn.Query(context.Background(), "SELECT order_no::text || '/' || line, status FROM orders")
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for rows.Next() {
		var k, status string
		if err := rows.Scan(&k, &status); err != nil {
			t.Fatal(err)
		}
		got++
		if want, ok := latest[k]; !ok || want.status != status {
			t.Errorf("order line %s: status %q in PostgreSQL, want %q (in CSV: %v)", k, status, want.status, ok)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got != len(latest) {
		t.Errorf("orders has %d rows, want %d", got, len(latest))
	}
}
