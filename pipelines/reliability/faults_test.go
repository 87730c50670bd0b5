package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/extract/extracttest"
	"github.com/cdwhq/cdw/internal/crashtest"
	"github.com/cdwhq/cdw/internal/pgtest"
)

// committedState is a source entity's committed state without its commit
// time: what must not change when a run fails.
func committedState(t *testing.T, wh, source, entity string) string {
	t.Helper()
	st, err := extract.StateStore{Dir: wh}.Load(source, entity)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(struct {
		Cursor     json.RawMessage
		Files      []extract.RawFile
		Quarantine []extract.RawFile
		Rows       int64
	}{st.Cursor, st.Files, st.Quarantine, st.Rows})
	return string(b)
}

// checkExactlyOnce checks a completed warehouse: committed files only, no
// temporary files, and the entity's raw rows are the source's rows once each.
func checkExactlyOnce(t *testing.T, wh, key string, want int, distinct string) {
	t.Helper()
	raw := extracttest.Raw(t, wh)
	if got := raw[key].Rows; got != int64(want) {
		t.Errorf("raw %s has %d rows, the source has %d", key, got, want)
	}
	if left := crashtest.Leftovers(wh); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	st, _ := extract.StateStore{Dir: wh}.Load(strings.Split(key, ".")[0], strings.Split(key, ".")[1])
	var paths []string
	for _, f := range st.Files {
		paths = append(paths, "'"+filepath.Join(wh, f.Path)+"'")
	}
	if len(paths) == 0 {
		return
	}
	db := duck(t)
	var n, d int64
	q := fmt.Sprintf("SELECT count(*), count(DISTINCT %s) FROM read_parquet([%s])", distinct, strings.Join(paths, ","))
	if err := db.QueryRow(q).Scan(&n, &d); err != nil {
		t.Fatal(err)
	}
	if n != d {
		t.Errorf("raw %s: %d rows but %d distinct %s", key, n, d, distinct)
	}
}

// failed checks a run ended with a clear one-line error naming the source.
func failed(t *testing.T, res crashtest.Result, source string, words ...string) {
	t.Helper()
	if res.Killed || res.Code == 0 {
		t.Fatalf("the run should have failed: %s", res)
	}
	line := cliError(res.Stderr)
	if !strings.Contains(line, "source "+source) {
		t.Errorf("the error does not name source %s: %q", source, line)
	}
	for _, w := range words {
		if !strings.Contains(strings.ToLower(line), strings.ToLower(w)) {
			t.Errorf("the error does not say %q: %q", w, line)
		}
	}
}

// cliError is the CLI's error in stderr: its "cdw <cmd>:" line and the
// lines under it (DuckDB errors keep their LINE/caret lines).
func cliError(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "cdw ") {
			return strings.Join(lines[i:], "\n")
		}
	}
	return lines[len(lines)-1]
}

