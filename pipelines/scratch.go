package pipelines

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"maps"
	"os"

	"github.com/cdwhq/cdw/transform"
)

// ScratchBuild builds the selected models (and what they read) from the
// committed raw files into a new DuckDB file at path, with vars overriding
// the configured ones: a what-if warehouse, e.g. the marts as of an earlier
// date for a backtest. It reads the raw layer only, never the warehouse,
// its state or its marts, so it can run beside a pipeline run. The caller
// closes the returned database and removes path.
func (r *Runner) ScratchBuild(ctx context.Context, path string, vars map[string]string, selection string, log *slog.Logger) (*sql.DB, error) {
	if log == nil {
		log = slog.Default()
	}
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("scratch warehouse %s exists already", path)
	}
	cfg := *r.Cfg
	cfg.Vars = maps.Clone(r.Cfg.Vars)
	if cfg.Vars == nil {
		cfg.Vars = map[string]string{}
	}
	maps.Copy(cfg.Vars, vars)
	scratch := &Runner{Cfg: &cfg}
	project, err := scratch.Project(ctx)
	if err != nil {
		return nil, err
	}
	selected, err := project.Select(selection)
	if err != nil {
		return nil, err
	}
	settings := cfg.Settings()
	settings.TempDir = "" // beside the scratch file
	db, err := transform.Open(path, settings)
	if err != nil {
		return nil, err
	}
	raw, err := createRawViews(ctx, db, &cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	tr := &transform.Runner{DB: db, Vars: transform.Vars(cfg.Vars), Log: log, Selection: selection,
		MemoryLimit: cfg.DuckDB.MemoryLimit, Raw: raw, FullRefresh: true}
	res, err := tr.Run(ctx, "scratch", selected)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("building %s: %w", path, err)
	}
	return db, nil
}
