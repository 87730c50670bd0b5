package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cdwhq/cdw/internal/secret"
	"github.com/cdwhq/cdw/load/alert"
	"github.com/cdwhq/cdw/load/report"
	"github.com/cdwhq/cdw/pipelines"
)

// Scheduler runs configured pipelines on their schedules.
type Scheduler struct {
	Cfg    *Config
	Runner *pipelines.Runner
	Log    *slog.Logger

	// attempt runs one attempt of a pipeline; nil means the real pipeline
	// run. Tests of the overlap/retry policy replace it.
	attempt func(ctx context.Context, p *Pipeline, n int) error
	// clock tells the time and waits for the next due run; nil means the
	// real clock. Tests inject one to check schedules without waiting.
	clock clock

	metrics *metrics
	runMu   sync.Mutex // one run at a time in this process: one warehouse writer
	wg      sync.WaitGroup
	stopped chan struct{}

	mu    sync.Mutex
	state map[string]*pipelineState
	addr  net.Addr
}

type pipelineState struct {
	running, queued bool
}

// Addr is the address /metrics listens on, once Serve has started.
func (s *Scheduler) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Serve runs until ctx is cancelled (SIGTERM). Then it stops scheduling,
// gives a running pipeline Serve.ShutdownGrace to finish, cancels it
// otherwise, and returns once every run has recorded its history.
func (s *Scheduler) Serve(ctx context.Context) error {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	s.state = map[string]*pipelineState{}
	s.stopped = make(chan struct{})
	if s.clock == nil {
		s.clock = realClock{}
	}
	s.metrics = newMetrics(s.Runner.Cfg, s.clock.Now)
	if recs, err := pipelines.ReadHistory(s.Runner.Cfg.Warehouse, 10000); err != nil {
		s.Log.Warn("reading run history for /healthz", "err", err)
	} else {
		names := make([]string, len(s.Cfg.Pipelines))
		for i, p := range s.Cfg.Pipelines {
			names[i] = p.Name
		}
		s.metrics.seed(recs, names)
	}
	s.metrics.refreshFreshness(ctx, s.Log)
	if s.attempt == nil {
		s.attempt = s.runAttempt
	}

	var srv *http.Server
	if s.Cfg.Serve.Listen != "off" {
		ln, err := net.Listen("tcp", s.Cfg.Serve.Listen)
		if err != nil {
			return fmt.Errorf("listening for /metrics on %s: %w", s.Cfg.Serve.Listen, err)
		}
		s.mu.Lock()
		s.addr = ln.Addr()
		s.mu.Unlock()
		docs := &docsSite{runner: s.Runner, log: s.Log}
		srv = &http.Server{Handler: s.metrics.handler(s.healthz, docs), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		s.Log.Info("serving /healthz, /metrics and /docs", "addr", ln.Addr().String())
	}

	// Runs get their own context: SIGTERM must not cut a step short at
	// once, only after the grace period.
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	var loops sync.WaitGroup
	for _, p := range s.Cfg.Pipelines {
		s.state[p.Name] = &pipelineState{}
		s.Log.Info("pipeline scheduled", "pipeline", p.Name, "schedule", p.Schedule, "next", p.sched.Next(s.clock.Now()).Format(time.RFC3339))
		loops.Add(1)
		go func() {
			defer loops.Done()
			s.loop(ctx, runCtx, p)
		}()
	}
	<-ctx.Done()
	close(s.stopped)
	loops.Wait()
	s.Log.Info("stopping: waiting for running pipelines", "grace", s.Cfg.Serve.ShutdownGrace)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.Cfg.Serve.ShutdownGrace):
		s.Log.Warn("grace period over: cancelling the running pipeline")
		cancelRuns()
		<-done
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}
	return nil
}

// loop calls due each time p's schedule comes round, until ctx ends.
func (s *Scheduler) loop(ctx, runCtx context.Context, p *Pipeline) {
	last := s.clock.Now()
	for {
		now := s.clock.Now()
		if now.Before(last) {
			now = last // the clock went back: never fire one time twice
		}
		next := p.sched.Next(now)
		if next.IsZero() {
			return // a schedule with no future time
		}
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(next.Sub(s.clock.Now())):
		}
		last = next
		s.due(runCtx, p)
	}
}

// due is called when p is due; it applies the overlap policy.
func (s *Scheduler) due(ctx context.Context, p *Pipeline) {
	select {
	case <-s.stopped:
		return
	default:
	}
	s.mu.Lock()
	st := s.state[p.Name]
	if st.running {
		if p.Overlap == OverlapQueue && !st.queued {
			st.queued = true
			s.mu.Unlock()
			s.Log.Info("pipeline still running: queued one more run", "pipeline", p.Name)
			s.metrics.run(p.Name, "queued", 0, nil)
			now := s.clock.Now().UTC()
			s.record(pipelines.RunRecord{ID: now.Format("20060102T150405.000Z"), Pipeline: p.Name,
				Status: "queued", StartedAt: now, Error: "previous run still going: runs right after it"})
			return
		}
		s.mu.Unlock()
		s.Log.Info("pipeline still running: skipped", "pipeline", p.Name)
		s.metrics.run(p.Name, "skipped", 0, nil)
		now := s.clock.Now().UTC()
		s.record(pipelines.RunRecord{ID: now.Format("20060102T150405.000Z"), Pipeline: p.Name,
			Status: "skipped", StartedAt: now, Error: "previous run still going"})
		return
	}
	st.running = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		for {
			s.execute(ctx, p)
			s.mu.Lock()
			again := st.queued
			st.queued = false
			select {
			case <-s.stopped:
				again = false
			default:
			}
			if !again {
				st.running = false
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
		}
	}()
}

