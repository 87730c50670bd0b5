package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdwhq/cdw/pipelines"
)

type healthBody struct {
	Status    string `json:"status"`
	Pipelines map[string]struct {
		LastRun *struct {
			Status, StartedAt, Error string
		} `json:"last_run"`
		ConsecutiveFailures int    `json:"consecutive_failures"`
		Healthy             bool   `json:"healthy"`
		Reason              string `json:"reason"`
	} `json:"pipelines"`
}

func getHealth(t *testing.T, s *Scheduler) (int, healthBody) {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h healthBody
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, h
}

// TestHealthzTurnsUnhealthy (issue #16 item 11): /healthz reports each
// pipeline's last run, and answers 503 after unhealthy_after failed runs in
// a row, or when a pipeline has had no success for stale_after (here a run
// that hangs while its ticks are skipped). Clock injected, runs stubbed.
func TestHealthzTurnsUnhealthy(t *testing.T) {
	mk := func(t *testing.T, attempt func(context.Context, *Pipeline, int) error) (*Scheduler, *fakeClock) {
		p := &Pipeline{Name: "hourly", Schedule: "0 * * * *", Overlap: OverlapSkip, Retries: Retries{MaxAttempts: 1}}
		var err error
		if p.sched, err = parseSchedule(p.Schedule, time.UTC); err != nil {
			t.Fatal(err)
		}
		fc := newFakeClock(time.Date(2027, 1, 4, 8, 30, 0, 0, time.UTC))
		s := &Scheduler{Cfg: &Config{Serve: ServeOptions{Listen: "127.0.0.1:0", ShutdownGrace: time.Second, UnhealthyAfter: 2, StaleAfter: 90 * time.Minute},
			Pipelines: []*Pipeline{p}}, Runner: &pipelines.Runner{Cfg: &pipelines.Config{Warehouse: t.TempDir()}}, clock: fc, Log: newHook(t, nil)}
		s.attempt = attempt
		serveInBackground(t, s)
		waitFor(t, time.Minute, "the listener", func() bool { return s.Addr() != nil })
		return s, fc
	}

	t.Run("failures", func(t *testing.T) {
		var calls atomic.Int32
		s, fc := mk(t, func(context.Context, *Pipeline, int) error {
			calls.Add(1)
			return errors.New("source erp: connection refused")
		})
		ran := func(n int32) {
			t.Helper()
			waitFor(t, time.Minute, "the run to start", func() bool { return calls.Load() == n })
			idle(t, s, "hourly")
		}
		if code, h := getHealth(t, s); code != 200 || h.Status != "ok" || h.Pipelines["hourly"].LastRun != nil {
			t.Fatalf("before any run: %d %+v", code, h)
		}
		fc.fireNext(t)
		ran(1)
		code, h := getHealth(t, s)
		if code != 200 || h.Pipelines["hourly"].LastRun == nil || h.Pipelines["hourly"].LastRun.Status != "error" ||
			!strings.Contains(h.Pipelines["hourly"].LastRun.Error, "connection refused") || h.Pipelines["hourly"].ConsecutiveFailures != 1 {
			t.Fatalf("after one failure (unhealthy_after: 2): %d %+v", code, h)
		}
		fc.fireNext(t)
		ran(2)
		code, h = getHealth(t, s)
		if code != http.StatusServiceUnavailable || h.Status != "unhealthy" || !strings.Contains(h.Pipelines["hourly"].Reason, "2 failed runs in a row") {
			t.Fatalf("after two failures: %d %+v", code, h)
		}
	})

	t.Run("stale", func(t *testing.T) {
		var calls atomic.Int32
		release := make(chan struct{})
		defer close(release)
		s, fc := mk(t, func(ctx context.Context, _ *Pipeline, _ int) error {
			if calls.Add(1) == 1 {
				return nil
			}
			<-release // the second run hangs
			return nil
		})
		fc.fireNext(t) // 09:00: success
		waitFor(t, time.Minute, "the first run", func() bool { return calls.Load() == 1 })
		idle(t, s, "hourly")
		fc.fireNext(t) // 10:00: hangs
		waitFor(t, time.Minute, "the second run to start", func() bool { return calls.Load() == 2 })
		if code, h := getHealth(t, s); code != 200 || h.Pipelines["hourly"].LastRun.Status != "success" {
			t.Fatalf("at 10:00, a success an hour ago: %d %+v", code, h)
		}
		fc.fireNext(t) // 11:00: skipped; 2 h since the success > stale_after 90m
		waitFor(t, time.Minute, "the skipped tick", func() bool { return count(history(t, s.Runner.Cfg.Warehouse, "hourly"), "skipped") == 1 })
		code, h := getHealth(t, s)
		if code != http.StatusServiceUnavailable || !strings.Contains(h.Pipelines["hourly"].Reason, "no successful run since 2027-01-04T09:00:00Z") {
			t.Fatalf("at 11:00 with the run hanging: %d %+v", code, h)
		}
	})
}

// TestHealthKeysParse: serve.unhealthy_after and serve.stale_after as the
// README writes them, their defaults, and a bad value naming the key.
func TestHealthKeysParse(t *testing.T) {
	parse := func(serve string) (*Config, error) {
		path := filepath.Join(t.TempDir(), "cdw.yaml")
		os.WriteFile(path, []byte("sources: []\n"+serve+"pipelines:\n  - {name: p, schedule: \"0 * * * *\", steps: [extract]}\n"), 0o600)
		c, err := pipelines.LoadConfig(path)
		if err != nil {
			return nil, err
		}
		return ParseConfig(c)
	}
	c, err := parse("serve:\n  unhealthy_after: 2\n  stale_after: 26h\n")
	if err != nil || c.Serve.UnhealthyAfter != 2 || c.Serve.StaleAfter != 26*time.Hour {
		t.Fatalf("%+v, %v", c, err)
	}
	if c, err = parse(""); err != nil || c.Serve.UnhealthyAfter != defaultUnhealthyAfter || c.Serve.StaleAfter != 0 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	if _, err := parse("serve:\n  unhealthy_after: 0\n"); err == nil || !strings.Contains(err.Error(), "unhealthy_after") || !strings.Contains(err.Error(), "cdw.yaml:") {
		t.Fatalf("unhealthy_after: 0: %v", err)
	}
}
