package schedule

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/pipelines"
)

// serveInBackground starts s.Serve and returns a stop function that cancels
// it (as SIGTERM does) and waits for Serve to return.
func serveInBackground(t *testing.T, s *Scheduler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("Serve did not return 2 minutes after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// execution is one due run of a pipeline: its attempts, in order.
type execution []pipelines.RunRecord

func (e execution) start() time.Time { return e[0].StartedAt }
func (e execution) end() time.Time   { return e[len(e)-1].StartedAt.Add(e[len(e)-1].Duration) }

// executions groups the non-skipped, non-queued records of one pipeline
// (oldest first) into due runs: a record with attempt 1 starts a new one.
func executions(t *testing.T, recs []pipelines.RunRecord) []execution {
	t.Helper()
	var out []execution
	for _, r := range recs {
		if r.Status == "skipped" || r.Status == "queued" {
			continue
		}
		if r.Attempt == 1 || len(out) == 0 {
			out = append(out, execution{r})
			continue
		}
		out[len(out)-1] = append(out[len(out)-1], r)
	}
	for i := 1; i < len(out); i++ {
		if out[i].start().Before(out[i-1].end()) {
			t.Fatalf("runs overlapped: run %s started at %s before run %s ended at %s",
				out[i][0].ID, out[i].start().Format(time.StampMilli), out[i-1][0].ID, out[i-1].end().Format(time.StampMilli))
		}
	}
	return out
}

// TestScheduledRealRuns drives real pipeline runs of a demo warehouse with a
// 1 s schedule: a slow run makes later ticks be skipped (and recorded), a
// model that fails until a file appears is retried after the backoff, and a
// second scheduler on the same warehouse continues the same history, which
// `cdw runs` shows.
func TestScheduledRealRuns(t *testing.T) {
	dir := demo(t, `serve: {listen: "off", shutdown_grace: 20s}
pipelines:
  - name: nightly
    schedule: "@every 1s"
    steps: [extract, transform, publish]
    overlap: skip
    retries: {max_attempts: 3, backoff: 1s}
`)
	gate := filepath.Join(dir, "gate.csv")
	writeModel(t, dir, "slow_check.sql", slowModel(100_000_000))
	writeModel(t, dir, "gate_check.sql", "-- materialized: table\n-- description: fails until gate.csv exists\nSELECT count(*) AS n FROM read_csv("+duck.Literal(gate)+")\n")

	// The observer only reacts to the scheduler's own log line: when the
	// first attempt has failed, the missing file appears, so the retry is
	// what makes the run succeed.
	var failures atomic.Int32
	log := newHook(t, func(msg string, a map[string]string) {
		if msg == "pipeline run failed" && failures.Add(1) == 1 {
			if err := os.WriteFile(gate, []byte("n\n1\n"), 0o600); err != nil {
				t.Error(err)
			}
		}
	})
	s := newScheduler(t, dir, log)
	stop := serveInBackground(t, s)
	waitFor(t, 5*time.Minute, "a retried run to succeed", func() bool {
		recs := history(t, dir, "nightly")
		return count(recs, "success") >= 1 && count(recs, "skipped") >= 1
	})
	stop()

	recs := history(t, dir, "nightly")
	runs := executions(t, recs)
	first := runs[0]
	if len(first) != 2 || first[0].Status != "error" || first[1].Status != "success" || first[1].Attempt != 2 {
		t.Fatalf("first scheduled run: want attempt 1 error then attempt 2 success, got %+v", first)
	}
	if !strings.Contains(first[0].Error, "gate_check") {
		t.Errorf("failed attempt's error does not name the failing model: %q", first[0].Error)
	}
	if gap := first[1].StartedAt.Sub(first[0].StartedAt.Add(first[0].Duration)); gap < 900*time.Millisecond {
		t.Errorf("retry started %s after the failure, backoff is 1s", gap)
	}
	if first[1].Rows != 0 || first[0].Rows == 0 {
		t.Errorf("rows: attempt 1 extracted %d, attempt 2 %d; the retry must not extract the same rows again", first[0].Rows, first[1].Rows)
	}
	for _, r := range recs {
		if r.Status != "skipped" {
			continue
		}
		busy := false
		for _, e := range runs {
			// A little slack after the end: the freshness refresh runs
			// before the pipeline counts as idle.
			if !r.StartedAt.Before(e.start()) && !r.StartedAt.After(e.end().Add(time.Second)) {
				busy = true
			}
		}
		if !busy {
			t.Errorf("tick at %s was skipped although no run was going", r.StartedAt.Format(time.StampMilli))
		}
		if r.Error == "" {
			t.Errorf("skipped tick at %s has no reason", r.StartedAt.Format(time.StampMilli))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "marts", "customer_segments.parquet")); err != nil {
		t.Fatalf("the scheduled run published nothing: %v", err)
	}

	// Restart: a new scheduler on the same warehouse adds to the history.
	before := len(recs)
	s2 := newScheduler(t, dir, newHook(t, nil))
	stop2 := serveInBackground(t, s2)
	waitFor(t, 5*time.Minute, "a run of the restarted scheduler", func() bool {
		return count(history(t, dir, "nightly"), "success") > count(recs, "success")
	})
	stop2()
	all := history(t, dir, "nightly")
	if len(all) <= before || all[0].ID != recs[0].ID {
		t.Fatalf("restarted scheduler lost the earlier history: %d records, first %s (was %d, first %s)", len(all), all[0].ID, before, recs[0].ID)
	}
	out := cdw(t, cdwBinary(t), "runs", "--config", filepath.Join(dir, "cdw.yaml"), "-n", "1000")
	for _, r := range []pipelines.RunRecord{first[0], first[1], all[len(all)-1]} {
		if !strings.Contains(out, r.ID) {
			t.Errorf("cdw runs does not list run %s (%s):\n%s", r.ID, r.Status, out)
		}
	}
	if !strings.Contains(out, "skipped") || !strings.Contains(out, "gate_check") {
		t.Errorf("cdw runs does not show the skipped ticks and the failed attempt:\n%s", out)
	}
}

// TestQueuedRunStartsRightAfter: with overlap: queue, a tick during a run is
// recorded as queued and the queued run starts as soon as the running one
// ends, not at a later tick. The clock is injected and the first run is held
// (its first log line blocks) until the second tick has been queued, so the
// test never races the wall clock: on a busy machine it only takes longer.
func TestQueuedRunStartsRightAfter(t *testing.T) {
	dir := demo(t, `serve: {listen: "off", shutdown_grace: 20s}
pipelines:
  - name: hourly
    schedule: "0 * * * *"
    steps: [extract, transform]
    overlap: queue
`)
	inRun, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	s := newScheduler(t, dir, newHook(t, func(msg string, a map[string]string) {
		if a["attempt"] != "" && held.CompareAndSwap(false, true) {
			close(inRun)
			<-release
		}
	}))
	fc := newFakeClock(time.Date(2027, 1, 4, 8, 30, 0, 0, time.UTC))
	s.clock = fc
	stop := serveInBackground(t, s)
	fc.fireNext(t) // 09:00: the first run starts
	select {
	case <-inRun:
	case <-time.After(3 * time.Minute):
		t.Fatal("the first run did not start within 3 minutes")
	}
	fc.fireNext(t) // 10:00, while the first run is held: queued
	waitFor(t, time.Minute, "the queued tick in the history", func() bool { return count(history(t, dir, "hourly"), "queued") == 1 })
	close(release)
	waitFor(t, 5*time.Minute, "the queued run", func() bool { return count(history(t, dir, "hourly"), "success") >= 2 })
	if now := fc.Now(); !now.Equal(time.Date(2027, 1, 4, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("the clock moved on to %s: the second run may have come from a later tick", now)
	}
	stop()
	recs := history(t, dir, "hourly")
	runs := executions(t, recs) // fails on overlapping runs
	if len(runs) != 2 || count(recs, "queued") != 1 || count(recs, "error") != 0 {
		t.Fatalf("want two successful runs and one queued tick, got %+v", recs)
	}
}

// TestHealthzAndMetrics scrapes /healthz and /metrics over real HTTP before
// and after a real run and checks the counters against the history and the
// raw layer.
func TestHealthzAndMetrics(t *testing.T) {
	dir := demo(t, `serve: {listen: "127.0.0.1:0", shutdown_grace: 20s}
pipelines:
  - name: p
    schedule: "@every 1s"
    steps: [extract, transform, publish]
`)
	s := newScheduler(t, dir, newHook(t, nil))
	started := time.Now()
	stop := serveInBackground(t, s)
	waitFor(t, time.Minute, "the metrics listener", func() bool { return s.Addr() != nil })
	base := "http://" + s.Addr().String()

	m0 := scrape(t, base)
	if v, n := sum(m0, "cdw_up", nil); n != 1 || v != 1 {
		t.Fatalf("cdw_up = %v (%d samples), want 1", v, n)
	}
	for _, name := range []string{"cdw_runs_total", "cdw_rows_extracted_total", "cdw_data_freshness_seconds", "cdw_run_duration_seconds"} {
		if _, n := sum(m0, name, nil); n != 0 {
			t.Fatalf("%s has samples before any run on a new warehouse", name)
		}
	}
	h0 := healthz(t, base)
	if h0.Status != "ok" || len(h0.LastSuccess) != 0 {
		t.Fatalf("/healthz before any run: %+v", h0)
	}

	var m1 []promSample
	waitFor(t, 5*time.Minute, "cdw_runs_total{status=success}", func() bool {
		m1 = scrape(t, base)
		v, _ := sum(m1, "cdw_runs_total", map[string]string{"pipeline": "p", "status": "success"})
		return v >= 1
	})
	h1 := healthz(t, base)
	stop()

	// Ticks that arrived while the run was going are recorded as skipped:
	// only real runs count here.
	var recs []pipelines.RunRecord
	for _, r := range history(t, dir, "p") {
		if r.Status != "skipped" && r.Status != "queued" {
			recs = append(recs, r)
		}
	}
	if len(recs) == 0 || recs[0].Status != "success" || recs[0].Rows == 0 {
		t.Fatalf("first run: %+v", recs)
	}
	if v, _ := sum(m1, "cdw_rows_extracted_total", nil); int64(v) != recs[0].Rows {
		t.Errorf("cdw_rows_extracted_total = %v, history says the first run extracted %d", v, recs[0].Rows)
	}
	for _, e := range []string{"orders", "tickets", "contacts"} {
		if v, n := sum(m1, "cdw_rows_extracted_total", map[string]string{"entity": e}); n == 0 || v == 0 {
			t.Errorf("cdw_rows_extracted_total has no rows for %s", e)
		}
	}
	if v, n := sum(m1, "cdw_run_duration_seconds", map[string]string{"pipeline": "p"}); n != 1 || v < recs[0].Duration.Seconds()*0.9 || v > 60 {
		t.Errorf("cdw_run_duration_seconds = %v, history says the run took %s", v, recs[0].Duration)
	}
	if v, n := sum(m1, "cdw_last_success_timestamp_seconds", map[string]string{"pipeline": "p"}); n != 1 || v < float64(started.Unix()) || v > float64(time.Now().Unix()) {
		t.Errorf("cdw_last_success_timestamp_seconds = %v", v)
	}
	// Freshness: now minus the newest updated_at in the raw layer, which
	// the test reads itself.
	newest := newestRaw(t, dir)
	for _, e := range []string{"orders", "tickets", "contacts"} {
		v, n := sum(m1, "cdw_data_freshness_seconds", map[string]string{"entity": e})
		want := time.Since(newest[e]).Seconds()
		if n != 1 || v <= 0 || v > want+1 || v < want-30 {
			t.Errorf("cdw_data_freshness_seconds{entity=%s} = %v, raw layer says about %.0f", e, v, want)
		}
	}
	if h1.Status != "ok" || h1.LastSuccess["p"] == "" {
		t.Fatalf("/healthz after a run: %+v", h1)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("/healthz still answers after shutdown")
	}
}

type health struct {
	Status      string            `json:"status"`
	Uptime      int               `json:"uptime_seconds"`
	LastSuccess map[string]string `json:"last_success"`
}

func healthz(t *testing.T, base string) health {
	t.Helper()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("/healthz: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var h health
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("/healthz is not JSON: %v: %s", err, body)
	}
	return h
}

// newestRaw reads max(updated_at) per entity straight from the raw Parquet.
func newestRaw(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]time.Time{}
	for _, e := range []string{"orders", "tickets", "contacts"} {
		var ts time.Time
		glob := filepath.Join(dir, "raw", "*", e, "*", "*.parquet")
		if err := db.QueryRow(fmt.Sprintf("SELECT max(updated_at)::TIMESTAMPTZ FROM read_parquet(%s)", duck.Literal(glob))).Scan(&ts); err != nil {
			t.Fatalf("reading raw %s: %v", e, err)
		}
		out[e] = ts
	}
	return out
}