// execute runs p with retries and backoff.
func (s *Scheduler) execute(ctx context.Context, p *Pipeline) {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	backoff := p.Retries.Backoff
	due := s.clock.Now()
	for n := 1; ; n++ {
		start := time.Now()
		err := s.attempt(ctx, p, n)
		if err == nil || n >= p.Retries.MaxAttempts || ctx.Err() != nil {
			r := pipelines.RunRecord{Pipeline: p.Name, Status: "success", StartedAt: due.UTC(), Attempt: n}
			if err != nil {
				r.Status, r.Error = "error", secret.Scrub(err.Error())
			}
			s.metrics.outcome(r)
		}
		status := "success"
		if err != nil {
			status = "error"
		}
		s.metrics.run(p.Name, status, time.Since(start), nil)
		if err == nil {
			s.Log.Info("pipeline run finished", "pipeline", p.Name, "attempt", n, "seconds", time.Since(start).Seconds())
			return
		}
		s.Log.Error("pipeline run failed", "pipeline", p.Name, "attempt", n, "of", p.Retries.MaxAttempts, "err", err)
		if n >= p.Retries.MaxAttempts || ctx.Err() != nil {
			return
		}
		select {
		case <-time.After(backoff):
		case <-s.stopped: // shutting down: abandon the retries
			s.Log.Info("shutting down: not retrying", "pipeline", p.Name)
			s.metrics.outcome(pipelines.RunRecord{Pipeline: p.Name, Status: "error", StartedAt: due.UTC(), Attempt: n, Error: secret.Scrub(err.Error())})
			return
		}
		backoff *= 2
	}
}

// runAttempt is one real attempt: the pipeline steps through Runner.Run
// (which takes the warehouse lock and records history), then the report.
func (s *Scheduler) runAttempt(ctx context.Context, p *Pipeline, n int) error {
	if p.steps.Extract || p.steps.Transform || p.steps.Publish {
		rep, err := s.Runner.Run(ctx, pipelines.Options{Steps: p.steps, Pipeline: p.Name, Attempt: n, Log: s.Log.With("pipeline", p.Name, "attempt", n)})
		if rep != nil {
			for _, e := range rep.Extract {
				s.metrics.rows(e.Source, e.Entity, e.Rows)
				s.metrics.slot(e)
			}
			if len(rep.Extract) > 0 {
				s.metrics.refreshFreshness(ctx, s.Log)
			}
		}
		if err != nil {
			return err
		}
	}
	// Alerts before the report: a failing report must not hold them back.
	if p.alert {
		if err := s.runNotify(ctx, p, n); err != nil {
			return err
		}
	}
	if p.rep {
		return s.runReport(ctx, p, n)
	}
	return nil
}

// runNotify delivers the early-warning alerts under the warehouse lock (the
// outbox is warehouse state) and records the run; its summary lines go to
// the log.
func (s *Scheduler) runNotify(ctx context.Context, p *Pipeline, n int) error {
	start := time.Now()
	rec := pipelines.RunRecord{ID: start.UTC().Format("20060102T150405.000Z"), Pipeline: p.Name, StartedAt: start.UTC(), Attempt: n, Status: "success"}
	lock, err := pipelines.WaitLock(ctx, s.Runner.Cfg.Warehouse, s.Runner.Cfg.LockTimeout)
	if err != nil {
		return err
	}
	defer lock.Release()
	log := s.Log.With("pipeline", p.Name, "step", "notify")
	res, err := alert.Run(ctx, s.Cfg.Alerts, alert.RunOptions{Log: log})
	for _, l := range res.Lines() {
		log.Info(l)
	}
	rec.Duration = time.Since(start)
	if err != nil {
		rec.Status, rec.Error = "error", err.Error()
	}
	return errors.Join(err, s.record(rec))
}

// runReport builds and sends the report under the warehouse lock, so a
// second cdw process cannot run the same pipeline at once, and records it.
func (s *Scheduler) runReport(ctx context.Context, p *Pipeline, n int) error {
	start := time.Now()
	rec := pipelines.RunRecord{ID: start.UTC().Format("20060102T150405.000Z"), Pipeline: p.Name, StartedAt: start.UTC(), Attempt: n, Status: "success"}
	lock, err := pipelines.WaitLock(ctx, s.Runner.Cfg.Warehouse, s.Runner.Cfg.LockTimeout)
	if err != nil {
		return err
	}
	defer lock.Release()
	rc := s.Cfg.Report
	res, err := report.Run(ctx, rc, report.RunOptions{Send: rc.SMTP != nil, Log: s.Log.With("pipeline", p.Name)})
	rec.Duration = time.Since(start)
	if res != nil {
		for _, v := range res.Versions {
			rec.Published = append(rec.Published, v.File)
		}
	}
	if err != nil {
		rec.Status, rec.Error = "error", err.Error()
	}
	return errors.Join(err, s.record(rec))
}

func (s *Scheduler) record(r pipelines.RunRecord) error {
	err := pipelines.AppendHistory(s.Runner.Cfg.Warehouse, r)
	if err != nil {
		s.Log.Error("recording run history", "err", err)
	}
	return err
}

// clock is the scheduler's time source.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
