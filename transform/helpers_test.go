package transform

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// files builds a model root from name → SQL text.
func files(name string, m map[string]string) Root {
	fsys := fstest.MapFS{}
	for p, s := range m {
		fsys[p] = &fstest.MapFile{Data: []byte(s)}
	}
	return Root{Name: name, FS: fsys}
}

func load(t testing.TB, roots ...Root) *Project {
	t.Helper()
	p, err := Load(context.Background(), roots, LoadOptions{Raw: []string{"raw.orders", "raw.shop_orders"}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return p
}

func loadErr(t *testing.T, roots ...Root) string {
	t.Helper()
	_, err := Load(context.Background(), roots, LoadOptions{Raw: []string{"raw.orders"}})
	if err == nil {
		t.Fatal("Load succeeded; want an error")
	}
	return err.Error()
}

// warehouse opens a real DuckDB file with a raw.orders table.
func warehouse(t testing.TB) *sql.DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "warehouse.duckdb"), Settings{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mustExec(t, db, `CREATE SCHEMA raw`,
		`CREATE TABLE raw.orders AS SELECT i AS order_id, 'c' || (i % 7) AS customer_id, i * 1.5 AS amount,
		   DATE '2024-01-01' + (i % 3)::INTEGER AS order_date, TIMESTAMP '2024-01-01' + to_hours(i) AS updated_at
		 FROM range(1, 101) t(i)`)
	return db
}

func mustExec(t testing.TB, db *sql.DB, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func names(ms []*Model) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return strings.Join(out, " ")
}

func byModel(res RunResult) map[string]ModelResult {
	out := map[string]ModelResult{}
	for _, m := range res.Models {
		out[m.Model] = m
	}
	return out
}
