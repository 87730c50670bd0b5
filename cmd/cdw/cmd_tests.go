package main

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/pipelines"
)

func init() {
	register(&command{
		name:    "test",
		tables:  true,
		summary: "Run the data tests (header tests, tests/*.sql) and source freshness checks on the warehouse as built.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			sel := selectFlag(fs)
			return func(ctx context.Context, _ []string) error {
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				rep, err := (&pipelines.Runner{Cfg: cfg}).Run(ctx, pipelines.Options{
					Steps: pipelines.Steps{Test: true}, Pipeline: "test", Select: *sel})
				printReport(rep)
				return err
			}
		},
	})
}
