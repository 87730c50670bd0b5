// Package pipelines runs cdw's pipelines: extract → transform → test →
// publish, configured by cdw.yaml; it owns the config file, the warehouse
// lock and run history.
package pipelines

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // zone names are checked the same on a machine without /usr/share/zoneinfo

	"gopkg.in/yaml.v3"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/iceberg"
	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/internal/secret"
	"github.com/cdwhq/cdw/load"
	"github.com/cdwhq/cdw/load/duckdbfile"
	"github.com/cdwhq/cdw/transform"
)

// Config is a parsed cdw.yaml. It holds settings only, never runtime state.
type Config struct {
	File    string // path of the config file
	BaseDir string // its directory: relative paths start here

	Warehouse string // warehouse directory (default ./cdw-data)
	// LockTimeout is how long a run waits for another cdw process to let go
	// of the warehouse before it fails naming that process.
	LockTimeout time.Duration
	Models      []string          // user model directories, after the built-in sql/
	Vars        map[string]string // values for {{ var('name') }} in models
	// NoBuiltins (builtins: false) leaves cdw's own models out.
	NoBuiltins bool
	// DBTProjects are dbt project folders (dbt_project: DIR, or a models:
	// entry holding a dbt_project.yml).
	DBTProjects []string
	DuckDB      DuckDBConfig
	Sources     []SourceConfig
	Publish     []PublishConfig
	// Freshness limits the age of the newest raw row per entity.
	Freshness map[string]transform.Freshness
	// OnSourceError is fail (default: when a source fails, the others are
	// still extracted and committed, but nothing is transformed or
	// published) or continue (build and publish without the failed source's
	// new rows, saying so).
	OnSourceError string
	// Scheduler and report settings, checked by pipelines/schedule and
	// load/report (nil Y when absent).
	Serve     config.Node
	Pipelines config.Node
	Report    config.Node
	SMTP      config.Node
	// Iceberg is the iceberg: section (catalog for raw and mart tables);
	// IcebergSettings its checked form, nil when Iceberg is off.
	Iceberg         config.Node
	IcebergSettings *iceberg.Settings
	Alerts          config.Node // load/alert: early-warning alerts

	// Timezone is the reporting time zone (IANA name, default UTC): order
	// days, weeks, months, recency and the seasonal index are taken in it.
	// Models read it as var timezone.
	Timezone string

	ticketEvents []sourceEvents // tickets entities with shape: events
}

// The values of on_source_error.
const (
	OnSourceErrorFail     = "fail"
	OnSourceErrorContinue = "continue"
)

// DuckDBConfig tunes the warehouse database.
type DuckDBConfig struct {
	MemoryLimit string `yaml:"memory_limit"` // e.g. 4GB
	Threads     int    `yaml:"threads"`
	TempDir     string `yaml:"temp_directory"`
}

// SourceConfig is one entry of sources:, with its kind-specific options.
type SourceConfig struct {
	Name    string
	Kind    string
	Options config.Node
}

// PublishConfig is one entry of publish:.
type PublishConfig struct {
	Kind    string
	Options config.Node
}

type fileConfig struct {
	Warehouse     string                         `yaml:"warehouse"`
	LockTimeout   *time.Duration                 `yaml:"lock_timeout"`
	Timezone      string                         `yaml:"timezone"`
	Models        []string                       `yaml:"models"`
	Vars          map[string]string              `yaml:"vars"`
	Builtins      *bool                          `yaml:"builtins"`
	DBT           string                         `yaml:"dbt_project"`
	DuckDB        DuckDBConfig                   `yaml:"duckdb"`
	Sources       []config.Node                  `yaml:"sources" required:"true"`
	Publish       []config.Node                  `yaml:"publish"`
	Freshness     map[string]transform.Freshness `yaml:"freshness"`
	OnSourceError string                         `yaml:"on_source_error"`
	Serve         config.Node                    `yaml:"serve"`
	Pipelines     config.Node                    `yaml:"pipelines"`
	Report        config.Node                    `yaml:"report"`
	SMTP          config.Node                    `yaml:"smtp"`
	Iceberg       config.Node                    `yaml:"iceberg"`
	Alerts        config.Node                    `yaml:"alerts"`
}

type entryHead struct {
	Name string `yaml:"name" required:"true"`
	Kind string `yaml:"kind" required:"true"`
}

var sourceName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// LoadConfig reads and checks a config file. Errors name the file, line and key.
func LoadConfig(path string) (*Config, error) {
	root, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return parseConfig(root)
}

