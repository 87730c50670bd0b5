// Package load publishes finished marts where BI tools read them. Each target
// is a sub-package (load/parquet, load/duckdbfile, …) that registers a Kind;
// every publisher makes a new version visible atomically, so a reader never
// sees half a mart.
package load

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/cdwhq/cdw/internal/config"
)

// Publisher makes a set of marts visible to readers.
type Publisher interface {
	// Publish copies every mart out of the warehouse and switches readers to
	// the new version in one atomic step per target. On error the previously
	// published version stays in place.
	Publish(ctx context.Context, marts Marts) error
}

// Rollbacker is implemented by targets that keep earlier versions, so that
// `cdw publish --rollback` can switch readers back after a bad publish. It is
// optional: a target without it is reported as unable to roll back.
type Rollbacker interface {
	// Rollback makes the version published before the current one visible
	// again, in one atomic step, and discards the current one. It returns a
	// short description of the version now visible. With nothing to go back
	// to it returns an error wrapping ErrNoPreviousVersion.
	Rollback(ctx context.Context) (string, error)
}

// Versioned is implemented by targets that label what they publish with
// the version id the pipeline chose (Marts.Version), so one publish is one
// version across every target, a failed publish can be undone on the
// targets that took it, and a rollback can pick a version all targets keep.
type Versioned interface {
	// CurrentVersion is the version readers see ("" when the target has
	// none, e.g. it was published before versions had ids).
	CurrentVersion(ctx context.Context) (string, error)
	// KeptVersions lists the versions the target can switch to, oldest
	// first, the current one included.
	KeptVersions(ctx context.Context) ([]string, error)
	// RollbackTo makes version id visible again in one atomic step and
	// discards the versions published after it. It does nothing when id is
	// current, and wraps ErrNoPreviousVersion when id is not kept.
	RollbackTo(ctx context.Context, id string) error
}

// ErrNoPreviousVersion means a target has no earlier version to roll back to.
var ErrNoPreviousVersion = errors.New("no previous version to roll back to")

// Marts is a finished set of marts in the warehouse.
type Marts struct {
	DB    *sql.DB  // the warehouse
	Names []string // mart tables or views, in the main schema
	Dir   string   // warehouse directory; targets write under it by default
	// Version is the id of the version this publish makes, the same on
	// every target ("" lets a target name it itself).
	Version string
	// Docs are the marts' descriptions (header comments, schema.yml), by
	// mart name; targets publish them where BI tools read them (COMMENT ON,
	// Parquet metadata). A mart without an entry has none.
	Docs map[string]MartDoc
}

// MartDoc describes a mart and its columns.
type MartDoc struct {
	Description string
	Columns     map[string]string // column name → description
}

// Column returns the description of a column, matched as SQL matches
// names (case-insensitively).
func (d MartDoc) Column(name string) string {
	if s, ok := d.Columns[name]; ok {
		return s
	}
	for c, s := range d.Columns {
		if strings.EqualFold(c, name) {
			return s
		}
	}
	return ""
}

// Kind is a registered publish target.
type Kind struct {
	Name string
	Doc  string
	Open func(cfg TargetConfig) (Publisher, error)
}

// TargetConfig is what a kind receives to set up a publisher.
type TargetConfig struct {
	Options config.Node // kind-specific settings, minus "kind"
	Dir     string      // warehouse directory
	BaseDir string      // directory of the config file
	// Iceberg is cdw.yaml's iceberg: section, the catalog for kind: iceberg
	// (Y nil when absent).
	Iceberg config.Node
}

var (
	mu    sync.RWMutex
	kinds = map[string]Kind{}
)

// Register adds a publish target kind; called from init.
func Register(k Kind) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := kinds[k.Name]; dup {
		panic("load: publisher kind registered twice: " + k.Name)
	}
	kinds[k.Name] = k
}

// LookupKind returns a registered publisher kind.
func LookupKind(name string) (Kind, error) {
	mu.RLock()
	defer mu.RUnlock()
	k, ok := kinds[name]
	if !ok {
		return Kind{}, fmt.Errorf("unknown publish kind %q (known: %v)", name, kindNames())
	}
	return k, nil
}

// KindNames lists the registered publisher kinds, sorted.
func KindNames() []string {
	mu.RLock()
	defer mu.RUnlock()
	return kindNames()
}

func kindNames() []string {
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
