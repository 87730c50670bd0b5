package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cdwhq/cdw/load"
	"github.com/cdwhq/cdw/pipelines"
)

func init() {
	register(&command{
		name:    "publish",
		summary: "Publish the marts from the current warehouse again, or --rollback to the previously published version.",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			rollback := fs.Bool("rollback", false, "switch every target back to the version published before the current one")
			return func(ctx context.Context, _ []string) error {
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				if *rollback {
					return rollbackTargets(ctx, cfg)
				}
				wh := filepath.Join(cfg.Warehouse, "warehouse.duckdb")
				if _, err := os.Stat(wh); errors.Is(err, os.ErrNotExist) {
					if held, holder := pipelines.LockHeld(cfg.Warehouse); held {
						return fmt.Errorf("a run is building the warehouse at %s (%s): it publishes when it finishes; run 'cdw publish' after it if needed", cfg.Warehouse, holder)
					}
					return fmt.Errorf("no warehouse at %s: run 'cdw run' first", wh)
				}
				rep, err := (&pipelines.Runner{Cfg: cfg}).Run(ctx, pipelines.Options{
					Steps: pipelines.Steps{Publish: true}, Pipeline: "publish"})
				printReport(rep)
				return err
			}
		},
	})
}

// rollbackTargets rolls every configured target back, under the warehouse
// lock so no run publishes meanwhile. A target that keeps no earlier version
// is reported; the others are still rolled back.
func rollbackTargets(ctx context.Context, cfg *pipelines.Config) error {
	lock, err := pipelines.WaitLock(ctx, cfg.Warehouse, cfg.LockTimeout)
	if err != nil {
		return err
	}
	defer lock.Release()
	targets, err := (&pipelines.Runner{Cfg: cfg}).PublishTargets()
	if err != nil {
		return err
	}
	var errs []error
	t := &table{header: []string{"target", "result"}}
	for _, tg := range targets {
		rb, ok := tg.Publisher.(load.Rollbacker)
		if !ok {
			t.add(tg.Kind, "cannot roll back (keeps no earlier version)")
			errs = append(errs, fmt.Errorf("%s: cannot roll back", tg.Kind))
			continue
		}
		what, err := rb.Rollback(ctx)
		if err != nil {
			t.add(tg.Kind, "failed: "+oneLine(err))
			errs = append(errs, fmt.Errorf("rolling back %s: %w", tg.Kind, err))
			continue
		}
		t.add(tg.Kind, "now serving "+what)
	}
	t.print(out)
	return errors.Join(errs...)
}
