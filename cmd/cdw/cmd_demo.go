package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/extract/sample"
	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/pipelines"
)

func init() {
	register(&command{
		name:    "demo",
		tables:  true,
		summary: "Generate realistic sample sources and run the whole warehouse on them (local DuckDB + Parquet).",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			dir := fs.String("dir", "cdw-data", "directory for the sample sources, config and warehouse")
			customers := fs.Int("customers", 3000, "number of customers to generate")
			seed := fs.Uint64("seed", 42, "random seed; the same seed gives the same data")
			return func(ctx context.Context, _ []string) error {
				start := time.Now()
				cfgPath, files, err := pipelines.WriteDemo(*dir, sample.Options{Customers: *customers, Seed: *seed, BadRows: 2})
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "Generated %d order lines, %d tickets and %d contacts in %s\n",
					files.OrderLines, files.TicketRows, files.ContactRows, filepath.Join(*dir, "sources"))
				cfg, err := loadChecked(ctx, cfgPath)
				if err != nil {
					return err
				}
				rep, err := (&pipelines.Runner{Cfg: cfg}).Run(ctx, pipelines.Options{Steps: pipelines.AllSteps, Pipeline: "demo"})
				printReport(rep)
				if err != nil {
					return err
				}
				mf, err := martsFile(cfg, "")
				if err != nil {
					return err
				}
				fmt.Fprintln(out, "\nSegment summary (all business units):")
				if err := query(ctx, mf, duck.Settings(cfg.Settings()), `
					SELECT segment, sum(customers) AS customers, round(sum(revenue), 0) AS revenue,
					       round(100 * sum(revenue) / sum(sum(revenue)) OVER (), 1) AS revenue_pct,
					       round(sum(avg_recency_days * customers) / sum(customers), 0) AS avg_recency_days
					FROM segment_summary GROUP BY segment ORDER BY revenue DESC`, "table", 100, out); err != nil {
					return err
				}
				abs, _ := filepath.Abs(*dir)
				fmt.Fprintf(out, "\nDone in %.1fs. Marts: %s/marts/*.parquet and %s/marts.duckdb\n", time.Since(start).Seconds(), abs, abs)
				fmt.Fprintf(out, "Try: cdw query --dir %s \"SELECT * FROM segment_summary ORDER BY revenue DESC LIMIT 10\"\n", *dir)
				return nil
			}
		},
	})
}
