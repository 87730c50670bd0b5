// Package parquet publishes each mart as marts/<name>.parquet. A mart is
// written by DuckDB to a temporary file beside its target, fsynced, and
// renamed over the old version, so a reader opens either the old file or the
// new one, never a partial file.
package parquet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cdwhq/cdw/internal/durable"
	"github.com/cdwhq/cdw/load"
)

func init() {
	load.Register(load.Kind{Name: "parquet", Doc: "marts/<mart>.parquet, replaced atomically", Open: open})
}

type options struct {
	Dir string `yaml:"dir"` // default <warehouse>/marts
}

// Publisher writes marts as Parquet files.
type Publisher struct{ dir string }

var _ load.Publisher = (*Publisher)(nil)

func open(cfg load.TargetConfig) (load.Publisher, error) {
	var o options
	if err := cfg.Options.Decode(&o); err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.Dir, "marts")
	if o.Dir != "" {
		dir = o.Dir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(cfg.BaseDir, dir)
		}
	}
	return &Publisher{dir: dir}, nil
}

// Publish writes every mart aside and renames it into place.
func (p *Publisher) Publish(ctx context.Context, m load.Marts) error {
	if err := os.MkdirAll(p.dir, durable.DirPerm); err != nil {
		return fmt.Errorf("creating %s: %w", p.dir, err)
	}
	for _, name := range m.Names {
		final := filepath.Join(p.dir, name+".parquet")
		tmp := filepath.Join(p.dir, "."+name+".parquet.tmp-publish")
		os.Remove(tmp)
		q := fmt.Sprintf("COPY (SELECT * FROM %s) TO %s (FORMAT parquet, COMPRESSION zstd)", load.QuoteIdent(name), load.QuoteString(tmp))
		if _, err := m.DB.ExecContext(ctx, q); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("publishing %s to Parquet: %w", name, err)
		}
		if err := durable.SyncFile(tmp); err != nil {
			os.Remove(tmp)
			return err
		}
		if err := os.Chmod(tmp, durable.FilePerm); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("setting permissions on %s: %w", tmp, err)
		}
		if err := durable.Rename(tmp, final); err != nil {
			return err
		}
	}
	return nil
}
