package martbench

import (
	"context"
	"testing"

	models "github.com/cdwhq/cdw/sql"
	"github.com/cdwhq/cdw/transform"
)

// BenchmarkRenderBuiltins renders every built-in SQL model as a run does
// (load, definition hash, build: three renders) and reports models/s.
func BenchmarkRenderBuiltins(b *testing.B) {
	p, err := transform.Load(context.Background(), []transform.Root{{Name: "sql", FS: models.FS}},
		transform.LoadOptions{Raw: []string{"raw.orders", "raw.contacts", "raw.tickets", "raw.customers"}})
	if err != nil {
		b.Fatal(err)
	}
	var sqlModels []*transform.Model
	for _, m := range p.Models {
		if m.Go == nil {
			sqlModels = append(sqlModels, m)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		for _, m := range sqlModels {
			for range 3 {
				if _, err := transform.Render(m, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.ReportMetric(float64(b.N*len(sqlModels))/b.Elapsed().Seconds(), "models/s")
}

// BenchmarkLoadBuiltins loads the built-in project as every cdw command
// does first: discover, render, parse dependencies, order.
func BenchmarkLoadBuiltins(b *testing.B) {
	for b.Loop() {
		if _, err := transform.Load(context.Background(), []transform.Root{{Name: "sql", FS: models.FS}},
			transform.LoadOptions{Raw: []string{"raw.orders", "raw.contacts", "raw.tickets", "raw.customers"}}); err != nil {
			b.Fatal(err)
		}
	}
}
