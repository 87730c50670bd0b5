package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/transform"
)

func init() {
	register(&command{
		name:    "models",
		summary: "List the models in dependency order with materialization, dependencies and description.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			columns := fs.Bool("columns", false, "also list each model's documented columns")
			status := fs.Bool("status", false, "show what the next run would do: which models are up to date, which it would rebuild and why")
			sel := selectFlag(fs)
			var graph graphFlag
			fs.Var(&graph, "graph", "print the DAG instead of a table: --graph (Mermaid) or --graph dot")
			fs.Lookup("graph").NoOptDefVal = "mermaid"
			return func(ctx context.Context, args []string) error {
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				p, err := (&pipelines.Runner{Cfg: cfg}).Project(ctx)
				if err != nil {
					return err
				}
				// "--graph dot": a flag with an optional value leaves the
				// format as an argument.
				if graph == "mermaid" && len(args) > 0 && (args[0] == "dot" || args[0] == "mermaid") {
					graph, args = graphFlag(args[0]), args[1:]
				}
				if len(args) > 0 {
					return fmt.Errorf("unexpected arguments %q", args)
				}
				models, err := p.Select(*sel)
				if err != nil {
					return err
				}
				if *status {
					return printStatuses(ctx, cfg, *sel)
				}
				if graph != "" {
					return transform.WriteGraph(out, models, string(graph))
				}
				t := &table{header: []string{"#", "model", "materialized", "published", "depends on", "file"}}
				for i, m := range models {
					pub := ""
					if m.Published() {
						pub = "yes"
					}
					t.add(fmt.Sprint(i+1), m.Name, string(m.Header.Materialized), pub, strings.Join(m.Deps, ", "), m.File)
				}
				t.print(out)
				if *columns {
					for _, m := range models {
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
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
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

// printStatuses shows, per model, whether the next run would rebuild it.
func printStatuses(ctx context.Context, cfg *pipelines.Config, sel string) error {
	sts, err := (&pipelines.Runner{Cfg: cfg}).ModelStatuses(ctx, sel)
	if err != nil {
		return err
	}
	t := &table{header: []string{"#", "model", "next run", "why", "last built"}}
	stale := 0
	for i, s := range sts {
		next, built := "rebuild", ""
		switch {
		case s.UpToDate:
			next = "up to date"
		case s.Maybe:
			next = "maybe"
		default:
			stale++
		}
		if !s.BuiltAt.IsZero() {
			built = s.BuiltAt.UTC().Format("2006-01-02 15:04:05")
		}
		t.add(fmt.Sprint(i+1), s.Model, next, s.Why, built)
	}
	t.print(out)
	fmt.Fprintf(out, "%d of %d models would be rebuilt, before counting what the run's extract brings\n", stale, len(sts))
	return nil
}

// graphFlag is --graph with an optional format: alone it means Mermaid.
type graphFlag string

func (g *graphFlag) String() string     { return string(*g) }
func (g *graphFlag) Set(v string) error { *g = graphFlag(v); return nil }
func (g *graphFlag) Type() string       { return "format" }
