package crashtest

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2" // database/sql driver "duckdb"

	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/durable"
)

// Summary is the content of one relation: its row count and an md5 over its
// rows' text, sorted, so two relations with equal summaries hold the same
// multiset of rows (a duplicate or a lost row changes both).
type Summary struct {
	Rows int64
	Sum  string
}

func (s Summary) String() string { return fmt.Sprintf("%d rows, md5 %s", s.Rows, s.Sum) }

// SummaryQuery is the checksum query (row count, md5 of the sorted rows) over
// a relation text, scanned into a Summary.
func SummaryQuery(rel string) string {
	return "SELECT count(*), coalesce(md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY CAST(t AS VARCHAR))), '') FROM " + rel + " t"
}

func openDuck(t testing.TB) *sql.DB {
	t.Helper()
	db, err := duck.OpenMemory()
	if err != nil {
		t.Fatalf("crashtest: %v", err)
	}
	return db
}

// ParquetMarts summarises every published marts/<mart>.parquet in dir.
func ParquetMarts(t testing.TB, dir string) map[string]Summary {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	db := openDuck(t)
	defer db.Close()
	out := map[string]Summary{}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			continue
		}
		var s Summary
		if err := db.QueryRow(SummaryQuery("read_parquet("+duck.Literal(f)+")")).Scan(&s.Rows, &s.Sum); err != nil {
			t.Fatalf("crashtest: reading %s: %v", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".parquet")] = s
	}
	return out
}

// DuckDBMarts summarises every table of a published DuckDB file, opened
// read-only. Each call uses a new in-memory database, and callers pass a
// different path per case, so no cached open database is reused.
func DuckDBMarts(t testing.TB, path string) map[string]Summary {
	t.Helper()
	db := openDuck(t)
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "ATTACH "+duck.Literal(path)+" AS marts (READ_ONLY)"); err != nil {
		t.Fatalf("crashtest: opening %s: %v", path, err)
	}
	defer db.ExecContext(ctx, "DETACH marts")
	names, err := duck.Tables(ctx, db, "marts", "main")
	if err != nil {
		t.Fatalf("crashtest: %s: %v", path, err)
	}
	out := map[string]Summary{}
	for _, n := range names {
		var s Summary
		if err := db.QueryRowContext(ctx, SummaryQuery(`marts.main."`+n+`"`)).Scan(&s.Rows, &s.Sum); err != nil {
			t.Fatalf("crashtest: reading %s in %s: %v", n, path, err)
		}
		out[n] = s
	}
	return out
}

// Leftovers lists temporary files and directories (".<name>.tmp-…", as
// internal/durable and the publishers name them) under dir.
func Leftovers(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if durable.IsTemp(d.Name()) {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// Diff describes how got differs from want, or "" when equal.
func Diff(what string, want, got map[string]Summary) string {
	var b strings.Builder
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		w, okW := want[k]
		g, okG := got[k]
		switch {
		case !okG:
			fmt.Fprintf(&b, "%s %s: missing (want %s)\n", what, k, w)
		case !okW:
			fmt.Fprintf(&b, "%s %s: unexpected (%s)\n", what, k, g)
		case w != g:
			fmt.Fprintf(&b, "%s %s: %s, want %s\n", what, k, g, w)
		}
	}
	return b.String()
}

// Perm returns the permission bits of path, or 0 when it does not exist.
func Perm(path string) os.FileMode {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Mode().Perm()
}

// DuckDBTablesContaining lists the tables of a DuckDB file (opened
// read-only) with a row whose text contains s: for secret-leak searches of
// compressed database files that a byte grep cannot see into.
func DuckDBTablesContaining(t testing.TB, path, s string) []string {
	t.Helper()
	db := openDuck(t)
	defer db.Close()
	if _, err := db.Exec("ATTACH " + duck.Literal(path) + " AS f (READ_ONLY)"); err != nil {
		t.Fatalf("crashtest: opening %s: %v", path, err)
	}
	rows, err := db.Query("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'f'")
	if err != nil {
		t.Fatal(err)
	}
	var tables [][2]string
	for rows.Next() {
		var sc, tb string
		rows.Scan(&sc, &tb)
		tables = append(tables, [2]string{sc, tb})
	}
	rows.Close()
	var out []string
	for _, tb := range tables {
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM %s t WHERE contains(CAST(t AS VARCHAR), %s)`, duck.Ident("f", tb[0], tb[1]), duck.Literal(s))
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("crashtest: searching %s.%s in %s: %v", tb[0], tb[1], path, err)
		}
		if n > 0 {
			out = append(out, tb[0]+"."+tb[1])
		}
	}
	return out
}
