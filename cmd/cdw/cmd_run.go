package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/transform"
)

func init() {
	register(&command{
		name:    "run",
		tables:  true,
		summary: "Run the pipeline once: extract every source, build the models, publish the marts.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			full := fs.Bool("full-refresh", false, "re-extract everything instead of only new and changed rows, and rebuild every model (incremental ones from scratch)")
			sel := selectFlag(fs)
			return func(ctx context.Context, _ []string) error {
				cfg, err := loadChecked(ctx, *cfgPath)
				if err != nil {
					return err
				}
				rep, err := (&pipelines.Runner{Cfg: cfg}).Run(ctx, pipelines.Options{
					Steps: pipelines.AllSteps, FullRefresh: *full, Progress: progress(), Select: *sel})
				printReport(rep)
				return err
			}
		},
	})
	register(&command{
		name:    "extract",
		tables:  true,
		summary: "Extract sources into the raw Parquet layer, without transforming or publishing.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			source := fs.StringSlice("source", nil, "only this source (comma-separated list allowed)")
			entity := fs.StringSlice("entity", nil, "only this entity: orders, tickets or contacts (comma-separated list allowed)")
			full := fs.Bool("full-refresh", false, "re-extract everything; the new files replace the old ones when complete")
			dropSlot := fs.Bool("drop-slot", false, "extract nothing: drop the replication slot and publication of each selected mode: cdc entity (its next extract then needs --full-refresh)")
			return func(ctx context.Context, _ []string) error {
				cfg, err := loadChecked(ctx, *cfgPath)
				if err != nil {
					return err
				}
				if *dropSlot {
					done, err := (&pipelines.Runner{Cfg: cfg}).DropSlots(ctx, pipelines.Options{Sources: *source, Entities: *entity}, slog.Default())
					for _, d := range done {
						fmt.Fprintln(out, d)
					}
					return err
				}
				rep, err := (&pipelines.Runner{Cfg: cfg}).Run(ctx, pipelines.Options{
					Steps: pipelines.Steps{Extract: true}, Pipeline: "extract", FullRefresh: *full,
					Sources: *source, Entities: *entity, Progress: progress()})
				printReport(rep)
				return err
			}
		},
	})
}

func configFlag(fs *pflag.FlagSet) *string {
	def := "cdw.yaml"
	if env := os.Getenv("CDW_CONFIG"); env != "" {
		def = env
	}
	return fs.String("config", def, "config file (env CDW_CONFIG)")
}

// progress shows a live line on a terminal and log lines otherwise.
func progress() *extract.Progress {
	if term.IsTerminal(int(os.Stderr.Fd())) {
		return &extract.Progress{Out: os.Stderr}
	}
	return &extract.Progress{}
}

// printReport prints what a run did as short tables.
func printReport(rep *pipelines.Report) {
	if rep == nil {
		return
	}
	if len(rep.Extract) > 0 {
		t := &table{header: []string{"source", "entity", "rows", "rejected", "files", "seconds"}}
		for _, e := range rep.Extract {
			t.add(e.Source, e.Entity, fmt.Sprint(e.Rows), fmt.Sprint(e.Rejected), fmt.Sprint(e.Files), fmt.Sprintf("%.2f", e.Duration.Seconds()))
		}
		fmt.Fprintln(out, "Extract:")
		t.print(out)
	}
	if len(rep.Transform.Models) > 0 {
		ok, fresh := 0, 0
		t := &table{header: []string{"model", "status", "rows", "ms", "notes"}}
		for _, m := range rep.Transform.Models {
			rows := "view"
			switch {
			case m.Rows >= 0:
				rows = fmt.Sprint(m.Rows)
			case m.Status != transform.Success:
				rows = "-"
			}
			switch m.Status {
			case transform.Success:
				ok++
			case transform.UpToDate:
				fresh++
			}
			note := m.Notes
			if m.Err != nil {
				note = oneLine(m.Err)
			}
			t.add(m.Model, string(m.Status), rows, fmt.Sprint(m.Duration.Milliseconds()), note)
		}
		fmt.Fprintf(out, "Models: %d of %d built, %d up to date\n", ok, len(rep.Transform.Models), fresh)
		t.print(out)
	}
	printTests(rep.Tests)
	for _, n := range rep.Notices {
		fmt.Fprintln(out, n)
	}
	if len(rep.Published) > 0 {
		fmt.Fprintf(out, "Published %d marts as version %s: %s\n", len(rep.Published), rep.Version, strings.Join(rep.Published, ", "))
	}
	if rep.Unchanged {
		fmt.Fprintf(out, "Marts unchanged since version %s: nothing published\n", rep.Version)
	}
}

