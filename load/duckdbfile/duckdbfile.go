// Package duckdbfile publishes all marts into one DuckDB file (marts.duckdb)
// for BI tools. The file is built aside and renamed into place, so a tool
// holding the old file open keeps reading the old version undisturbed.
package duckdbfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cdwhq/cdw/internal/durable"
	"github.com/cdwhq/cdw/load"
)

func init() {
	load.Register(load.Kind{Name: "duckdb", Doc: "one DuckDB file with every mart, built aside and renamed into place", Open: open})
}

type options struct {
	Path string `yaml:"path"` // default <warehouse>/marts.duckdb
}

// Publisher writes marts into a DuckDB file.
type Publisher struct{ path string }

var _ load.Publisher = (*Publisher)(nil)

func open(cfg load.TargetConfig) (load.Publisher, error) {
	var o options
	if err := cfg.Options.Decode(&o); err != nil {
		return nil, err
	}
	p := filepath.Join(cfg.Dir, "marts.duckdb")
	if o.Path != "" {
		p = o.Path
		if !filepath.IsAbs(p) {
			p = filepath.Join(cfg.BaseDir, p)
		}
	}
	return &Publisher{path: p}, nil
}

// Path is the published file.
func (p *Publisher) Path() string { return p.path }

// Publish builds a new file beside the target and renames it over the old one.
func (p *Publisher) Publish(ctx context.Context, m load.Marts) error {
	dir := filepath.Dir(p.path)
	if err := os.MkdirAll(dir, durable.DirPerm); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp := filepath.Join(dir, "."+filepath.Base(p.path)+".tmp-publish")
	os.Remove(tmp)
	os.Remove(tmp + ".wal")
	conn, err := m.DB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connecting to the warehouse: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "ATTACH "+load.QuoteString(tmp)+" AS cdw_publish"); err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	attached := true
	defer func() {
		if attached {
			conn.ExecContext(context.Background(), "DETACH cdw_publish")
		}
	}()
	for _, name := range m.Names {
		q := fmt.Sprintf("CREATE TABLE cdw_publish.main.%s AS SELECT * FROM main.%s", load.QuoteIdent(name), load.QuoteIdent(name))
		if _, err := conn.ExecContext(ctx, q); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("publishing %s to %s: %w", name, p.path, err)
		}
	}
	// Checkpoint so the file is complete on its own, with no WAL beside it.
	if _, err := conn.ExecContext(ctx, "CHECKPOINT cdw_publish"); err != nil {
		return fmt.Errorf("checkpointing %s: %w", tmp, err)
	}
	if _, err := conn.ExecContext(ctx, "DETACH cdw_publish"); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	attached = false
	if err := durable.SyncFile(tmp); err != nil {
		return err
	}
	if err := os.Chmod(tmp, durable.FilePerm); err != nil {
		return fmt.Errorf("setting permissions on %s: %w", tmp, err)
	}
	return durable.Rename(tmp, p.path)
}
