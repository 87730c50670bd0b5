package schedule

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdwhq/cdw/pipelines"
)

// TestOverlapAndRetry drives the real cron loop with a 1 s schedule and an
// attempt that is slow and fails once: ticks during a run are skipped and
// recorded, the failure is retried, and runs never overlap.
func TestOverlapAndRetry(t *testing.T) {
	dir := t.TempDir()
	p := &Pipeline{Name: "p", Schedule: "@every 1s", Overlap: OverlapSkip, Retries: Retries{MaxAttempts: 2, Backoff: 200 * time.Millisecond}}
	var err error
	if p.sched, err = parseSchedule(p.Schedule, nil); err != nil {
		t.Fatal(err)
	}
	var calls, inFlight, maxInFlight atomic.Int32
	s := &Scheduler{Cfg: &Config{Serve: ServeOptions{Listen: "127.0.0.1:0", ShutdownGrace: 5 * time.Second}, Pipelines: []*Pipeline{p}},
		Runner: &pipelines.Runner{Cfg: &pipelines.Config{Warehouse: dir}}}
	s.attempt = func(ctx context.Context, _ *Pipeline, n int) error {
		if v := inFlight.Add(1); v > maxInFlight.Load() {
			maxInFlight.Store(v)
		}
		defer inFlight.Add(-1)
		time.Sleep(2500 * time.Millisecond)
		if calls.Add(1) == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Second)
	defer cancel()
	if err := s.Serve(ctx); err != nil {
		t.Fatal(err)
	}
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
