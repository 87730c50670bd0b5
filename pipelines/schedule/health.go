package schedule

import (
	"fmt"
	"net/http"
	"time"
)

// defaultUnhealthyAfter is serve.unhealthy_after when not set.
const defaultUnhealthyAfter = 3

// pipelineHealth is one pipeline's entry in /healthz.
type pipelineHealth struct {
	LastRun             *lastRun `json:"last_run,omitempty"`
	LastSuccess         string   `json:"last_success,omitempty"`
	ConsecutiveFailures int      `json:"consecutive_failures"`
	Healthy             bool     `json:"healthy"`
	Reason              string   `json:"reason,omitempty"`
}

type lastRun struct {
	Status    string `json:"status"`
	StartedAt string `json:"started_at"`
	Error     string `json:"error,omitempty"`
}

// healthz says whether every pipeline keeps up: a pipeline is unhealthy
// after serve.unhealthy_after failed runs in a row, or when it has had no
// successful run for serve.stale_after (default: until an hour after its
// second due time since the last success, or since cdw serve started). An
// unhealthy pipeline makes the answer 503, so a probe or an alert sees it.
func (s *Scheduler) healthz() (int, any) {
	now := s.clock.Now()
	m := s.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]pipelineHealth{}
	lastOK := map[string]string{}
	status, code := "ok", http.StatusOK
	after := s.Cfg.Serve.UnhealthyAfter
	if after < 1 {
		after = defaultUnhealthyAfter
	}
	for _, p := range s.Cfg.Pipelines {
		h := pipelineHealth{ConsecutiveFailures: m.failures[p.Name], Healthy: true}
		if r, ok := m.last[p.Name]; ok {
			h.LastRun = &lastRun{Status: r.Status, StartedAt: r.StartedAt.UTC().Format(time.RFC3339), Error: r.Error}
		}
		base, since := m.started, "since cdw serve started"
		if t, ok := m.lastOK[p.Name]; ok {
			h.LastSuccess = t.UTC().Format(time.RFC3339)
			lastOK[p.Name] = h.LastSuccess
			base, since = t, "since "+h.LastSuccess
		}
		limit := base.Add(s.Cfg.Serve.StaleAfter)
		if s.Cfg.Serve.StaleAfter == 0 {
			limit = p.sched.Next(p.sched.Next(base)).Add(time.Hour)
		}
		switch {
		case h.ConsecutiveFailures >= after:
			h.Healthy = false
			h.Reason = fmt.Sprintf("%d failed runs in a row (unhealthy_after: %d)", h.ConsecutiveFailures, after)
		case now.After(limit):
			h.Healthy = false
			h.Reason = fmt.Sprintf("no successful run %s; one was due by %s", since, limit.UTC().Format(time.RFC3339))
		}
		if !h.Healthy {
			status, code = "unhealthy", http.StatusServiceUnavailable
		}
		out[p.Name] = h
	}
	return code, map[string]any{"status": status, "uptime_seconds": int(now.Sub(m.started).Seconds()),
		"last_success": lastOK, "pipelines": out}
}