func parseConfig(root config.Node) (*Config, error) {
	if root.Y == nil {
		return nil, root.Errorf("the config file is empty")
	}
	// Before anything can fail: from here on no error, log line or history
	// record shows a credential the config points at.
	if short := secret.AddEnv(root.EnvRefs()...); len(short) > 0 {
		slog.Warn("secrets shorter than 4 characters cannot be kept out of logs and errors; use longer ones", "env", short)
	}
	var fc fileConfig
	if err := root.Decode(&fc); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root.File)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", root.File, err)
	}
	c := &Config{File: root.File, BaseDir: filepath.Dir(abs), Vars: fc.Vars, DuckDB: fc.DuckDB,
		Serve: fc.Serve, Pipelines: fc.Pipelines, Report: fc.Report, SMTP: fc.SMTP, Iceberg: fc.Iceberg, Alerts: fc.Alerts}
	c.Warehouse = c.path(fc.Warehouse, "cdw-data")
	if c.IcebergSettings, err = iceberg.Parse(fc.Iceberg, c.Warehouse, c.BaseDir); err != nil {
		return nil, err
	}
	c.LockTimeout = DefaultLockTimeout
	if fc.LockTimeout != nil {
		if *fc.LockTimeout < 0 {
			return nil, root.Get("lock_timeout").Errorf("lock_timeout must not be negative")
		}
		c.LockTimeout = *fc.LockTimeout
	}
	c.NoBuiltins = fc.Builtins != nil && !*fc.Builtins
	for e := range fc.Freshness {
		if _, err := extract.LookupEntity(e); err != nil {
			return nil, root.Get("freshness").Get(e).Errorf("freshness: %v", err)
		}
	}
	c.Freshness = fc.Freshness
	switch fc.OnSourceError {
	case "", OnSourceErrorFail, OnSourceErrorContinue:
		c.OnSourceError = fc.OnSourceError
		if c.OnSourceError == "" {
			c.OnSourceError = OnSourceErrorFail
		}
	default:
		return nil, root.Get("on_source_error").Errorf("on_source_error must be %s or %s, got %q", OnSourceErrorFail, OnSourceErrorContinue, fc.OnSourceError)
	}
	for _, m := range fc.Models {
		d := c.path(m, "")
		if _, err := os.Stat(filepath.Join(d, "dbt_project.yml")); err == nil {
			c.DBTProjects = append(c.DBTProjects, d)
			continue
		}
		c.Models = append(c.Models, d)
	}
	if fc.DBT != "" {
		c.DBTProjects = append(c.DBTProjects, c.path(fc.DBT, ""))
	}
	if c.DuckDB.TempDir != "" {
		c.DuckDB.TempDir = c.path(c.DuckDB.TempDir, "")
	}
	seen := map[string]bool{}
	for _, n := range fc.Sources {
		var head entryHead
		if err := decodeHead(n, &head); err != nil {
			return nil, err
		}
		if !sourceName.MatchString(head.Name) {
			return nil, n.Get("name").Errorf("source names are lower case letters, digits and _ (they name raw folders and tables), got %q", head.Name)
		}
		if seen[head.Name] {
			return nil, n.Get("name").Errorf("two sources are named %q", head.Name)
		}
		seen[head.Name] = true
		opts, events, err := takeTicketShape(n.Without("name", "kind"))
		if err != nil {
			return nil, err
		}
		if events != nil {
			c.ticketEvents = append(c.ticketEvents, sourceEvents{source: head.Name, resolvedWhen: events})
		}
		c.Sources = append(c.Sources, SourceConfig{Name: head.Name, Kind: head.Kind, Options: opts})
	}
	if err := c.setTimezone(root, fc.Timezone); err != nil {
		return nil, err
	}
	if err := c.setTicketVars(root); err != nil {
		return nil, err
	}
	for _, n := range fc.Publish {
		kind := n.Get("kind")
		if kind.Y == nil {
			return nil, n.Errorf("missing required key %q", "kind")
		}
		c.Publish = append(c.Publish, PublishConfig{Kind: kind.Y.Value, Options: n.Without("kind")})
	}
	return c, nil
}

// decodeHead strictly reads the generic name/kind of a list entry, leaving
// the rest for the component to check.
func decodeHead(n config.Node, head *entryHead) error {
	return n.Only("name", "kind").Decode(head)
}

func (c *Config) path(p, def string) string {
	if p == "" {
		p = def
	}
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.BaseDir, p)
}

// MartsPath is the published marts.duckdb: that of the config's (last)
// duckdb publish target, else the default in the warehouse directory.
func (c *Config) MartsPath() (string, error) {
	path := duckdbfile.DefaultPath(c.Warehouse)
	for _, p := range c.Publish {
		if p.Kind == "duckdb" {
			var err error
			if path, err = duckdbfile.Path(load.TargetConfig{Options: p.Options, Dir: c.Warehouse, BaseDir: c.BaseDir}); err != nil {
				return "", err
			}
		}
	}
	return path, nil
}

