package pipelines

import (
	"context"
	"log/slog"
	"slices"

	"github.com/cdwhq/cdw/extract"
)

// Compact merges the small raw files of every committed source entity (or
// those opts.Sources and opts.Entities name) into large sorted ones, one
// state commit per entity and, with iceberg: on, one Iceberg rewrite
// commit, reconciled on the next start as an extract is (extract.Compact).
func (r *Runner) Compact(ctx context.Context, opts Options, log *slog.Logger) ([]extract.CompactResult, error) {
	cfg := r.Cfg
	x := &extract.Extractor{Dir: cfg.Warehouse, Log: log}
	closeIceberg, err := r.followInIceberg(ctx, x)
	if err != nil {
		return nil, err
	}
	defer closeIceberg()
	states, err := extract.StateStore{Dir: cfg.Warehouse}.All()
	if err != nil {
		return nil, err
	}
	var out []extract.CompactResult
	for _, st := range states {
		if len(opts.Sources) > 0 && !slices.Contains(opts.Sources, st.Source) ||
			len(opts.Entities) > 0 && !slices.Contains(opts.Entities, st.Entity) {
			continue
		}
		res, err := x.Compact(ctx, st.Source, st.Entity, opts.CompactTarget)
		out = append(out, res)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
