package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cdwhq/cdw/internal/durable"
	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/transform"
)

func init() {
	register(&command{
		name:    "new",
		usage:   "model NAME",
		summary: "Scaffold a new model file with its header filled in (in the first models: directory, or --dir).",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string) error {
			cfgPath := configFlag(fs)
			dir := fs.String("dir", "", "directory for the file (default: the first models: directory of the config)")
			mat := fs.String("materialized", "table", "view, table or incremental")
			return func(ctx context.Context, args []string) error {
				if len(args) != 2 || args[0] != "model" {
					return errors.New("usage: cdw new model NAME")
				}
				name := strings.ToLower(args[1])
				text, err := transform.Scaffold(name, transform.Materialization(*mat))
				if err != nil {
					return err
				}
				target := *dir
				if target == "" {
					cfg, err := pipelines.LoadConfig(*cfgPath)
					if err != nil {
						return fmt.Errorf("finding the models directory (or pass --dir): %w", err)
					}
					if len(cfg.Models) == 0 {
						return fmt.Errorf("%s has no models: directory; add one (models: [models]) or pass --dir", cfg.File)
					}
					target = cfg.Models[0]
				}
				if err := os.MkdirAll(target, durable.DirPerm); err != nil {
					return fmt.Errorf("creating %s: %w", target, err)
				}
				file := filepath.Join(target, name+".sql")
				if _, err := os.Stat(file); err == nil {
					return fmt.Errorf("%s already exists", file)
				}
				if err := durable.WriteFile(file, []byte(text)); err != nil {
					return err
				}
				fmt.Fprintf(out, "Created %s; edit the SQL, then 'cdw run --select %s' builds it.\n", file, name)
				return nil
			}
		},
	})
}
