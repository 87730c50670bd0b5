package pipelines_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdwhq/cdw/internal/crashtest"
	"github.com/cdwhq/cdw/pipelines"
)

// extractOnly is a warehouse over the generated sources whose runs only
// extract: enough to take the lock and write history.
func extractOnly(t *testing.T, extra string) *pipelines.Config {
	t.Helper()
	src := newOrderSource(t)
	path := config(t, src.dir)
	if extra != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(f, extra)
		f.Close()
	}
	cfg, err := pipelines.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRunWaitsForLockThenNamesHolder (issue #16 item 7): a run that finds the
// warehouse held waits lock_timeout, then fails with one line that names
// the holder; a holder that lets go in time lets the run through.
func TestRunWaitsForLockThenNamesHolder(t *testing.T) {
	cfg := extractOnly(t, "lock_timeout: 300ms\n")
	if cfg.LockTimeout != 300*time.Millisecond {
		t.Fatalf("lock_timeout = %s", cfg.LockTimeout)
	}
	held, err := pipelines.AcquireLock(cfg.Warehouse)
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&pipelines.Runner{Cfg: cfg}).Run(context.Background(), pipelines.Options{Steps: pipelines.Steps{Extract: true}})
	if !errors.Is(err, pipelines.ErrLocked) {
		t.Fatalf("run on a held warehouse: %v, want ErrLocked", err)
	}
	for _, want := range []string{fmt.Sprintf("pid %d", os.Getpid()), "since ", "waited 300ms (lock_timeout)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is more than one line: %q", err)
	}

	// Released while the run waits (or before it starts: either way the
	// run must go through).
	cfg.LockTimeout = 2 * time.Minute
	done := make(chan error, 1)
	go func() {
		_, err := (&pipelines.Runner{Cfg: cfg}).Run(context.Background(), pipelines.Options{Steps: pipelines.Steps{Extract: true}})
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	held.Release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after the holder let go: %v", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("run did not finish 3 minutes after the lock was released")
	}
}

// TestKilledRunRecordedAsInterrupted (issue #16 item 11): a run killed
// (SIGKILL at a failpoint) leaves no history line of its own; the next
// start records it as interrupted, once.
func TestKilledRunRecordedAsInterrupted(t *testing.T) {
	bin := crashtest.Binary(t)
	cfg := extractOnly(t, "")
	res := crashtest.Exec(t, bin, crashtest.Run{Args: []string{"run", "--config", cfg.File}, Failpoint: "pipeline.after-extract"})
	if !res.Killed {
		t.Fatalf("not killed: %s", res)
	}
	if recs, _ := pipelines.ReadHistory(cfg.Warehouse, 0); len(recs) != 0 {
		t.Fatalf("history before the next start: %+v", recs)
	}
	if res := crashtest.Exec(t, bin, crashtest.Run{Args: []string{"extract", "--config", cfg.File}}); res.Killed || res.Code != 0 {
		t.Fatalf("next run: %s", res)
	}
	recs, err := pipelines.ReadHistory(cfg.Warehouse, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[1].Status != "interrupted" || recs[1].Pipeline != "run" || recs[0].Status != "success" {
		t.Fatalf("history, newest first: %+v; want the next run's success after the killed run as interrupted", recs)
	}
	if !strings.Contains(recs[1].Error, "stopped before the run finished") || recs[1].StartedAt.IsZero() {
		t.Errorf("interrupted record: %+v", recs[1])
	}
	if _, err := os.Stat(filepath.Join(cfg.Warehouse, "state", "run.json")); !os.IsNotExist(err) {
		t.Errorf("state/run.json left after a finished run: %v", err)
	}
}
