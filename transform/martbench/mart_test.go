package martbench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"testing"
	"time"

	_ "github.com/cdwhq/cdw/extract/files" // the demo's source kind
	"github.com/cdwhq/cdw/extract/sample"
	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/transform"
	_ "github.com/cdwhq/cdw/transform/clv"      // Go models the built-in marts read
	_ "github.com/cdwhq/cdw/transform/identity" // identity_components, which the built-in models read
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// BenchmarkMartOverhead builds the real customer_segments mart on demo data
// through the engine, and the same rendered SQL directly on DuckDB, and
// reports the engine's overhead in percent.
func BenchmarkMartOverhead(b *testing.B) {
	dir := b.TempDir()
	cfgPath, _, err := pipelines.WriteDemo(dir, sample.Options{Customers: 20000, Seed: 7})
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := pipelines.LoadConfig(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	// Build everything once (raw views and upstream tables).
	if _, err := (&pipelines.Runner{Cfg: cfg}).Run(context.Background(), pipelines.Options{
		Steps: pipelines.Steps{Extract: true, Transform: true}, Log: quiet}); err != nil {
		b.Logf("full run: %v (benchmarking the mart anyway)", err)
	}
	p, err := (&pipelines.Runner{Cfg: cfg}).Project(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	mart, ok := p.Model("customer_segments")
	if !ok {
		b.Fatal("no customer_segments model")
	}
	body, err := transform.Render(mart, transform.Vars(cfg.Vars))
	if err != nil {
		b.Fatal(err)
	}
	db, err := transform.Open(filepath.Join(dir, "warehouse.duckdb"), cfg.Settings())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r := &transform.Runner{DB: db, Log: quiet}
	direct := func() time.Duration {
		t0 := time.Now()
		if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TABLE customer_segments AS "+body); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	engine := func() time.Duration {
		t0 := time.Now()
		res, err := r.Run(ctx, "bench", []*transform.Model{mart})
		if err != nil || res.Err() != nil {
			b.Fatal(err, res.Err())
		}
		return time.Since(t0)
	}
	direct()
	engine() // warm both paths
	// Alternate the two and compare medians: on a shared 2-core machine a
	// single slow iteration would otherwise dominate a sum.
	var ds, es []time.Duration
	for b.Loop() {
		ds = append(ds, direct())
		es = append(es, engine())
	}
	td, te := median(ds), median(es)
	b.ReportMetric(float64(td.Microseconds())/1000, "direct-ms")
	b.ReportMetric(float64(te.Microseconds())/1000, "engine-ms")
	b.ReportMetric(100*(float64(te)-float64(td))/float64(td), "overhead-%")
}

// BenchmarkDemoDAG rebuilds every built-in model on demo data with 1 and 2
// workers, to show whether building independent models concurrently pays
// off on this machine.
func BenchmarkDemoDAG(b *testing.B) {
	dir := b.TempDir()
	cfgPath, _, err := pipelines.WriteDemo(dir, sample.Options{Customers: 20000, Seed: 7})
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
	p, err := (&pipelines.Runner{Cfg: cfg}).Project(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	db, err := transform.Open(filepath.Join(dir, "warehouse.duckdb"), cfg.Settings())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			r := &transform.Runner{DB: db, Workers: workers, Vars: transform.Vars(cfg.Vars), Log: quiet}
			for b.Loop() {
				if _, err := r.Run(context.Background(), "bench", p.Models); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
