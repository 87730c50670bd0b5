package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/load"
	"github.com/cdwhq/cdw/pipelines"
)

func init() {
	register(&command{
		name:    "publish",
		tables:  true,
		summary: "Publish the marts from the current warehouse again, or --rollback to the previously published version.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			rollback := fs.Bool("rollback", false, "switch every target back to the newest earlier version that all of them keep")
			status := fs.Bool("status", false, "show the version each target serves and the versions it keeps")
			return func(ctx context.Context, _ []string) error {
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				if *status {
					return publishStatus(ctx, cfg)
				}
				if *rollback {
					ledger, err := pipelines.ReadPublishLedger(cfg.Warehouse)
					if err != nil {
						return err
					}
					if ledger.Current == nil {
						// Published before versions had ids: each target
						// goes back one step on its own.
						return rollbackTargets(ctx, cfg)
					}
					id, err := (&pipelines.Runner{Cfg: cfg}).Rollback(ctx)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "every target now serves version %s\n", id)
					return nil
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

// publishStatus prints each target's current and kept versions, and says
// when they differ from the version on record (a publish that failed and
// could not be undone everywhere; the next publish makes them agree).
func publishStatus(ctx context.Context, cfg *pipelines.Config) error {
	ledger, sts, err := (&pipelines.Runner{Cfg: cfg}).PublishStatus(ctx)
	if err != nil {
		return err
	}
	rec := ""
	if ledger.Current != nil {
		rec = ledger.Current.ID
		fmt.Fprintf(out, "Version on record: %s (%d marts, published %s)\n", rec, len(ledger.Current.Marts), ledger.Current.At.Format("2006-01-02 15:04:05 UTC"))
	} else {
		fmt.Fprintln(out, "No version on record yet.")
	}
	t := &table{header: []string{"target", "serves", "keeps"}}
	differ := false
	for _, s := range sts {
		cur := s.Current
		if s.Err != nil {
			cur = "error: " + oneLine(s.Err)
		}
		if s.Err != nil || cur != rec {
			differ = true
		}
		t.add(s.Kind, cur, strings.Join(s.Kept, ", "))
	}
	t.print(out)
	if differ && rec != "" {
		fmt.Fprintln(out, "Targets differ from the version on record: the next publish brings them all to one version.")
	}
	return nil
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
