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
			withIceberg := fs.Bool("iceberg", false, "also write the raw layer and the marts as Apache Iceberg tables (filesystem catalog under <dir>/iceberg)")
			return func(ctx context.Context, _ []string) error {
				start := time.Now()
				cfgPath, files, err := pipelines.WriteDemoWith(*dir, sample.Options{Customers: *customers, Seed: *seed, BadRows: 2}, *withIceberg)
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
				if cfg.IcebergSettings != nil {
					printIcebergHint(cfg.IcebergSettings.Dir)
				}
				fmt.Fprintf(out, "Try: cdw query --dir %s \"SELECT * FROM segment_summary ORDER BY revenue DESC LIMIT 10\"\n", *dir)
				return nil
			}
		},
	})
}

// printIcebergHint says where the demo's Iceberg tables are and how another
// engine reads them.
func printIcebergHint(dir string) {
	fmt.Fprintf(out, "Iceberg tables (filesystem catalog, Hadoop layout): %s/raw/<source>_<entity> and %s/marts/<mart>\n", dir, dir)
	fmt.Fprintf(out, "  DuckDB: INSTALL iceberg; LOAD iceberg; SELECT * FROM iceberg_scan('%s/marts/segment_summary', allow_moved_paths = true);\n", dir)
	fmt.Fprintf(out, "  Spark:  --conf spark.sql.catalog.cdw=org.apache.iceberg.spark.SparkCatalog --conf spark.sql.catalog.cdw.type=hadoop --conf spark.sql.catalog.cdw.warehouse=file://%s, then SELECT * FROM cdw.marts.segment_summary\n", dir)
}
