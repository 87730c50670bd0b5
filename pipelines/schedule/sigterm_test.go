package schedule

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdwhq/cdw/internal/duck"
)

// TestSIGTERMChildProcess runs the real cdw binary as `cdw serve` with a 1 s
// schedule and a slow user model, sends SIGTERM while the scheduled run is
// in its transform step, and checks what a user relies on: the process exits
// in time with status 0, marts/ holds no temporary files, every published
// mart is complete (the previous version when the run was cancelled, the new
// one when it finished within the grace period), the warehouse lock is free
// for the next `cdw run`, and the history tells what happened.
func TestSIGTERMChildProcess(t *testing.T) {
	bin := cdwBinary(t)
	cases := []struct {
		name      string
		grace     time.Duration
		slowRows  int64  // the slow model: far longer than grace, or well within it
		want      string // history status of the interrupted run
		published bool   // the run finishes its publish step (unchanged marts keep their version)
	}{
		{"grace over: run cancelled", time.Second, 30_000_000_000, "cancelled", false},
		{"run finishes within grace", 60 * time.Second, 300_000_000, "success", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := demo(t, fmt.Sprintf(`serve: {listen: "off", shutdown_grace: %s}
pipelines:
  - name: nightly
    schedule: "@every 1s"
    steps: [extract, transform, publish]
`, tc.grace))
			cfg := filepath.Join(dir, "cdw.yaml")
			cdw(t, bin, "run", "--config", cfg)
			ref := martSums(t, dir)
			refVersion := currentVersion(t, dir)
			if len(ref.parquet) < 5 {
				t.Fatalf("reference run published only %d marts", len(ref.parquet))
			}

			writeModel(t, dir, "slow_check.sql", slowModel(tc.slowRows))
			cmd := exec.Command(bin, "serve", "--config", cfg, "--log-level", "info")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill() })
			// A "model" log line means the scheduled run is in its
			// transform step; the slow model keeps it there.
			inTransform := make(chan struct{})
			logDone := make(chan string)
			go func() {
				var all strings.Builder
				sc := bufio.NewScanner(stderr)
				signalled := false
				for sc.Scan() {
					all.WriteString(sc.Text() + "\n")
					if !signalled && strings.Contains(sc.Text(), "msg=model ") {
						signalled = true
						close(inTransform)
					}
				}
				logDone <- all.String()
			}()
			select {
			case <-inTransform:
			case <-time.After(3 * time.Minute):
				t.Fatal("no scheduled run reached the transform step in 3 minutes")
			}
			sent := time.Now()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			logs := <-logDone
			waitErr := cmd.Wait()
			took := time.Since(sent)
			t.Logf("exited %.2fs after SIGTERM (grace %s): %v", took.Seconds(), tc.grace, waitErr)
			if waitErr != nil {
				t.Fatalf("cdw serve did not exit cleanly after SIGTERM: %v\n%s", waitErr, logs)
			}
			// Margin: DuckDB's interrupt, the history line and shutdown, on
			// a machine whose other core may be busy. The cancelled run's
			// slow model would take far longer than that.
			if limit := tc.grace + 30*time.Second; took > limit {
				t.Fatalf("cdw serve took %s to stop (limit %s)\n%s", took, limit, logs)
			}
			if !tc.published && !strings.Contains(logs, "grace period over") {
				t.Errorf("log does not say the run was cancelled after the grace period:\n%s", logs)
			}

			noTempFiles(t, dir)
			got := martSums(t, dir)
			// The marts' data did not change (the slow model is no mart), so
			// a run that finishes publishes no new version (issue #16 item
			// 9); its history line says which version it left in place.
			if v := currentVersion(t, dir); v != refVersion {
				t.Fatalf("marts/current is %s, was %s: the marts did not change", v, refVersion)
			}
			for mart, sum := range ref.parquet {
				g, ok := got.parquet[mart]
				switch {
				case !ok:
					t.Errorf("mart %s is gone after SIGTERM", mart)
				case !tc.published && g != sum:
					t.Errorf("mart %s changed although nothing was published: %s, was %s", mart, g, sum)
				case g.rows != sum.rows:
					t.Errorf("mart %s has %d rows, the same data gave %d", mart, g.rows, sum.rows)
				}
				if got.current[mart] != g {
					t.Errorf("marts/%s.parquet and marts/current/%s.parquet differ: %s vs %s", mart, mart, g, got.current[mart])
				}
				if got.duckdb[mart] != g {
					t.Errorf("mart %s differs between Parquet and marts.duckdb: %s vs %s", mart, g, got.duckdb[mart])
				}
				if tc.published && got.warehouse[mart] != g {
					t.Errorf("published mart %s is not the warehouse table it came from: %s vs %s", mart, g, got.warehouse[mart])
				}
			}

			recs := history(t, dir, "nightly")
			if len(recs) == 0 {
				t.Fatal("no history line for the interrupted run")
			}
			last := recs[len(recs)-1]
			t.Logf("history: %s attempt %d %s %q", last.ID, last.Attempt, last.Status, last.Error)
			if last.Status != tc.want {
				t.Fatalf("interrupted run recorded as %s (%s), want %s", last.Status, last.Error, tc.want)
			}
			if tc.want == "cancelled" && !strings.Contains(strings.ToLower(last.Error), "interrupt") && !strings.Contains(last.Error, "cancel") {
				t.Fatalf("cancelled run's history gives no reason: %q", last.Error)
			}
			if tc.published && filepath.Base(refVersion) != last.Version {
				t.Errorf("finished run's history says publish version %q, want %s", last.Version, filepath.Base(refVersion))
			}
			if last.Attempt != 1 {
				t.Errorf("history attempt = %d, want 1", last.Attempt)
			}

			// The lock is free: a plain run right after succeeds, and
			// publishes the same marts again.
			writeModel(t, dir, "slow_check.sql", "")
			cdw(t, bin, "run", "--config", cfg)
			after := martSums(t, dir)
			for mart, sum := range ref.parquet {
				if after.parquet[mart].rows != sum.rows {
					t.Errorf("mart %s has %d rows after the next run, want %d", mart, after.parquet[mart].rows, sum.rows)
				}
			}
			if runs := cdw(t, bin, "runs", "--config", cfg); !strings.Contains(runs, last.ID) {
				t.Errorf("cdw runs does not list the interrupted run %s:\n%s", last.ID, runs)
			}
		})
	}
}