// TestHTTPFaults injects faults into the helpdesk API during `cdw extract`:
// each ends in success after retries, or in a clear error naming the source
// with nothing of the failed page committed; a rerun without the fault then
// loads every ticket exactly once.
func TestHTTPFaults(t *testing.T) {
	f := newFixture(t)
	all := len(f.api.tickets)
	from := func(k int, fn func(w http.ResponseWriter)) func(http.ResponseWriter, *http.Request, int) bool {
		return func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n < k {
				return false
			}
			fn(w)
			return true
		}
	}
	status := func(code int) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) { http.Error(w, "temporarily unavailable", code) }
	}
	truncated := func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", "5000")
		w.Write([]byte(`{"data":[{"ticket_id":"T`))
		if hj, ok := w.(http.Hijacker); ok {
			conn, _, _ := hj.Hijack()
			conn.Close()
		}
	}
	invalid := func(w http.ResponseWriter) { w.Write([]byte(`<html>upstream error</html>`)) }
	for _, tc := range []struct {
		name  string
		fault func(http.ResponseWriter, *http.Request, int) bool
		ok    bool     // the run succeeds after retries
		words []string // the error says these
	}{
		{"5xx storm then recovery", func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n >= 2 && n <= 4 {
				status(503 - n%2)(w)
				return true
			}
			return false
		}, true, nil},
		{"5xx storm beyond the retry budget", from(3, status(502)), false, []string{"giving up", "502"}},
		{"429 with Retry-After", func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n == 2 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return true
			}
			return false
		}, true, nil},
		{"truncated body once", func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n == 3 {
				truncated(w)
				return true
			}
			return false
		}, true, nil},
		{"truncated bodies", from(4, truncated), false, []string{"giving up"}},
		{"invalid JSON", from(2, invalid), false, []string{"giving up"}},
		{"a page that repeats", func(w http.ResponseWriter, r *http.Request, n int) bool {
			q := r.URL.Query()
			q.Set("page", "1") // a server that ignores the page parameter
			r.URL.RawQuery = q.Encode()
			return false
		}, false, []string{"repeat"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			wh := filepath.Join(dir, "wh")
			cfg := f.writeConfig(t, dir, cfgOptions{})
			f.api.setFault(tc.fault)
			start := time.Now()
			res := f.run(t, cfg, crashtest.Run{Args: []string{"extract", "--source", "helpdesk"}})
			elapsed := time.Since(start)
			f.api.setFault(nil)
			if tc.ok {
				if res.Killed || res.Code != 0 {
					t.Fatalf("the run should have succeeded after retries: %s", res)
				}
				if tc.name == "429 with Retry-After" && elapsed < time.Second {
					t.Errorf("Retry-After: 1 was not honoured: the run took %s", elapsed)
				}
			} else {
				failed(t, res, "helpdesk", tc.words...)
				// Committed pages are consistent; the rerun resumes after them.
				extracttest.Raw(t, wh)
				if left := crashtest.Leftovers(wh); len(left) > 0 {
					t.Errorf("temporary files left after the failure: %v", left)
				}
				// A run failing on its first request commits nothing.
				before := committedState(t, wh, "helpdesk", "tickets")
				f.api.setFault(from(1, status(503)))
				failed(t, f.run(t, cfg, crashtest.Run{Args: []string{"extract", "--source", "helpdesk"}}), "helpdesk", "giving up")
				f.api.setFault(nil)
				if after := committedState(t, wh, "helpdesk", "tickets"); after != before {
					t.Errorf("a second failing run changed the committed state:\n%s\n%s", before, after)
				}
				f.mustRun(t, cfg, "extract", "--source", "helpdesk")
			}
			checkExactlyOnce(t, wh, "helpdesk.tickets", all, "ticket_id")
		})
	}
}

// TestPostgresFaults: connection refused, statement timeout and a server
// restart in the middle of an extract. Each fails with a clear error naming
// the source (or succeeds), leaves consistent state, and the rerun loads
// every row exactly once.
func TestPostgresFaults(t *testing.T) {
	srv := pgtest.StartPrivate(t)
	f := newFixtureOn(t, srv)
	extractShop := []string{"extract", "--source", "shop"}

	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		dir := t.TempDir()
		res := f.run(t, f.writeConfig(t, dir, cfgOptions{pgPort: port}), crashtest.Run{Args: extractShop})
		failed(t, res, "shop", "refused")
		if st := committedState(t, filepath.Join(dir, "wh"), "shop", "orders"); st != committedState(t, t.TempDir(), "shop", "orders") {
			t.Errorf("state was written by a run that never connected: %s", st)
		}
	})

	t.Run("statement timeout", func(t *testing.T) {
		dir := t.TempDir()
		cfg := f.writeConfig(t, dir, cfgOptions{ordersQry: "SELECT o.*, s.slow FROM orders o, (SELECT pg_sleep(3)::text AS slow) s", extraOrd: "        exclude: [slow]\n"})
		f.db.Exec(t, fmt.Sprintf("ALTER DATABASE %s SET statement_timeout = '300ms'", f.db.Name))
		res := f.run(t, cfg, crashtest.Run{Args: extractShop})
		f.db.Exec(t, fmt.Sprintf("ALTER DATABASE %s RESET statement_timeout", f.db.Name))
		failed(t, res, "shop", "statement timeout")
		extracttest.Raw(t, filepath.Join(dir, "wh"))
		cfg = f.writeConfig(t, dir, cfgOptions{})
		f.mustRun(t, cfg, extractShop...)
		checkExactlyOnce(t, filepath.Join(dir, "wh"), "shop.orders", f.orders, "(order_id, line_no)")
	})

	t.Run("server restarted mid-extract", func(t *testing.T) {
		dir := t.TempDir()
		cfg := f.writeConfig(t, dir, cfgOptions{ordersQry: "SELECT o.*, pg_sleep(0.0008)::text AS slow FROM orders o", extraOrd: "        exclude: [slow]\n"})
		done := make(chan crashtest.Result, 1)
		go func() { done <- f.run(t, cfg, crashtest.Run{Args: extractShop}) }()
		// Restart once the extract's query is running.
		ctx := context.Background()
		conn := f.db.Connect(t)
		deadline := time.Now().Add(20 * time.Second)
		for {
			var n int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep(0.0008)%ORDER BY%' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the extract's query never showed up in pg_stat_activity")
			}
			time.Sleep(5 * time.Millisecond)
		}
		conn.Close(ctx)
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if res.Code != 0 || res.Killed {
			failed(t, res, "shop")
			t.Logf("extract during the restart: %s", cliError(res.Stderr))
		}
		extracttest.Raw(t, filepath.Join(dir, "wh"))
		f.mustRun(t, cfg, extractShop...)
		checkExactlyOnce(t, filepath.Join(dir, "wh"), "shop.orders", f.orders, "(order_id, line_no)")
	})
}

