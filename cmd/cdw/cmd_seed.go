package main

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/pipelines"
)

func init() {
	register(&command{
		name:    "seed",
		tables:  true,
		summary: "Load the CSV files of the seeds folders into warehouse tables (cdw run also does, when a file changed).",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			full := fs.Bool("full-refresh", false, "reload every seed, changed or not")
			return func(ctx context.Context, _ []string) error {
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				rep, err := (&pipelines.Runner{Cfg: cfg}).Run(ctx, pipelines.Options{
					Steps: pipelines.Steps{Transform: true}, Pipeline: "seed", FullRefresh: *full,
					Select: "resource_type:seed", Progress: progress()})
				printReport(rep)
				return err
			}
		},
	})
}
