package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/bench/harness"
)

// benchExe lets tests measure the test binary itself as cdw (the binary and
// its leading arguments).
var benchExe []string

// cdw bench is a thin command over bench/harness, which holds the workloads.
func init() {
	register(&command{
		name:    "bench",
		summary: "Benchmark cdw against psql, DuckDB, pandas at scale and write BENCHMARKS.md.",
		sub: []*command{{
			name:    "exec",
			usage:   "MODE [flags…]",
			summary: "What the measured child processes run: sql, extract, transform or direct.",
			setup:   benchExec,
		}},
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			o := harness.Options{}
			fs.StringVar(&o.Dir, "dir", "", "directory for generated data, warehouses, logs and results, required (needs tens of GB at 100M)")
			fs.IntVar(&o.Orders, "orders", 10_000_000, "order lines for the CSV, transform, pandas and incremental workloads")
			fs.IntVar(&o.Runs, "runs", 5, "runs per side; the median is reported")
			fs.StringSliceVar(&o.Workloads, "workloads", []string{"csv", "transform", "pandas", "incremental", "e2e"}, "comma-separated: postgres, cdc, csv, transform, pandas, e2e, incremental; none = only write the report")
			fs.IntSliceVar(&o.Sizes, "e2e-sizes", []int{1_000_000, 10_000_000}, "order lines for the end-to-end workload (comma-separated); 100000000 runs once")
			fs.IntVar(&o.PgOrders, "pg-orders", 5_000_000, "order lines in PostgreSQL for the postgres and cdc workloads")
			fs.IntVar(&o.CDCChanges, "cdc-changes", 5_000_000, "row changes the cdc workload streams per run (at most the orders table's rows)")
			fs.IntVar(&o.CDCRate, "cdc-rate", 500, "transactions per second of the cdc workload's steady pgbench load")
			fs.IntVar(&o.CDCSeconds, "cdc-seconds", 60, "seconds of the cdc workload's steady pgbench load")
			fs.StringVar(&o.MemLimit, "memory-limit", "3GB", "DuckDB memory_limit for cdw and the DuckDB baselines")
			fs.StringVar(&o.Out, "out", "BENCHMARKS.md", "report to write")
			fs.StringSliceVar(&o.PandasRows, "pandas-rows", []string{"matched", "transform", "segments"}, "rows of the pandas workload: matched (extract + transform, same definitions), transform (transform step only), segments (the customer_segments mart)")
			fs.StringVar(&o.Notes, "notes", "bench/NOTES.md", "markdown appended to the report (profiles, analysis); skipped when missing")
			fs.StringVar(&o.Python, "python", "", "python3 with pandas for the pandas workload (default: python3 on PATH, else /usr/bin/python3, whichever has pandas)")
			smoke := fs.Bool("smoke", false, "tiny sizes, 1 run, every workload but postgres: checks the harness works")
			return func(ctx context.Context, args []string) error {
				if len(args) > 0 {
					return fmt.Errorf("unexpected arguments %q", args)
				}
				if *smoke {
					o.Orders, o.Runs, o.PgOrders, o.Sizes = 20_000, 1, 20_000, []int{20_000}
				}
				o.Cdw, o.Stdout = benchExe, out
				return harness.Run(ctx, o)
			}
		},
	})
}

func benchExec(fs *pflag.FlagSet) func(context.Context, []string) error {
	var o harness.ExecOptions
	fs.StringVar(&o.Script, "script", "", "SQL to run (sql)")
	fs.StringVar(&o.MemoryLimit, "memory-limit", "", "DuckDB memory_limit (sql)")
	fs.StringVar(&o.Config, "config", "", "config file (extract, transform, direct)")
	fs.StringVar(&o.DB, "db", "", "DuckDB file to build (direct)")
	fs.StringSliceVar(&o.Entities, "entity", nil, "only this entity (extract; comma-separated list allowed)")
	fs.StringVar(&o.Select, "select", "", "model selection (transform)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile (pprof) of the run to this file")
	fs.BoolVar(&o.FullRefresh, "full-refresh", false, "rebuild the selected models even when up to date (transform)")
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return errors.New("bench exec needs one mode: sql, extract, transform or direct")
		}
		return harness.Exec(ctx, args[0], o)
	}
}
