package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/cdwhq/cdw/pipelines"
)

func init() {
	register(&command{
		name:    "models",
		summary: "List the models in dependency order with materialization, dependencies and description.",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			columns := fs.Bool("columns", false, "also list each model's documented columns")
			return func(ctx context.Context, _ []string) error {
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				p, err := (&pipelines.Runner{Cfg: cfg}).Project(ctx)
				if err != nil {
					return err
				}
				t := &table{header: []string{"#", "model", "materialized", "published", "depends on", "file"}}
				for i, m := range p.Models {
					pub := ""
					if m.Published() {
						pub = "yes"
					}
					t.add(fmt.Sprint(i+1), m.Name, string(m.Header.Materialized), pub, strings.Join(m.Deps, ", "), m.File)
				}
				t.print(out)
				if *columns {
					for _, m := range p.Models {
						if m.Header.Description == "" && len(m.Header.Columns) == 0 {
							continue
						}
						fmt.Fprintf(out, "\n%s — %s\n", m.Name, m.Header.Description)
						for _, c := range m.Header.Columns {
							fmt.Fprintf(out, "  %-22s %s\n", c.Name, c.Description)
						}
					}
				}
				return nil
			}
		},
	})
	register(&command{
		name:    "runs",
		summary: "Show the run history: last runs with status, duration, rows and error.",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			n := fs.Int("n", 20, "how many runs to show")
			return func(ctx context.Context, _ []string) error {
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				recs, err := pipelines.ReadHistory(cfg.Warehouse, *n)
				if err != nil {
					return err
				}
				t := &table{header: []string{"run", "pipeline", "status", "started", "seconds", "rows", "rejected", "models", "error"}}
				for _, r := range recs {
					t.add(r.ID, r.Pipeline, r.Status, r.StartedAt.Format("2006-01-02 15:04:05"), fmt.Sprintf("%.1f", r.Duration.Seconds()),
						fmt.Sprint(r.Rows), fmt.Sprint(r.Rejected), fmt.Sprint(r.Models), r.Error)
				}
				t.print(out)
				return nil
			}
		},
	})
}
