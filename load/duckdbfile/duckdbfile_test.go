package duckdbfile

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/load"
	"github.com/cdwhq/cdw/load/loadtest"
)

// build makes version v: marts a and b both carry v and 1000*v rows, so a
// reader can tell versions apart and spot a mix.
func build(t *testing.T, db *sql.DB, v int) {
	t.Helper()
	for _, m := range []string{"a", "b"} {
		if _, err := db.Exec(fmt.Sprintf("CREATE OR REPLACE TABLE %s AS SELECT i, %d AS v FROM range(%d) r(i)", m, v, 1000*v)); err != nil {
			t.Fatal(err)
		}
	}
}

func openTest(t *testing.T, dir string) *Publisher {
	t.Helper()
	n, _ := config.Parse("cdw.yaml", []byte(""))
	k, _ := load.LookupKind("duckdb")
	p, err := k.Open(load.TargetConfig{Options: n, Dir: dir, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Publisher)
}

func readOnly(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", path+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// snapshot reads both marts in one query: version and row count of each.
func snapshot(db *sql.DB) (va, na, vb, nb int, err error) {
	err = db.QueryRow("SELECT (SELECT max(v) FROM a), (SELECT count(*) FROM a), (SELECT max(v) FROM b), (SELECT count(*) FROM b)").Scan(&va, &na, &vb, &nb)
	return
}

func TestReadersDuringPublishAndRollback(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wh := loadtest.Warehouse(t)
	p := openTest(t, dir)
	build(t, wh, 1)
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: []string{"a", "b"}}); err != nil {
		t.Fatal(err)
	}

	// A BI tool holding the old file open, reading in a loop during publishes.
	held := readOnly(t, p.Path())
	defer held.Close()
	held.SetMaxOpenConns(1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	reads := 0
	check := func(db *sql.DB, who string) {
		va, na, vb, nb, err := snapshot(db)
		mu.Lock()
		defer mu.Unlock()
		reads++
		switch {
		case err != nil:
			problems = append(problems, who+": "+err.Error())
		case va != vb || na != 1000*va || nb != 1000*vb:
			problems = append(problems, fmt.Sprintf("%s: partial or mixed marts: a=v%d/%d rows, b=v%d/%d rows", who, va, na, vb, nb))
		}
	}
	wg.Add(1)
	go func() { // keeps its handle: must keep seeing version 1 intact
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				check(held, "held reader")
			}
		}
	}()
	// Another process (as a BI tool is) opening the file anew each time: it
	// must see a whole old or new version. In-process, DuckDB would hand back
	// the instance already open for the path, so this has to be a process.
	stopFile := filepath.Join(dir, "stop-reader")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperReader$")
	cmd.Env = append(os.Environ(), "CDW_TEST_READER_PATH="+p.Path(), "CDW_TEST_READER_STOP="+stopFile)
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ { // until the reader process has read once
		if _, err := os.Stat(stopFile + ".ready"); err == nil {
			break
		}
		if i == 3000 {
			t.Fatalf("reader process never got ready:\n%s", outBuf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for v := 2; v <= 4; v++ {
		build(t, wh, v)
		if err := p.Publish(ctx, load.Marts{DB: wh, Names: []string{"a", "b"}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // let the readers read this version too
	}
	close(stop)
	wg.Wait()
	if err := os.WriteFile(stopFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("reader process: %v\n%s", err, outBuf.String())
	}
	versions := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(outBuf.String()), "\n") {
		if v, ok := strings.CutPrefix(line, "READ "); ok {
			versions[v] = true
			reads++
		} else if strings.HasPrefix(line, "BAD ") {
			problems = append(problems, "reopening reader: "+line)
		}
	}
	if len(versions) < 2 {
		t.Errorf("the reopening reader saw versions %v; it should have seen the publishes switch", versions)
	}
	for _, pr := range problems {
		t.Error(pr)
	}
	t.Logf("%d reads during 3 publishes", reads)
	if va, _, _, _, _ := snapshot(held); va != 1 {
		t.Errorf("the reader holding the old file sees version %d, want 1", va)
	}
	held.Close() // or this process's opens below would reuse its instance

	version := func() int {
		db := readOnly(t, p.Path())
		defer db.Close()
		va, _, _, _, err := snapshot(db)
		if err != nil {
			t.Fatal(err)
		}
		return va
	}
	if v := version(); v != 4 {
		t.Fatalf("published file has version %d, want 4", v)
	}
	if _, err := p.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != 3 {
		t.Errorf("after rollback the file has version %d, want 3", v)
	}
	if _, err := p.Rollback(ctx); !errors.Is(err, load.ErrNoPreviousVersion) {
		t.Errorf("second rollback: want ErrNoPreviousVersion, got %v", err)
	}
}

func TestFailedPublishKeepsFileAndPrevious(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wh := loadtest.Warehouse(t)
	p := openTest(t, dir)
	for v := 1; v <= 2; v++ {
		build(t, wh, v)
		if err := p.Publish(ctx, load.Marts{DB: wh, Names: []string{"a", "b"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: []string{"a", "missing"}}); err == nil {
		t.Fatal("publishing a missing mart succeeded")
	}
	for path, want := range map[string]int{p.Path(): 2, p.PrevPath(): 1} {
		db := readOnly(t, path)
		va, _, _, _, err := snapshot(db)
		db.Close()
		if err != nil || va != want {
			t.Errorf("%s after a failed publish: version %d (%v), want %d", path, va, err, want)
		}
	}
}

// TestHelperReader is the reader process of TestReadersDuringPublishAndRollback:
// it opens the published file read-only, again and again, until told to stop,
// and prints what each open saw.
func TestHelperReader(t *testing.T) {
	path := os.Getenv("CDW_TEST_READER_PATH")
	if path == "" {
		return // run directly: nothing to do
	}
	stop := os.Getenv("CDW_TEST_READER_STOP")
	for {
		if _, err := os.Stat(stop); err == nil {
			return
		}
		db := readOnly(t, path)
		va, na, vb, nb, err := snapshot(db)
		db.Close()
		switch {
		case err != nil:
			fmt.Printf("BAD error %v\n", err)
		case va != vb || na != 1000*va || nb != 1000*vb:
			fmt.Printf("BAD partial or mixed a=v%d/%d b=v%d/%d\n", va, na, vb, nb)
		default:
			fmt.Printf("READ %d\n", va)
			os.WriteFile(stop+".ready", nil, 0o600)
		}
	}
}

// TestDescriptionsAsComments (#22 item 8): a mart's descriptions are
// COMMENT ON TABLE/COLUMN in the published file, as duckdb_tables() and
// duckdb_columns() show them to a reader.
func TestDescriptionsAsComments(t *testing.T) {
	ctx := context.Background()
	wh := loadtest.Warehouse(t)
	p := openTest(t, t.TempDir())
	build(t, wh, 1)
	docs := map[string]load.MartDoc{"a": {Description: "Mart a: one row per i. It's documented.", Columns: map[string]string{"I": "the row number", "nope": "no such column"}}}
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: []string{"a", "b"}, Docs: docs}); err != nil {
		t.Fatal(err)
	}
	db := readOnly(t, p.Path())
	defer db.Close()
	rows, err := db.Query(`SELECT t.table_name, coalesce(t.comment, ''), c.column_name, coalesce(c.comment, '') FROM duckdb_tables() t
		JOIN duckdb_columns() c USING (database_name, schema_name, table_name) WHERE t.schema_name = 'main' ORDER BY 1, c.column_index`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var tbl, tc, col, cc string
		if err := rows.Scan(&tbl, &tc, &col, &cc); err != nil {
			t.Fatal(err)
		}
		got = append(got, tbl+"("+tc+")."+col+"("+cc+")")
	}
	want := "a(Mart a: one row per i. It's documented.).i(the row number) a(Mart a: one row per i. It's documented.).v() b().i() b().v()"
	if strings.Join(got, " ") != want {
		t.Errorf("comments:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

// TestContract runs the publisher contract suite (load/loadtest).
func TestContract(t *testing.T) {
	loadtest.Contract(t, loadtest.Target{Kind: "duckdb", Options: "path: bi/marts.duckdb\n"})
}
