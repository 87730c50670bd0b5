package martbench

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cdwhq/cdw/extract/sample"
	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/transform"
)

// BenchmarkBuiltinEngine measures the engine on the built-in project with a
// small demo (600 customers), where a model's own query costs little and
// the engine's per-model work shows: "load" discovers, renders and parses
// every model (what each cdw command does first), "full" rebuilds every
// model (FullRefresh), "noop" is cdw run's transform step with nothing new
// (load, every model found up to date, tests skipped).
// The file compiles unchanged against the engine before gonja, so both can
// be measured in one session (see BENCHMARKS.md).
func BenchmarkBuiltinEngine(b *testing.B) {
	dir := b.TempDir()
	cfgPath, _, err := pipelines.WriteDemo(dir, sample.Options{Customers: 600, Years: 2, Seed: 7})
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := pipelines.LoadConfig(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := (&pipelines.Runner{Cfg: cfg}).Run(context.Background(), pipelines.Options{
		Steps: pipelines.Steps{Extract: true, Transform: true}, Log: quiet}); err != nil {
		b.Logf("full run: %v", err)
	}
	pr := &pipelines.Runner{Cfg: cfg}
	p, err := pr.Project(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	n := float64(len(p.Models))
	perModel := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N)/n, "ms/model")
		b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "models/s")
	}
	b.Run("load", func(b *testing.B) {
		for b.Loop() {
			if _, err := pr.Project(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		perModel(b)
	})
	db, err := transform.Open(filepath.Join(dir, "warehouse.duckdb"), cfg.Settings())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("full", func(b *testing.B) {
		r := &transform.Runner{DB: db, Vars: transform.Vars(cfg.Vars), Log: quiet, FullRefresh: true}
		for b.Loop() {
			res, err := r.Run(context.Background(), "bench", p.Models)
			if err != nil || res.Err() != nil {
				b.Fatal(err, res.Err())
			}
		}
		perModel(b)
	})
	db.Close()
	// A cdw run's transform step with nothing new: load, check every
	// model, skip the tests that passed on the same inputs. The first run
	// after "full" (which had no raw file lists) rebuilds: not timed.
	noop := func() error {
		_, err := pr.Run(context.Background(), pipelines.Options{Steps: pipelines.Steps{Transform: true}, Log: quiet})
		return err
	}
	if err := noop(); err != nil {
		b.Fatal(err)
	}
	b.Run("noop", func(b *testing.B) {
		for b.Loop() {
			if err := noop(); err != nil {
				b.Fatal(err)
			}
		}
		perModel(b)
	})
}
