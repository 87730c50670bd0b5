package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/pipelines"
)

func init() {
	register(&command{
		name:    "quarantine",
		summary: "List the rejected rows of the committed files, grouped by reason with an example each, and what to change.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			source := fs.String("source", "", "only this source")
			entity := fs.String("entity", "", "only this entity")
			return func(ctx context.Context, args []string) error {
				if len(args) > 0 {
					return fmt.Errorf("unexpected arguments %q", args)
				}
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				groups, err := (&pipelines.Runner{Cfg: cfg}).Quarantine(ctx, *source, *entity)
				if err != nil {
					return err
				}
				if len(groups) == 0 {
					fmt.Fprintln(out, "Nothing in quarantine.")
					return nil
				}
				last := ""
				for _, g := range groups {
					if name := g.Source + "." + g.Entity; name != last {
						if last != "" {
							fmt.Fprintln(out)
						}
						fmt.Fprintf(out, "%s:\n", name)
						last = name
					}
					fmt.Fprintf(out, "  %d× %s\n", g.Rows, g.Reason)
					ex := g.Example.File
					if g.Example.Line > 0 {
						ex += fmt.Sprintf(" line %d", g.Example.Line)
					}
					if g.Example.Raw != "" {
						ex += ": " + g.Example.Raw
					}
					fmt.Fprintf(out, "     e.g. %s\n", ex)
					if g.Advice != "" {
						fmt.Fprintf(out, "     change: %s\n", g.Advice)
					}
				}
				fmt.Fprintln(out, "\nAfter changing a file source's settings, the next cdw run reads the files read with the old settings again, once, as a new version.")
				return nil
			}
		},
	})
}