// TestDiskFull runs the extract with raw/ on a size-limited tmpfs that fills
// up mid-write: a clear error naming the source and the full disk, no
// partial or temporary file left, state unchanged; after space is freed the
// rerun loads every row once.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("disk full needs root to mount a size-limited tmpfs; covered in CI images that run as root")
	}
	f := newFixture(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "wh")
	raw := filepath.Join(wh, "raw")
	if err := os.MkdirAll(raw, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", raw).CombinedOutput(); err != nil {
		t.Fatalf("mounting a 256k tmpfs on %s: %v %s", raw, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", raw).Run() })
	filler := filepath.Join(raw, "filler")
	if err := os.WriteFile(filler, bytes.Repeat([]byte{1}, 250*1024), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := f.writeConfig(t, dir, cfgOptions{})
	before := committedState(t, wh, "shop", "orders")
	res := f.run(t, cfg, crashtest.Run{Args: []string{"extract", "--source", "shop"}})
	failed(t, res, "shop", "no space left on device")
	if after := committedState(t, wh, "shop", "orders"); after != before {
		t.Errorf("state changed by the failed run: %s", after)
	}
	var left []string
	filepath.WalkDir(raw, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && p != filler {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("files left in raw after the failed write: %v", left)
	}
	os.Remove(filler)
	f.mustRun(t, cfg, "extract", "--source", "shop")
	checkExactlyOnce(t, wh, "shop.orders", f.orders, "(order_id, line_no)")
}

// TestCorruptRawParquet overwrites a committed raw file with garbage: the
// run fails naming the file, publishes nothing, and a full refresh of that
// source repairs the warehouse to the same marts as before.
func TestCorruptRawParquet(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "wh")
	cfg := f.writeConfig(t, dir, cfgOptions{})
	f.mustRun(t, cfg)
	want := crashtest.ParquetMarts(t, filepath.Join(wh, "marts"))
	st, err := extract.StateStore{Dir: wh}.Load("crm", "contacts")
	if err != nil || len(st.Files) == 0 {
		t.Fatalf("no committed crm files: %v", err)
	}
	victim := filepath.Join(wh, st.Files[0].Path)
	data, _ := os.ReadFile(victim)
	if err := os.WriteFile(victim, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	res := f.run(t, cfg, crashtest.Run{})
	if res.Code == 0 {
		t.Fatal("a run over a truncated raw file succeeded")
	}
	if line := cliError(res.Stderr); !strings.Contains(line, filepath.Base(victim)) {
		t.Errorf("the error does not name the corrupt file %s: %q", filepath.Base(victim), line)
	}
	if got := crashtest.ParquetMarts(t, filepath.Join(wh, "marts")); crashtest.Diff("mart", want, got) != "" {
		t.Errorf("marts changed by a failed run:\n%s", crashtest.Diff("mart", want, got))
	}
	f.mustRun(t, cfg, "extract", "--full-refresh", "--source", "crm")
	f.mustRun(t, cfg)
	if got := crashtest.ParquetMarts(t, filepath.Join(wh, "marts")); crashtest.Diff("mart", want, got) != "" {
		t.Errorf("marts after the repair differ:\n%s", crashtest.Diff("mart", want, got))
	}
	checkExactlyOnce(t, wh, "crm.contacts", customers, "contact_id")
}
