package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "validate",
		summary: "Check cdw.yaml (every source's options, duckdb, publish targets, report, smtp, alerts, serve and pipelines) and run nothing.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			return func(ctx context.Context, _ []string) error {
				cfg, err := loadConfig(ctx, *cfgPath)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s is valid: %d sources, %d publish targets, %d models directories, %d pipelines (sources are not connected to: a server that is down fails the extract that needs it)\n",
					cfg.File, len(cfg.Sources), cfg.targets, len(cfg.Models), cfg.pipelines)
				return nil
			}
		},
	})
}
