package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/load/report"
	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/pipelines/schedule"
)

func init() {
	register(&command{
		name:    "validate",
		summary: "Check cdw.yaml (sources' generic keys, duckdb, publish targets, report, smtp, serve and pipelines) and run nothing.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			return func(ctx context.Context, _ []string) error {
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				targets, err := (&pipelines.Runner{Cfg: cfg}).PublishTargets()
				if err != nil {
					return err
				}
				if cfg.Report.Y != nil || cfg.SMTP.Y != nil {
					if _, err := report.ParseConfig(cfg.Report, cfg.SMTP, cfg.Warehouse, cfg.BaseDir); err != nil {
						return err
					}
				}
				pipes := 0
				if cfg.Pipelines.Y != nil {
					sc, err := schedule.ParseConfig(cfg)
					if err != nil {
						return err
					}
					pipes = len(sc.Pipelines)
				}
				fmt.Fprintf(out, "%s is valid: %d sources, %d publish targets, %d models directories, %d pipelines (source connections are checked when they are opened)\n",
					cfg.File, len(cfg.Sources), len(targets), len(cfg.Models), pipes)
				return nil
			}
		},
	})
}
