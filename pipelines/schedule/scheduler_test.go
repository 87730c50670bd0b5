package schedule

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdwhq/cdw/pipelines"
)

// TestOverlapAndRetry drives the cron loop on an injected clock with an
// attempt that is held and fails once: a tick during the run is skipped and
// recorded, the failure is retried, and runs never overlap. Every wait is on
// an event (with minutes of slack), so a busy machine only makes it slower.
func TestOverlapAndRetry(t *testing.T) {
	dir := t.TempDir()
	p := &Pipeline{Name: "p", Schedule: "@every 1s", Overlap: OverlapSkip, Retries: Retries{MaxAttempts: 2, Backoff: 200 * time.Millisecond}}
	var err error
	if p.sched, err = parseSchedule(p.Schedule, nil); err != nil {
		t.Fatal(err)
	}
	var calls, inFlight, maxInFlight atomic.Int32
	started, release, retried := make(chan struct{}), make(chan struct{}), make(chan struct{})
	s := &Scheduler{Cfg: &Config{Serve: ServeOptions{Listen: "127.0.0.1:0", ShutdownGrace: 5 * time.Second}, Pipelines: []*Pipeline{p}},
		Runner: &pipelines.Runner{Cfg: &pipelines.Config{Warehouse: dir}}}
	fc := newFakeClock(time.Date(2027, 1, 4, 8, 30, 0, 0, time.UTC))
	s.clock = fc
	s.attempt = func(ctx context.Context, _ *Pipeline, n int) error {
		if v := inFlight.Add(1); v > maxInFlight.Load() {
			maxInFlight.Store(v)
		}
		defer inFlight.Add(-1)
		if calls.Add(1) == 1 {
			close(started)
			<-release
			return errors.New("first attempt fails")
		}
		close(retried)
		return nil
	}
	stop := serveInBackground(t, s)
	fc.fireNext(t) // the first run starts and is held
	wait(t, started, "the first attempt")
	fc.fireNext(t) // a tick while it runs: skipped
	waitFor(t, time.Minute, "the skipped tick in the history", func() bool { return count(history(t, dir, "p"), "skipped") >= 1 })
	close(release)
	wait(t, retried, "the retry")
	stop()
	if maxInFlight.Load() != 1 {
		t.Fatalf("runs overlapped: %d at once", maxInFlight.Load())
	}
	if calls.Load() < 2 {
		t.Fatalf("failed attempt was not retried: %d calls", calls.Load())
	}
	recs, err := pipelines.ReadHistory(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	skipped := 0
	for _, r := range recs {
		if r.Status == "skipped" {
			skipped++
		}
	}
	if skipped == 0 {
		t.Fatal("no skipped tick recorded while the run was going")
	}
}

// wait waits for ch to close, failing the test after three minutes.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(3 * time.Minute):
		t.Fatalf("waited 3 minutes for %s", what)
	}
}
