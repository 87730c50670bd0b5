package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/pipelines"
)

func init() {
	register(&command{
		name:    "docs",
		summary: "Write the documentation site (models, SQL, columns, tests with last results, lineage graph) as static HTML.",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			dir := fs.String("out", "", "folder to write the site into (default: docs/ in the warehouse directory)")
			return func(ctx context.Context, _ []string) error {
				cfg, err := pipelines.LoadConfig(*cfgPath)
				if err != nil {
					return err
				}
				site, _, err := (&pipelines.Runner{Cfg: cfg}).Docs(ctx)
				if err != nil {
					return err
				}
				if *dir == "" {
					*dir = filepath.Join(cfg.Warehouse, "docs")
				}
				if err := site.Write(*dir); err != nil {
					return err
				}
				fmt.Fprintf(out, "wrote the docs of %d models and raw relations: open %s\n", len(site.Nodes), filepath.Join(*dir, "index.html"))
				return nil
			}
		},
	})
}
