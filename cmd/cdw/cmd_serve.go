package main

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/pipelines/schedule"
)

func init() {
	register(&command{
		name:    "serve",
		summary: "Run the pipelines of cdw.yaml on their cron schedules, with /healthz and /metrics; SIGTERM stops safely.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			listen := fs.String("listen", "", "address for /healthz and /metrics (overrides serve.listen; \"off\" disables)")
			return func(ctx context.Context, _ []string) error {
				cfg, err := loadChecked(ctx, *cfgPath)
				if err != nil {
					return err
				}
				sc, err := schedule.ParseConfig(cfg)
				if err != nil {
					return err
				}
				if *listen != "" {
					sc.Serve.Listen = *listen
				}
				s := &schedule.Scheduler{Cfg: sc, Runner: &pipelines.Runner{Cfg: cfg}}
				return s.Serve(ctx)
			}
		},
	})
}
