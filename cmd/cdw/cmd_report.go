package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/load/report"
	"github.com/cdwhq/cdw/pipelines"
)

func init() {
	register(&command{
		name:    "report",
		summary: "Build the executive segment summary from the published marts, save it under reports/ and e-mail it.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			outFile := fs.String("out", "", "write the HTML report to this file and stop (no save, no e-mail)")
			unit := fs.String("unit", "", "with --out: only this business unit")
			noSend := fs.Bool("no-send", false, "save the reports but do not e-mail them")
			return func(ctx context.Context, _ []string) error {
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				rc, err := report.ParseConfig(cfg.Report, cfg.SMTP, cfg.Warehouse, cfg.BaseDir)
				if err != nil {
					return err
				}
				res, err := report.Run(ctx, rc, report.RunOptions{Out: *outFile, Unit: *unit,
					Send: *outFile == "" && !*noSend && rc.SMTP != nil})
				if res != nil {
					for _, v := range res.Versions {
						fmt.Fprintln(out, v.File)
					}
					if res.Sent > 0 {
						fmt.Fprintf(out, "sent %d messages (charts drawn with %s)\n", res.Sent, res.Font)
					}
					// Nothing e-mailed is said in one line, never left to silence.
					switch {
					case *outFile != "":
					case *noSend:
						fmt.Fprintln(out, "not e-mailed: --no-send")
					case rc.SMTP == nil:
						fmt.Fprintln(out, "not e-mailed: cdw.yaml has no smtp: section (reports saved only)")
					case res.NotSent != "":
						fmt.Fprintln(out, "not e-mailed: "+res.NotSent)
					}
				}
				return err
			}
		},
	})
}
