package transform_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/cdwhq/cdw/transform"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// BenchmarkDAG50 builds 50 trivial models (a binary tree: model i reads
// model (i-1)/2) and reports the engine's overhead per model: the whole run,
// including recording cdw_model_runs, divided by 50.
func BenchmarkDAG50(b *testing.B) {
	fsys := fstest.MapFS{"m00.sql": {Data: []byte("-- materialized: table\nSELECT 1 AS x")}}
	for i := 1; i < 50; i++ {
		fsys[fmt.Sprintf("m%02d.sql", i)] = &fstest.MapFile{Data: []byte(fmt.Sprintf("-- materialized: table\nSELECT x + 1 AS x FROM m%02d", (i-1)/2))}
	}
	p, err := transform.Load(context.Background(), []transform.Root{{Name: "sql", FS: fsys}}, transform.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			db, err := transform.Open(filepath.Join(b.TempDir(), "w.duckdb"), transform.Settings{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			r := &transform.Runner{DB: db, Workers: workers, Log: quiet}
			b.ResetTimer()
			for b.Loop() {
				res, err := r.Run(context.Background(), "bench", p.Models)
				if err != nil || res.Err() != nil {
					b.Fatal(err, res.Err())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/50, "ms/model")
		})
	}
}

// BenchmarkDAG50Templated builds the 50 models of BenchmarkDAG50 in full
// (FullRefresh) twice in the same run: as plain SQL, and templated the way
// cdw's and dbt's models are ({{ ref() }}, {{ var() }}, an is_incremental()
// block). The ratio of the two is what rendering adds to a model's cost.
func BenchmarkDAG50Templated(b *testing.B) {
	plain := fstest.MapFS{"m00.sql": {Data: []byte("-- materialized: table\nSELECT 1 AS x")}}
	tpl := fstest.MapFS{"m00.sql": {Data: []byte("-- materialized: table\nSELECT {{ var('start', 1) }} AS x")}}
	for i := 1; i < 50; i++ {
		plain[fmt.Sprintf("m%02d.sql", i)] = &fstest.MapFile{Data: []byte(fmt.Sprintf(
			"-- materialized: table\nSELECT x + 1 AS x\nFROM m%02d\n", (i-1)/2))}
		tpl[fmt.Sprintf("m%02d.sql", i)] = &fstest.MapFile{Data: []byte(fmt.Sprintf(
			"-- materialized: table\nSELECT x + {{ var('step', 1) }} AS x\nFROM {{ ref('m%02d') }}\n{%% if is_incremental() %%}WHERE x > 0{%% endif %%}", (i-1)/2))}
	}
	for _, c := range []struct {
		name string
		fsys fstest.MapFS
	}{{"plain", plain}, {"templated", tpl}} {
		b.Run(c.name, func(b *testing.B) {
			p, err := transform.Load(context.Background(), []transform.Root{{Name: "sql", FS: c.fsys}}, transform.LoadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			db, err := transform.Open(filepath.Join(b.TempDir(), "w.duckdb"), transform.Settings{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			r := &transform.Runner{DB: db, Log: quiet, FullRefresh: true}
			b.ResetTimer()
			for b.Loop() {
				res, err := r.Run(context.Background(), "bench", p.Models)
				if err != nil || res.Err() != nil {
					b.Fatal(err, res.Err())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/50, "ms/model")
		})
	}
}
