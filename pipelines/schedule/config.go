// Package schedule is cdw serve: it runs the pipelines of cdw.yaml on cron
// schedules, one run per pipeline at a time, retries failed runs with
// backoff, records every run in the history, serves /healthz and
// Prometheus /metrics, and on SIGTERM lets the current run finish (or
// abandons it safely after a grace period).
package schedule

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/load/alert"
	"github.com/cdwhq/cdw/load/report"
	"github.com/cdwhq/cdw/pipelines"
)

// Overlap says what happens when a pipeline is due while its last run is
// still going.
type Overlap string

const (
	OverlapSkip  Overlap = "skip"  // drop the due run (recorded as skipped)
	OverlapQueue Overlap = "queue" // run once more right after; at most one waits
)

// Valid reports whether o is a known policy.
func (o Overlap) Valid() bool { return o == OverlapSkip || o == OverlapQueue }

// Pipeline is one entry of pipelines:.
type Pipeline struct {
	Name     string   `yaml:"name" required:"true"`
	Schedule string   `yaml:"schedule" required:"true"` // cron (5 or 6 fields) or @every/@daily…
	Timezone string   `yaml:"timezone"`                 // IANA zone; default local
	Steps    []string `yaml:"steps" required:"true"`    // extract, transform, publish, notify, report
	Overlap  Overlap  `yaml:"overlap"`
	Retries  Retries  `yaml:"retries"`

	sched cron.Schedule
	steps pipelines.Steps
	rep   bool
	alert bool
}

// Retries: a failed run is tried again after Backoff, doubling each time.
type Retries struct {
	MaxAttempts int           `yaml:"max_attempts"` // total attempts, default 1
	Backoff     time.Duration `yaml:"backoff"`      // default 30s
}

// ServeOptions are the serve: settings.
type ServeOptions struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:9464; "off" disables
	// ShutdownGrace is how long SIGTERM waits for a running pipeline before
	// cancelling it; cancelled steps leave no half-published mart.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// UnhealthyAfter failed runs in a row of one pipeline turn /healthz
	// unhealthy (503); default 3.
	UnhealthyAfter int `yaml:"unhealthy_after"`
	// StaleAfter without a successful run of a pipeline turns /healthz
	// unhealthy; default: an hour past its second due time since the last
	// success.
	StaleAfter time.Duration `yaml:"stale_after"`
}

// Config is the checked scheduler configuration.
type Config struct {
	Serve     ServeOptions
	Pipelines []*Pipeline
	Report    *report.Config // nil when no pipeline has a report step
	Alerts    *alert.Config  // nil when no pipeline has a notify step
}

// ParseConfig checks serve:, pipelines: (and report:/smtp: when a pipeline
// reports). Errors name the file, line and key.
func ParseConfig(c *pipelines.Config) (*Config, error) {
	out := &Config{}
	if err := c.Serve.Decode(&out.Serve); err != nil {
		return nil, err
	}
	if out.Serve.Listen == "" {
		out.Serve.Listen = "127.0.0.1:9464"
	}
	if c.Serve.Get("shutdown_grace").Y == nil {
		out.Serve.ShutdownGrace = 30 * time.Second
	}
	if c.Serve.Get("unhealthy_after").Y == nil {
		out.Serve.UnhealthyAfter = defaultUnhealthyAfter
	}
	if out.Serve.UnhealthyAfter < 1 {
		return nil, c.Serve.Get("unhealthy_after").Errorf("unhealthy_after must be at least 1")
	}
	if out.Serve.StaleAfter < 0 {
		return nil, c.Serve.Get("stale_after").Errorf("stale_after must not be negative")
	}
	n := c.Pipelines
	if n.Y == nil || len(n.Y.Content) == 0 {
		return nil, &config.Error{File: c.File, Msg: "no pipelines: list; cdw serve runs the pipelines listed there (see README, Configuration)"}
	}
	var list []config.Node
	if n.Y.Kind != yaml.SequenceNode {
		return nil, n.Errorf("pipelines: must be a list")
	}
	for i, item := range n.Y.Content {
		list = append(list, config.Node{File: n.File, Path: fmt.Sprintf("pipelines[%d]", i), Y: item})
	}
	seen := map[string]bool{}
	needReport, needAlerts := false, false
	for _, item := range list {
		p := &Pipeline{}
		if err := item.Decode(p); err != nil {
			return nil, err
		}
		if seen[p.Name] {
			return nil, item.Get("name").Errorf("two pipelines are named %q", p.Name)
		}
		seen[p.Name] = true
		var loc *time.Location
		if p.Timezone != "" {
			l, err := time.LoadLocation(p.Timezone)
			if err != nil {
				return nil, item.Get("timezone").Errorf("unknown time zone %q: %v", p.Timezone, err)
			}
			loc = l
		}
		s, err := parseSchedule(p.Schedule, loc)
		if err != nil {
			return nil, item.Get("schedule").Errorf("schedule %q: %v", p.Schedule, err)
		}
		p.sched = s
		if p.Overlap == "" {
			p.Overlap = OverlapSkip
		}
		if !p.Overlap.Valid() {
			return nil, item.Get("overlap").Errorf("overlap must be skip or queue, got %q", p.Overlap)
		}
		if p.Retries.MaxAttempts <= 0 {
			p.Retries.MaxAttempts = 1
		}
		if p.Retries.Backoff <= 0 {
			p.Retries.Backoff = 30 * time.Second
		}
		for _, st := range p.Steps {
			switch st {
			case "extract":
				p.steps.Extract = true
			case "compact":
				p.steps.Compact = true
			case "transform":
				p.steps.Transform = true
			case "publish":
				p.steps.Publish = true
			case "report":
				p.rep, needReport = true, true
			case "notify":
				p.alert, needAlerts = true, true
			default:
				return nil, item.Get("steps").Errorf("unknown step %q (steps: extract, compact, transform, publish, notify, report)", st)
			}
		}
		if len(p.Steps) == 0 {
			return nil, item.Get("steps").Errorf("a pipeline needs at least one step")
		}
		out.Pipelines = append(out.Pipelines, p)
	}
	if needReport {
		rc, err := report.ParseConfig(c.Report, c.SMTP, c.Warehouse, c.BaseDir)
		if err != nil {
			return nil, err
		}
		out.Report = rc
	}
	if needAlerts {
		ac, err := alert.ParseConfig(c.Alerts, c.Report, c.SMTP, c.Warehouse, c.BaseDir)
		if err != nil {
			return nil, err
		}
		out.Alerts = ac
	}
	return out, nil
}
