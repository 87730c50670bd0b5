package crashtest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cdwhq/cdw/internal/duck"
)

// readerEnv makes the test binary run as a reader child (see MaybeReader).
const (
	readerEnv      = "CDW_CRASHTEST_READER_DIR"
	readerMartsEnv = "CDW_CRASHTEST_READER_MARTS"
)

// ReaderReport is what a concurrent reader saw.
type ReaderReport struct {
	Reads  int      // complete reads of a published mart (Parquet file or DuckDB table)
	Sets   int      // complete sets seen (marts/current/ and marts.duckdb)
	Errors []string // anything partial, unreadable or incomplete
}

// Reader is a child process polling a warehouse's published marts while cdw
// runs and is killed. A separate process, because DuckDB caches databases
// opened in the same process and a reader of BI tools is never inside cdw.
type Reader struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout bytes.Buffer
	stderr bytes.Buffer
}

// MaybeReader turns this process into a reader child when the parent asked
// for one, and exits when it is done. Call it first in TestMain.
func MaybeReader() {
	dir := os.Getenv(readerEnv)
	if dir == "" {
		return
	}
	var marts []string
	if m := os.Getenv(readerMartsEnv); m != "" {
		marts = strings.Split(m, ",")
	}
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin) // the parent closes stdin to stop us
		close(stop)
	}()
	rep := ReaderReport{}
	for {
		select {
		case <-stop:
			json.NewEncoder(os.Stdout).Encode(rep)
			os.Exit(0)
		default:
		}
		readOnce(dir, marts, &rep)
		if len(rep.Errors) > 20 {
			rep.Errors = rep.Errors[:20]
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// StartReader starts a reader child on the warehouse dir; marts is the
// complete set of mart names a published version must hold.
func StartReader(t testing.TB, warehouse string, marts []string) *Reader {
	t.Helper()
	r := &Reader{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	r.cmd.Env = append(os.Environ(), readerEnv+"="+warehouse, readerMartsEnv+"="+strings.Join(marts, ","), "CDW_FAILPOINT=")
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	in, err := r.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r.stdin = in
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("crashtest: starting reader: %v", err)
	}
	return r
}

// Stop ends the reader and returns what it saw.
func (r *Reader) Stop(t testing.TB) ReaderReport {
	t.Helper()
	r.stdin.Close()
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("crashtest: reader ended with %v\n%s", err, r.stderr.String())
	}
	var rep ReaderReport
	if err := json.Unmarshal(r.stdout.Bytes(), &rep); err != nil {
		t.Fatalf("crashtest: reading the reader's report: %v\n%s\n%s", err, r.stdout.String(), r.stderr.String())
	}
	return rep
}

func readOnce(dir string, marts []string, rep *ReaderReport) {
	db, err := duck.OpenMemory()
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
		return
	}
	defer db.Close()
	ctx := context.Background()
	martsDir := filepath.Join(dir, "marts")
	readParquet := func(f string) {
		var n, size sql.NullInt64
		err := db.QueryRowContext(ctx, "SELECT count(*), sum(length(CAST(t AS VARCHAR))) FROM read_parquet("+duck.Literal(f)+") t").Scan(&n, &size)
		if err != nil {
			if _, serr := os.Stat(f); errors.Is(serr, fs.ErrNotExist) {
				return // removed between listing and reading: not a partial read
			}
			rep.Errors = append(rep.Errors, fmt.Sprintf("reading %s: %v", f, err))
			return
		}
		rep.Reads++
	}
	// The stable names BI tools read: each file, whole.
	files, _ := filepath.Glob(filepath.Join(martsDir, "*.parquet"))
	for _, f := range files {
		if !strings.HasPrefix(filepath.Base(f), ".") {
			readParquet(f)
		}
	}
	// The current version: always a complete set.
	if cur, err := filepath.Glob(filepath.Join(martsDir, "current", "*.parquet")); err == nil && len(cur) > 0 {
		if got := baseNames(cur, ".parquet"); len(marts) > 0 && !sameSet(got, marts) {
			rep.Errors = append(rep.Errors, fmt.Sprintf("marts/current holds %v, want %v", got, marts))
		}
		for _, f := range cur {
			readParquet(f)
		}
		rep.Sets++
	}
	// The DuckDB file: opened read-only, all tables present and readable.
	p := filepath.Join(dir, "marts.duckdb")
	if _, err := os.Stat(p); err != nil {
		return
	}
	if _, err := db.ExecContext(ctx, "ATTACH "+duck.Literal(p)+" AS m (READ_ONLY)"); err != nil {
		rep.Errors = append(rep.Errors, fmt.Sprintf("opening %s: %v", p, err))
		return
	}
	defer db.ExecContext(ctx, "DETACH m")
	names, err := duck.Tables(ctx, db, "m", "main")
	if err != nil {
		rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", p, err))
		return
	}
	if len(marts) > 0 && !sameSet(names, marts) {
		rep.Errors = append(rep.Errors, fmt.Sprintf("%s holds %v, want %v", p, names, marts))
	}
	for _, n := range names {
		var c, size sql.NullInt64
		if err := db.QueryRowContext(ctx, `SELECT count(*), sum(length(CAST(t AS VARCHAR))) FROM `+duck.Ident("m", "main", n)+` t`).Scan(&c, &size); err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("reading %s in %s: %v", n, p, err))
			continue
		}
		rep.Reads++
	}
	rep.Sets++
}

func baseNames(files []string, ext string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = strings.TrimSuffix(filepath.Base(f), ext)
	}
	sort.Strings(out)
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}
