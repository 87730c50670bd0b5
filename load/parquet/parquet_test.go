package parquet

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/load"
	"github.com/cdwhq/cdw/load/loadtest"
)

// build makes version v of two marts: a has 100*v rows, b exists only in v < 3.
func build(t *testing.T, db *sql.DB, v int) []string {
	t.Helper()
	if _, err := db.Exec(fmt.Sprintf("CREATE OR REPLACE TABLE a AS SELECT i, %d AS v FROM range(%d) r(i)", v, 100*v)); err != nil {
		t.Fatal(err)
	}
	if v >= 3 {
		return []string{"a"}
	}
	if _, err := db.Exec(fmt.Sprintf("CREATE OR REPLACE TABLE b AS SELECT %d AS v", v)); err != nil {
		t.Fatal(err)
	}
	return []string{"a", "b"}
}

func openTest(t testing.TB, yamlText, dir string) *Publisher {
	t.Helper()
	n, err := config.Parse("cdw.yaml", []byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := load.LookupKind("parquet")
	p, err := k.Open(load.TargetConfig{Options: n, Dir: dir, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Publisher)
}

// version reads the v column of a Parquet file through a fresh DuckDB, as a
// BI tool would.
func martVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v, n int
	if err := db.QueryRow("SELECT max(v), count(*) FROM read_parquet(?)", path).Scan(&v, &n); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return v
}

func TestVersionsRollbackAndPrune(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wh := loadtest.Warehouse(t)
	p := openTest(t, "keep: 2", dir)
	marts := filepath.Join(dir, "marts")
	if _, err := p.Rollback(ctx); !errors.Is(err, load.ErrNoPreviousVersion) {
		t.Fatalf("rollback before any publish: want ErrNoPreviousVersion, got %v", err)
	}
	for v := 1; v <= 3; v++ {
		if err := p.Publish(ctx, load.Marts{DB: wh, Names: build(t, wh, v)}); err != nil {
			t.Fatal(err)
		}
		if got := martVersion(t, filepath.Join(marts, "a.parquet")); got != v {
			t.Errorf("after publish %d marts/a.parquet has version %d", v, got)
		}
		if got := martVersion(t, filepath.Join(marts, "current", "a.parquet")); got != v {
			t.Errorf("after publish %d marts/current/a.parquet has version %d", v, got)
		}
	}
	// keep: 2 leaves versions 2 and 3.
	vs, _ := p.versions()
	if len(vs) != 2 || vs[0].seq != 2 || vs[1].seq != 3 {
		t.Fatalf("kept versions %+v, want seq 2 and 3", vs)
	}
	// Version 3 dropped mart b: its stable file is gone too.
	if _, err := os.Stat(filepath.Join(marts, "b.parquet")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("marts/b.parquet should be removed when the current version lacks b: %v", err)
	}

	if _, err := p.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a.parquet", "b.parquet", "current/a.parquet", "current/b.parquet"} {
		if got := martVersion(t, filepath.Join(marts, f)); got != 2 {
			t.Errorf("after rollback marts/%s has version %d, want 2", f, got)
		}
	}
	if _, err := p.Rollback(ctx); !errors.Is(err, load.ErrNoPreviousVersion) {
		t.Errorf("rolling back past the oldest kept version: want ErrNoPreviousVersion, got %v", err)
	}
	// A publish after a rollback goes on from the restored version.
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: build(t, wh, 4)}); err != nil {
		t.Fatal(err)
	}
	if got := martVersion(t, filepath.Join(marts, "a.parquet")); got != 4 {
		t.Errorf("after publishing again marts/a.parquet has version %d, want 4", got)
	}
	if _, err := p.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := martVersion(t, filepath.Join(marts, "a.parquet")); got != 2 {
		t.Errorf("rolling back the new publish gives version %d, want 2 (the rolled-back 3 must be gone)", got)
	}
}

func TestFailedPublishKeepsCurrent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wh := loadtest.Warehouse(t)
	p := openTest(t, "", dir)
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: build(t, wh, 1)}); err != nil {
		t.Fatal(err)
	}
	err := p.Publish(ctx, load.Marts{DB: wh, Names: []string{"a", "no_such_mart"}})
	if err == nil {
		t.Fatal("publishing a missing mart succeeded")
	}
	if got := martVersion(t, filepath.Join(dir, "marts", "current", "a.parquet")); got != 1 {
		t.Errorf("after a failed publish current has version %d, want 1", got)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "marts", "_versions"))
	if len(ents) != 1 {
		t.Errorf("a failed publish left %d entries in _versions, want 1", len(ents))
	}
}

func TestKeepMustBePositive(t *testing.T) {
	n, _ := config.Parse("cdw.yaml", []byte("keep: 0"))
	k, _ := load.LookupKind("parquet")
	if _, err := k.Open(load.TargetConfig{Options: n, Dir: t.TempDir()}); err == nil {
		t.Fatal("keep: 0 accepted")
	}
}

// TestContract runs the publisher contract suite (load/loadtest).
func TestContract(t *testing.T) {
	loadtest.Contract(t, loadtest.Target{Kind: "parquet", Options: "dir: marts\nkeep: 2\n"})
}

// TestReadmeParquetExample publishes with the parquet target of
// load/README.md's config block and checks the codec it names is the one
// the files carry; an unknown codec is a config error naming the key.
func TestReadmeParquetExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)  - kind: parquet\n(.*?)\n  - kind:").FindSubmatch(readme)
	if m == nil {
		t.Fatal("load/README.md has no parquet target in its config block")
	}
	var opts []string
	for _, l := range strings.Split(string(m[1]), "\n") {
		if k, _, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && k != "dir" {
			opts = append(opts, strings.TrimSpace(l))
		}
	}
	codec := regexp.MustCompile(`compression: (\w+)`).FindStringSubmatch(string(m[1]))
	if codec == nil {
		t.Fatalf("the README's parquet target shows no compression: %q", m[1])
	}
	for _, c := range []string{codec[1], "snappy"} {
		t.Run(c, func(t *testing.T) {
			dir := t.TempDir()
			wh := loadtest.Warehouse(t)
			y := strings.Join(opts, "\n")
			y = strings.Replace(y, "compression: "+codec[1], "compression: "+c, 1)
			p := openTest(t, y, dir)
			names := build(t, wh, 1)
			if err := p.Publish(context.Background(), load.Marts{DB: wh, Names: names, Dir: dir}); err != nil {
				t.Fatal(err)
			}
			var got string
			f := filepath.Join(p.Dir(), "a.parquet")
			if err := wh.QueryRow("SELECT DISTINCT compression FROM parquet_metadata(?)", f).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if !strings.EqualFold(got, c) || martVersion(t, f) != 1 {
				t.Fatalf("%s: codec %s, want %s", f, got, c)
			}
		})
	}
	n, err := config.Parse("cdw.yaml", []byte("compression: brotlii"))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := load.LookupKind("parquet")
	if _, err := k.Open(load.TargetConfig{Options: n, Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "compression must be one of") || !strings.Contains(err.Error(), "cdw.yaml:1") {
		t.Fatalf("unknown codec: want a config error naming the line, got %v", err)
	}
}
