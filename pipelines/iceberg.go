package pipelines

import (
	"context"
	"path/filepath"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/iceberg"
	"github.com/cdwhq/cdw/internal/failpoint"
)

// followInIceberg makes every state commit of x also commit the entity's
// raw files to its Iceberg table (raw.<source>_<entity>) when cdw.yaml has
// an iceberg: section. State commits first; the Iceberg commit follows
// before superseded files are deleted, and every extract starts by
// reconciling the table with state, so a crash between the two commits
// leaves both views with every row exactly once after the next start.
func (r *Runner) followInIceberg(ctx context.Context, x *extract.Extractor) (func(), error) {
	s := r.Cfg.IcebergSettings
	if s == nil {
		return func() {}, nil
	}
	cat, err := s.Open(ctx)
	if err != nil {
		return nil, err
	}
	dir := r.Cfg.Warehouse
	x.EventDays = true // one event day per file: the tables are partitioned by day(event)
	x.Committed = func(st *extract.EntityState, batch string) error {
		files := make([]string, len(st.Files))
		for i, f := range st.Files {
			files[i] = filepath.Join(dir, filepath.FromSlash(f.Path))
		}
		props := map[string]string{iceberg.CursorKey: string(st.Cursor)}
		if batch != "" {
			props[iceberg.BatchKey] = batch
		} else {
			props[iceberg.BatchKey] = "reconcile"
		}
		ent, err := extract.ResolveEntity(st.Entity)
		if err != nil {
			return err
		}
		failpoint.Hit("extract.iceberg.before-commit") // state committed, Iceberg not yet
		if err := cat.SyncRaw(ctx, st.Source, st.Entity, ent.Event, files, props); err != nil {
			return err
		}
		failpoint.Hit("extract.iceberg.after-commit") // both committed, superseded files not yet deleted
		return nil
	}
	return func() { cat.Close() }, nil
}
