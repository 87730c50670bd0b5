package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/pgtest"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(crashChild())
	}
	if os.Getenv(cdcChildEnv) != "" {
		os.Exit(cdcChild())
	}
	pgtest.Main(m)
}

// sourceYAML renders a source config for db; entities is the YAML of the
// entities mapping, indented by four spaces, extra any other source keys.
func sourceYAML(db *pgtest.DB, extra, entities string) string {
	cfg, err := pgx.ParseConfig(db.DSN)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("host: %s\nport: %d\ndatabase: %s\nuser: %s\nsslmode: disable\n%sentities:\n%s",
		cfg.Host, cfg.Port, cfg.Database, cfg.User, extra, entities)
}

// openSource opens a postgres source from YAML text, as cdw would.
func openSource(t testing.TB, name, yamlText string) extract.Source {
	t.Helper()
	src, err := openSourceErr(name, yamlText)
	if err != nil {
		t.Fatalf("opening source: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func openSourceErr(name, yamlText string) (extract.Source, error) {
	node, err := config.Parse("cdw.yaml", []byte(yamlText))
	if err != nil {
		return nil, err
	}
	kind, err := extract.LookupKind(KindName)
	if err != nil {
		return nil, err
	}
	return kind.Open(context.Background(), extract.SourceConfig{Name: name, Options: node, BaseDir: "."})
}

// extractOnce runs the real runner over one entity.
func extractOnce(t testing.TB, dir, name string, src extract.Source, entity string, full bool) extract.Result {
	t.Helper()
	res, err := (&extract.Extractor{Dir: dir}).Extract(context.Background(), name, src, entity, full)
	if err != nil {
		t.Fatalf("extracting %s.%s: %v", name, entity, err)
	}
	return res
}

// committedFiles lists the raw files state says are committed.
func committedFiles(t testing.TB, dir, source, entity string) []string {
	t.Helper()
	st, err := (extract.StateStore{Dir: dir}).Load(source, entity)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range st.Files {
		files = append(files, filepath.Join(dir, f.Path))
	}
	return files
}

// rawDB opens an in-memory DuckDB with a view "raw" over the committed raw
// files of one entity (union by name, as the raw views do).
func rawDB(t testing.TB, dir, source, entity string) *sql.DB {
	t.Helper()
	db, err := duck.OpenMemory() // one connection: the view and the setting below stay visible
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec("SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	files := committedFiles(t, dir, source, entity)
	if len(files) == 0 {
		t.Fatalf("no committed raw files for %s.%s", source, entity)
	}
	q := fmt.Sprintf("CREATE VIEW raw AS SELECT * FROM read_parquet([%s], union_by_name = true, hive_partitioning = false)", duck.Literals(files))
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
	return db
}

// queryStrings runs a DuckDB query returning one column and returns its values as text
// ("NULL" for NULL).
func queryStrings(t testing.TB, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v.Valid {
			out = append(out, v.String)
		} else {
			out = append(out, "NULL")
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func queryInt(t testing.TB, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return n
}

// pgStrings runs a one-column query on PostgreSQL and returns text values.
func pgStrings(t testing.TB, db *pgtest.DB, q string) []string {
	t.Helper()
	conn := db.Connect(t)
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	vals, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var s *string
		if err := r.Scan(&s); err != nil {
			return "", err
		}
		if s == nil {
			return "NULL", nil
		}
		return *s, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

func readState(t testing.TB, dir, source, entity string) *extract.EntityState {
	t.Helper()
	st, err := (extract.StateStore{Dir: dir}).Load(source, entity)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func statePosition(t testing.TB, dir, source, entity string) *position {
	t.Helper()
	p, err := decodePosition(readState(t, dir, source, entity).Cursor)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
