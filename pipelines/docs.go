package pipelines

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/cdwhq/cdw/transform"
	"github.com/cdwhq/cdw/transform/docs"
)

// Docs gathers the documentation site of the configured project (cdw docs,
// cdw serve's /docs): the models as the model directories define them, and
// column types, last builds and test results from a copy of the warehouse
// (none before the first run). asOf is when that warehouse was written.
func (r *Runner) Docs(ctx context.Context) (site *docs.Site, asOf time.Time, err error) {
	p, err := r.Project(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	snap, err := WarehouseSnapshot(r.Cfg.Warehouse)
	if errors.Is(err, os.ErrNotExist) {
		site, err := docs.Collect(ctx, p, nil, time.Now())
		return site, time.Time{}, err
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	if snap.Stale {
		slog.Warn("a run is writing the warehouse: the docs show the copy before it", "holder", snap.Holder, "as_of", snap.AsOf.UTC().Format(time.RFC3339))
	}
	db, err := transform.Open(snap.Path, transform.Settings{ReadOnly: true})
	if err != nil {
		return nil, time.Time{}, err
	}
	defer db.Close()
	site, err = docs.Collect(ctx, p, db, time.Now())
	return site, snap.AsOf, err
}
