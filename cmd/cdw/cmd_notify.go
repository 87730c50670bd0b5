package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/load/alert"
	"github.com/cdwhq/cdw/pipelines"
)

func init() {
	register(&command{
		name:    "notify",
		summary: "Alert (webhook and/or e-mail) for every customer that entered or left early warning since the last run, once per episode.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			return func(ctx context.Context, _ []string) error {
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				ac, err := alert.ParseConfig(cfg.Alerts, cfg.Report, cfg.SMTP, cfg.Warehouse, cfg.BaseDir)
				if err != nil {
					return err
				}
				// One notify at a time per warehouse: the outbox is its state.
				lock, err := pipelines.WaitLock(ctx, cfg.Warehouse, cfg.LockTimeout)
				if err != nil {
					return err
				}
				defer lock.Release()
				res, err := alert.Run(ctx, ac, alert.RunOptions{})
				for _, l := range res.Lines() {
					fmt.Fprintln(out, l)
				}
				return err
			}
		},
	})
}
