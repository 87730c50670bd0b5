package duck

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestQuoting(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Ident("orders"), `"orders"`},
		{Ident(`we"ird`), `"we""ird"`},
		{Ident("main", "orders"), `"main"."orders"`},
		{Idents([]string{"a", `b"`}), `"a", "b"""`},
		{Literal("it's"), `'it''s'`},
		{Literals([]string{"a", "b'c"}), `'a', 'b''c'`},
	} {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
}

// TestQuotingRoundTrips runs the quoted forms through DuckDB, so quoting is
// checked by the parser that reads it, not by a second hand-written rule.
func TestQuotingRoundTrips(t *testing.T) {
	db, err := OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name, value := `we"ird name`, `it's; DROP TABLE x; --`
	if _, err := db.Exec("CREATE TABLE " + Ident(name) + " AS SELECT " + Literal(value) + " AS " + Ident(name)); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.QueryRow("SELECT " + Ident(name) + " FROM " + Ident("memory", "main", name)).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != value {
		t.Fatalf("got %q, want %q", got, value)
	}
}

func TestOpenSettingsAndListing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "w.duckdb")
	db, err := Open(path, Settings{MemoryLimit: "512MB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"CREATE TABLE b (x INT)", "CREATE TABLE a (x INT)", "CREATE VIEW v AS SELECT 1", "CREATE SCHEMA s", "CREATE TABLE s.c (x INT)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	var tz, threads, tmp string
	if err := db.QueryRow("SELECT current_setting('TimeZone'), current_setting('threads')::VARCHAR, current_setting('temp_directory')").Scan(&tz, &threads, &tmp); err != nil {
		t.Fatal(err)
	}
	if tz != "UTC" || threads != "1" || tmp != filepath.Join(filepath.Dir(path), "tmp") {
		t.Fatalf("settings: TimeZone %s, threads %s, temp_directory %s", tz, threads, tmp)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("database file should be private: %v %v", fi.Mode(), err)
	}
	tables, err := Tables(ctx, db, "", "main")
	if err != nil || !slices.Equal(tables, []string{"a", "b"}) {
		t.Fatalf("Tables = %v, %v", tables, err)
	}
	rels, err := Relations(ctx, db, "w", "main")
	if err != nil || !slices.Equal(rels, []string{"a", "b", "v"}) {
		t.Fatalf("Relations = %v, %v", rels, err)
	}
	if tables, err = Tables(ctx, db, "", "s"); err != nil || !slices.Equal(tables, []string{"c"}) {
		t.Fatalf("Tables(s) = %v, %v", tables, err)
	}
}
