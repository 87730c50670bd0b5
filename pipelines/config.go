// Package pipelines runs cdw's pipelines: extract → transform → test →
// publish, configured by cdw.yaml; it owns the config file, the warehouse
// lock and run history.
package pipelines

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/transform"
)

// Config is a parsed cdw.yaml. It holds settings only, never runtime state.
type Config struct {
	File    string // path of the config file
	BaseDir string // its directory: relative paths start here

	Warehouse string            // warehouse directory (default ./cdw-data)
	Models    []string          // user model directories, after the built-in sql/
	Vars      map[string]string // values for {{ var('name') }} in models
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
	// Scheduler and report settings, checked by pipelines/schedule and
	// load/report (nil Y when absent).
	Serve     config.Node
	Pipelines config.Node
	Report    config.Node
	SMTP      config.Node
}

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
	Warehouse string                         `yaml:"warehouse"`
	Models    []string                       `yaml:"models"`
	Vars      map[string]string              `yaml:"vars"`
	Builtins  *bool                          `yaml:"builtins"`
	DBT       string                         `yaml:"dbt_project"`
	DuckDB    DuckDBConfig                   `yaml:"duckdb"`
	Sources   []config.Node                  `yaml:"sources" required:"true"`
	Publish   []config.Node                  `yaml:"publish"`
	Freshness map[string]transform.Freshness `yaml:"freshness"`
	Serve     config.Node                    `yaml:"serve"`
	Pipelines config.Node                    `yaml:"pipelines"`
	Report    config.Node                    `yaml:"report"`
	SMTP      config.Node                    `yaml:"smtp"`
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
	var fc fileConfig
	if err := root.Decode(&fc); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root.File)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", root.File, err)
	}
	c := &Config{File: root.File, BaseDir: filepath.Dir(abs), Vars: fc.Vars, DuckDB: fc.DuckDB,
		Serve: fc.Serve, Pipelines: fc.Pipelines, Report: fc.Report, SMTP: fc.SMTP}
	c.Warehouse = c.path(fc.Warehouse, "cdw-data")
	c.NoBuiltins = fc.Builtins != nil && !*fc.Builtins
	for e := range fc.Freshness {
		if _, err := extract.LookupEntity(e); err != nil {
			return nil, root.Get("freshness").Get(e).Errorf("freshness: %v", err)
		}
	}
	c.Freshness = fc.Freshness
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
		c.Sources = append(c.Sources, SourceConfig{Name: head.Name, Kind: head.Kind, Options: n.Without("name", "kind")})
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

// Settings returns the DuckDB settings for the warehouse.
func (c *Config) Settings() transform.Settings {
	return transform.Settings{MemoryLimit: c.DuckDB.MemoryLimit, Threads: c.DuckDB.Threads, TempDir: c.DuckDB.TempDir}
}
