package main

import (
	"context"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/load"
)

func init() {
	register(&command{
		name:    "kinds",
		summary: "Print the config reference: source kinds, publish kinds and the canonical entities with their columns.",
		setup: func(*pflag.FlagSet) func(context.Context, []string) error {
			return func(context.Context, []string) error {
				fmt.Fprintln(out, "Source kinds (sources: - kind: …):")
				for _, n := range extract.KindNames() {
					k, _ := extract.LookupKind(n)
					fmt.Fprintf(out, "  %-10s %s\n", n, k.Doc)
				}
				fmt.Fprintln(out, "\nPublish kinds (publish: - kind: …):")
				for _, n := range load.KindNames() {
					k, _ := load.LookupKind(n)
					fmt.Fprintf(out, "  %-10s %s\n", n, k.Doc)
				}
				for _, n := range extract.EntityNames() {
					e, err := extract.LookupEntity(n)
					if err != nil || e.Raw {
						continue
					}
					fmt.Fprintf(out, "\nEntity %s: %s\n", e.Name, e.Doc)
					t := &table{header: []string{"column", "type", "required", "meaning"}}
					for _, c := range e.Columns {
						req := ""
						if c.Required {
							req = "yes"
						}
						t.add(c.Name, string(c.Type), req, c.Doc)
					}
					t.print(out)
				}
				return nil
			}
		},
	})
}
