package models_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/cdwhq/cdw/extract/sample"
	"github.com/cdwhq/cdw/pipelines"
)

// BenchmarkMartsSample times the transform step (all models and data tests)
// on the demo generator's data with 30,000 customers (≈200k order lines);
// extraction happens once, outside the timer. It reports the slowest model.
func BenchmarkMartsSample(b *testing.B) {
	dir := b.TempDir()
	cfgPath, files, err := pipelines.WriteDemo(dir, sample.Options{Customers: 30000})
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := pipelines.LoadConfig(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := &pipelines.Runner{Cfg: cfg}
	if _, err := r.Run(context.Background(), pipelines.Options{Steps: pipelines.Steps{Extract: true}, Log: log}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := r.Run(context.Background(), pipelines.Options{Steps: pipelines.Steps{Transform: true}, Log: log})
		if err != nil {
			b.Fatal(err)
		}
		if i == b.N-1 {
			var slow string
			var ms float64
			for _, m := range rep.Transform.Models {
				if d := float64(m.Duration.Milliseconds()); d > ms {
					slow, ms = m.Model, d
				}
			}
			b.ReportMetric(float64(files.OrderLines), "order_lines")
			b.ReportMetric(ms, "slowest_model_ms")
			b.Logf("slowest model: %s (%.0f ms)", slow, ms)
		}
	}
}
