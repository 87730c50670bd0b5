package pipelines

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/cdwhq/cdw/extract"
)

// slotDropper is a source whose entities may read from replication slots
// (postgres, mode: cdc).
type slotDropper interface {
	Slot(entity string) (string, bool)
	DropSlot(ctx context.Context, entity string) ([]string, error)
}

// DropSlots removes the replication slots and publications of the selected
// cdc entities (cdw extract --drop-slot) and returns what it removed, one
// line each. It selects sources and entities as Extract does; selecting
// none that reads from a slot is an error, so a mistyped name says so.
func (r *Runner) DropSlots(ctx context.Context, opts Options, log *slog.Logger) ([]string, error) {
	var done []string
	found := false
	for _, sc := range r.Cfg.Sources {
		if len(opts.Sources) > 0 && !slices.Contains(opts.Sources, sc.Name) {
			continue
		}
		kind, err := extract.LookupKind(sc.Kind)
		if err != nil {
			return done, sc.Options.Errorf("source %s: %v", sc.Name, err)
		}
		src, err := kind.Open(ctx, extract.SourceConfig{Name: sc.Name, Options: sc.Options, BaseDir: r.Cfg.BaseDir, Log: log.With("source", sc.Name)})
		if err != nil {
			return done, fmt.Errorf("opening source %s: %w", sc.Name, err)
		}
		d, ok := src.(slotDropper)
		for _, ent := range src.Entities() {
			if len(opts.Entities) > 0 && !slices.Contains(opts.Entities, ent) {
				continue
			}
			if !ok {
				continue
			}
			if _, cdc := d.Slot(ent); !cdc {
				continue
			}
			found = true
			gone, err := d.DropSlot(ctx, ent)
			for _, g := range gone {
				done = append(done, fmt.Sprintf("%s.%s: dropped %s", sc.Name, ent, g))
			}
			if err != nil {
				src.Close()
				return done, fmt.Errorf("source %s, entity %s: %w", sc.Name, ent, err)
			}
			if len(gone) == 0 {
				done = append(done, fmt.Sprintf("%s.%s: no replication slot or publication to drop", sc.Name, ent))
			}
		}
		src.Close()
	}
	if !found {
		return done, fmt.Errorf("no selected entity reads from a replication slot (mode: cdc of a postgres source)")
	}
	return done, nil
}
