package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/extract/sample"
)

func init() {
	register(&command{
		name:    "gen",
		summary: "Generate deterministic synthetic orders, tickets and contacts at any size, as CSV or Parquet files or into PostgreSQL.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			var o sample.Options
			fs.IntVar(&o.Customers, "customers", 3000, "number of customers")
			fs.IntVar(&o.Orders, "orders", 0, "target number of order lines (0: the demo's natural purchase rates)")
			fs.IntVar(&o.Years, "years", 3, "years of history")
			fs.Uint64Var(&o.Seed, "seed", 42, "random seed; the same seed and sizes give the same data")
			fs.Float64Var(&o.Updates, "updates", 0.005, "fraction of order lines exported a second time with a changed status")
			fs.Float64Var(&o.TicketRate, "ticket-rate", 0.18, "probability that an order is followed by a service ticket")
			outDir := fs.String("out", "", "directory for orders, tickets, crm_contacts and web_signups files (.csv or .parquet)")
			format := fs.String("format", "csv", "with --out: csv, or parquet (typed columns, the same rows as the CSV for the same seed)")
			dsn := fs.String("postgres", "", "PostgreSQL connection string: (re)create and fill tables orders, tickets, crm_contacts, web_signups")
			delta := fs.Float64("delta", 0, "with --out: write only orders-delta.csv, this fraction of lines changed or new (e.g. 0.01)")
			return func(ctx context.Context, _ []string) error {
				if (*outDir == "") == (*dsn == "") {
					return errors.New("give exactly one of --out DIR or --postgres DSN")
				}
				if *format != "csv" && *format != "parquet" {
					return fmt.Errorf("--format must be csv or parquet, got %q", *format)
				}
				if *format == "parquet" && (*outDir == "" || *delta > 0) {
					return errors.New("--format parquet needs --out DIR and no --delta")
				}
				start := time.Now()
				write := sample.Write
				if *format == "parquet" {
					write = sample.WriteParquet
				}
				switch {
				case *delta > 0:
					if *outDir == "" {
						return errors.New("--delta needs --out DIR")
					}
					path := filepath.Join(*outDir, "orders-delta.csv")
					ch, add, err := sample.WriteDelta(path, o, *delta)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "Wrote %s: %d changed and %d new order lines in %.1fs\n", path, ch, add, time.Since(start).Seconds())
				case *outDir != "":
					f, err := write(*outDir, o)
					if err != nil {
						return err
					}
					secs := time.Since(start).Seconds()
					fmt.Fprintf(out, "Wrote %d order lines, %d tickets and %d contacts to %s in %.1fs (%.0f order lines/s)\n",
						f.OrderLines, f.TicketRows, f.ContactRows, *outDir, secs, float64(f.OrderLines)/secs)
				default:
					n, err := sample.LoadPostgres(ctx, *dsn, o)
					if err != nil {
						return err
					}
					secs := time.Since(start).Seconds()
					fmt.Fprintf(out, "Loaded %d order lines, %d tickets, %d contacts and %d sign-ups into PostgreSQL in %.1fs\n",
						n.OrderLines, n.Tickets, n.Contacts, n.Signups, secs)
				}
				return nil
			}
		},
	})
}
