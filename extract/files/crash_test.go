package files_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
)

// TestMain lets the crash test re-run this binary as a child that extracts
// until a failpoint (or the parent) kills it.
func TestMain(m *testing.M) {
	if dir := os.Getenv("CDW_CRASH_CHILD_DIR"); dir != "" {
		src, err := openCrashSource(dir)
		if err == nil {
			x := &extract.Extractor{Dir: filepath.Join(dir, "wh"), BatchRows: 1000}
			_, err = x.Extract(context.Background(), "shop", src, "orders", false)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const crashYAML = `
entities:
  orders:
    path: in/*.csv
    columns: {order_id: id, customer_id: cust, order_ts: ts, quantity: qty, unit_price: price}
`

func openCrashSource(dir string) (extract.Source, error) {
	n, err := config.Parse("cdw.yaml", []byte(crashYAML))
	if err != nil {
		return nil, err
	}
	k, err := extract.LookupKind("files")
	if err != nil {
		return nil, err
	}
	return k.Open(context.Background(), extract.SourceConfig{Name: "shop", Options: n, BaseDir: dir})
}

// TestCrashAnywhereThenRerun kills an extract with SIGKILL at each failpoint
// and at random moments, reruns it, and checks every source row is in raw
// exactly once.
func TestCrashAnywhereThenRerun(t *testing.T) {
	const files, perFile = 6, 4000
	scenarios := []struct {
		name, failpoint string
		delay           time.Duration
	}{
		{"mid-write of the first file", "extract.mid-write:2", 0},
		{"mid-write of a later file", "extract.mid-write:13", 0},
		{"after rename, before state commit", "extract.before-commit:1", 0},
		{"after rename, before the third commit", "extract.before-commit:3", 0},
		{"right after a commit", "extract.after-commit:2", 0},
		{"random moment 1", "", 15 * time.Millisecond},
		{"random moment 2", "", 40 * time.Millisecond},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			for f := 0; f < files; f++ {
				var b strings.Builder
				b.WriteString("id,cust,ts,qty,price\n")
				for i := 0; i < perFile; i++ {
					fmt.Fprintf(&b, "O%d-%d,C%d,2024-01-%02d 10:00:00,%d,1.5\n", f, i, i%97, 1+i%28, 1+i%5)
				}
				write(t, filepath.Join(dir, "in", fmt.Sprintf("orders%02d.csv", f)), b.String())
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "CDW_CRASH_CHILD_DIR="+dir, "CDW_FAILPOINT="+sc.failpoint)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if sc.delay > 0 {
				time.Sleep(sc.delay)
				cmd.Process.Kill()
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()
			if sc.failpoint != "" && !killed {
				t.Fatalf("child was not killed at %s: %v %s", sc.failpoint, err, stderr.String())
			}
			src, err := openCrashSource(dir)
			if err != nil {
				t.Fatal(err)
			}
			wh := filepath.Join(dir, "wh")
			if _, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "shop", src, "orders", false); err != nil {
				t.Fatal(err)
			}
			var n, distinct int64
			if err := rawQuery(t, wh, "shop", "orders", "SELECT count(*), count(DISTINCT order_id) FROM RAW").Scan(&n, &distinct); err != nil {
				t.Fatal(err)
			}
			if n != files*perFile || distinct != n {
				t.Fatalf("after crash (%s) and rerun: %d rows, %d distinct; want %d exactly once", sc.name, n, distinct, files*perFile)
			}
			// No temporary or uncommitted files are left behind.
			st, _ := extract.StateStore{Dir: wh}.Load("shop", "orders")
			var onDisk int
			filepath.WalkDir(filepath.Join(wh, "raw"), func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					onDisk++
				}
				return nil
			})
			if onDisk != len(st.Files) {
				t.Fatalf("%d files on disk, state lists %d", onDisk, len(st.Files))
			}
		})
	}
}