// selectFlag is the --select flag shared by run, test and models.
func selectFlag(fs *pflag.FlagSet) *string {
	return fs.String("select", "", "models to use: name, name+ (and downstream), +name (and upstream), path:DIR, tag:NAME; several = union")
}

// printTests prints a one-line tally and every test that did not pass.
func printTests(results []transform.TestResult) {
	if len(results) == 0 {
		return
	}
	count := map[transform.TestStatus]int{}
	t := &table{header: []string{"test", "status", "failing", "file", "detail"}}
	for _, r := range results {
		count[r.Status]++
		if r.Status == transform.TestPass || r.Status == transform.TestUpToDate {
			continue
		}
		detail := r.Sample
		if r.Err != nil {
			detail = oneLine(r.Err)
		}
		t.add(r.Name, string(r.Status), fmt.Sprint(r.Failures), r.File, detail)
	}
	fmt.Fprintf(out, "Tests: %d passed, %d warned, %d failed, %d errored", count[transform.TestPass],
		count[transform.TestWarn], count[transform.TestFail], count[transform.TestError])
	if n := count[transform.TestUpToDate]; n > 0 {
		fmt.Fprintf(out, ", %d not run (inputs unchanged since they passed)", n)
	}
	fmt.Fprintln(out)
	if len(t.rows) > 0 {
		t.print(out)
	}
}

func init() {
	register(&command{
		name:    "compact",
		tables:  true,
		summary: "Merge small raw files into large sorted ones (one state commit and one Iceberg rewrite per entity).",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			source := fs.StringSlice("source", nil, "only this source (comma-separated list allowed)")
			entity := fs.StringSlice("entity", nil, "only this entity (comma-separated list allowed)")
			target := fs.String("target-size", "128MB", "size to merge files up to (files under half of it are small)")
			return func(ctx context.Context, _ []string) error {
				size, err := parseSize(*target)
				if err != nil {
					return fmt.Errorf("--target-size: %w", err)
				}
				cfg, err := loadChecked(ctx, *cfgPath)
				if err != nil {
					return err
				}
				rep, err := (&pipelines.Runner{Cfg: cfg}).Run(ctx, pipelines.Options{
					Steps: pipelines.Steps{Compact: true}, Pipeline: "compact", CompactTarget: size,
					Sources: *source, Entities: *entity})
				if rep != nil && len(rep.Compact) > 0 {
					t := &table{header: []string{"source", "entity", "files", "into", "rows", "MB"}}
					for _, c := range rep.Compact {
						t.add(c.Source, c.Entity, fmt.Sprint(c.Inputs), fmt.Sprint(c.Outputs), fmt.Sprint(c.Rows), fmt.Sprintf("%.1f", float64(c.Bytes)/(1<<20)))
					}
					fmt.Fprintln(out, "Compact:")
					t.print(out)
				}
				return err
			}
		},
	})
}

// parseSize reads a size such as 128MB or 1GiB (humanize: MB = 10^6 bytes).
func parseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil || n == 0 || n > math.MaxInt64 {
		return 0, fmt.Errorf("expected a size such as 128MB or 1GiB, found %q", s)
	}
	return int64(n), nil
}