// Settings returns the DuckDB settings for the warehouse.
func (c *Config) Settings() transform.Settings {
	return transform.Settings{MemoryLimit: c.DuckDB.MemoryLimit, Threads: c.DuckDB.Threads, TempDir: c.DuckDB.TempDir}
}

// sourceEvents is a source whose tickets are an event log.
type sourceEvents struct {
	source       string
	resolvedWhen []string // lower case
}

// ticketShape is how a tickets entity's rows are meant: shape rows (one row
// per ticket version, the default) or events (one row per ticket event).
type ticketShape struct {
	Shape        string   `yaml:"shape"`
	ResolvedWhen []string `yaml:"resolved_when"`
}

// defaultResolvedWhen are the activities that resolve a ticket of an event log.
var defaultResolvedWhen = []string{"resolved", "closed"}

// takeTicketShape takes shape and resolved_when off a source's tickets
// entity: they tell stg_tickets how to read the rows, which any source kind
// can deliver, so they are not the source's to check. It returns the
// options without them and, for an event log, its resolving activities.
func takeTicketShape(opts config.Node) (config.Node, []string, error) {
	ents := opts.Get("entities")
	tk := ents.Get("tickets")
	if tk.Y == nil || tk.Y.Kind != yaml.MappingNode {
		return opts, nil, nil
	}
	var ts ticketShape
	if err := tk.Only("shape", "resolved_when").Decode(&ts); err != nil {
		return opts, nil, err
	}
	switch ts.Shape {
	case "", "rows":
		if ts.ResolvedWhen != nil {
			return opts, nil, tk.Get("resolved_when").Errorf("resolved_when needs shape: events (one row per ticket event)")
		}
		if ts.Shape == "" {
			return opts, nil, nil
		}
	case "events":
	default:
		return opts, nil, tk.Get("shape").Errorf("unknown shape %q (use rows: one row per ticket, or events: one row per ticket event)", ts.Shape)
	}
	opts = withChild(opts, "entities", withChild(ents, "tickets", tk.Without("shape", "resolved_when").Y).Y)
	if ts.Shape == "rows" {
		return opts, nil, nil
	}
	if ts.ResolvedWhen == nil {
		ts.ResolvedWhen = defaultResolvedWhen
	}
	var out []string
	for _, a := range ts.ResolvedWhen {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" || strings.Contains(a, ",") {
			return opts, nil, tk.Get("resolved_when").Errorf("resolved_when: activities are non-empty and without commas, got %q", a)
		}
		out = append(out, a)
	}
	return opts, out, nil
}

// withChild returns a copy of mapping n with the value under key replaced.
func withChild(n config.Node, key string, child *yaml.Node) config.Node {
	cp := *n.Y
	cp.Content = append([]*yaml.Node(nil), n.Y.Content...)
	for i := 0; i+1 < len(cp.Content); i += 2 {
		if cp.Content[i].Value == key {
			cp.Content[i+1] = child
		}
	}
	return config.Node{File: n.File, Path: n.Path, Y: &cp}
}

// setTicketVars hands the event-log sources to stg_tickets as vars
// ticket_event_sources (source names) and ticket_resolved_when
// (source:activity pairs), comma-separated.
func (c *Config) setTicketVars(root config.Node) error {
	if len(c.ticketEvents) == 0 {
		return nil
	}
	var sources, resolved []string
	for _, e := range c.ticketEvents {
		sources = append(sources, e.source)
		for _, a := range e.resolvedWhen {
			resolved = append(resolved, e.source+":"+a)
		}
	}
	if c.Vars == nil {
		c.Vars = map[string]string{}
	}
	for k, v := range map[string]string{"ticket_event_sources": strings.Join(sources, ","), "ticket_resolved_when": strings.Join(resolved, ",")} {
		if _, set := c.Vars[k]; set {
			return root.Get("vars").Get(k).Errorf("var %s is set from the sources' shape: events and resolved_when; remove it", k)
		}
		c.Vars[k] = v
	}
	return nil
}

// setTimezone checks the reporting time zone and hands it to the models as
// var timezone.
func (c *Config) setTimezone(root config.Node, tz string) error {
	if tz == "" {
		tz = "UTC"
	}
	if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
		return root.Get("timezone").Errorf("unknown time zone %q: use an IANA name such as Europe/Berlin or Asia/Shanghai", tz)
	}
	if _, set := c.Vars["timezone"]; set {
		return root.Get("vars").Get("timezone").Errorf("var timezone is set from the top-level timezone: key; remove it from vars")
	}
	c.Timezone = tz
	if tz == "UTC" {
		return nil // the models' default
	}
	if c.Vars == nil {
		c.Vars = map[string]string{}
	}
	c.Vars["timezone"] = tz
	return nil
}