// cdw runs the binary and fails the test on a non-zero exit.
func cdw(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, append(args, "--log-level", "warn")...).CombinedOutput()
	if err != nil {
		t.Fatalf("cdw %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// martSum fingerprints a mart's content: row count and an order-independent
// digest of every row.
type martSum struct {
	rows int64
	md5  string
}

func (s martSum) String() string { return fmt.Sprintf("%d rows/%s", s.rows, s.md5) }

type martSet struct {
	parquet, current, duckdb, warehouse map[string]martSum
}

// martSums reads every published mart the way BI tools do (marts/*.parquet,
// marts/current/, marts.duckdb) and the warehouse tables they came from.
func martSums(t *testing.T, dir string) martSet {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for alias, f := range map[string]string{"m": "marts.duckdb", "w": "warehouse.duckdb"} {
		if _, err := db.Exec(fmt.Sprintf("ATTACH %s AS %s (READ_ONLY)", duck.Literal(filepath.Join(dir, f)), alias)); err != nil {
			t.Fatalf("opening %s: %v", f, err)
		}
	}
	sum := func(from string) martSum {
		var s martSum
		var md5 sql.NullString
		q := "SELECT count(*), md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY CAST(t AS VARCHAR))) FROM " + from + " t"
		if err := db.QueryRow(q).Scan(&s.rows, &md5); err != nil {
			t.Fatalf("reading %s: %v", from, err)
		}
		s.md5 = md5.String
		return s
	}
	out := martSet{map[string]martSum{}, map[string]martSum{}, map[string]martSum{}, map[string]martSum{}}
	files, _ := filepath.Glob(filepath.Join(dir, "marts", "*.parquet"))
	for _, f := range files {
		mart := strings.TrimSuffix(filepath.Base(f), ".parquet")
		out.parquet[mart] = sum("read_parquet(" + duck.Literal(f) + ")")
		out.current[mart] = sum("read_parquet(" + duck.Literal(filepath.Join(dir, "marts", "current", mart+".parquet")) + ")")
		out.duckdb[mart] = sum("m.main." + duck.Ident(mart))
		out.warehouse[mart] = sum("w.main." + duck.Ident(mart))
	}
	return out
}

func currentVersion(t *testing.T, dir string) string {
	t.Helper()
	v, err := os.Readlink(filepath.Join(dir, "marts", "current"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// noTempFiles fails on any publish leftover in marts/ or beside marts.duckdb.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	var found []string
	filepath.WalkDir(filepath.Join(dir, "marts"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), "tmp") {
			found = append(found, p)
		}
		return err
	})
	top, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range top {
		if strings.Contains(e.Name(), "tmp") || strings.HasPrefix(e.Name(), ".marts") {
			found = append(found, e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "marts.duckdb.wal")); !errors.Is(err, os.ErrNotExist) {
		found = append(found, "marts.duckdb.wal")
	}
	sort.Strings(found)
	if len(found) > 0 {
		t.Fatalf("temporary files left after SIGTERM: %v", found)
	}
}
