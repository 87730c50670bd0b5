package models_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdwhq/cdw/extract/sample"
	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/transform/clv"
)

// BenchmarkMartsSample times the transform step (all models and data tests)
// on the demo generator's data with 30,000 customers (≈200k order lines);
// extraction happens once, outside the timer. It reports the slowest model.
func BenchmarkMartsSample(b *testing.B) {
	r, files, log := extractedDemo(b, sample.Options{Customers: 30000})
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

// extractedDemo writes the demo's sources at the given size into a fresh
// warehouse and extracts them, outside any timer, for benchmarks that time
// the transform.
func extractedDemo(b *testing.B, o sample.Options) (*pipelines.Runner, sample.Files, *slog.Logger) {
	b.Helper()
	cfgPath, files, err := pipelines.WriteDemo(b.TempDir(), o)
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
	return r, files, log
}

// BenchmarkSegmentHistoryOnlineRetail times a full build of segment_history
// on UCI Online Retail (541,909 lines, 4,372 customers, weekly and
// month-end periods over a year) against customer_segments in the same run,
// the one-period build of the same rules: segment_history_ms, segments_ms
// and their ratio. Then one more order on the last day (no new period end)
// and an incremental run: noop_ms, noop_segments_ms, noop_ratio and
// noop_merged_rows (0). Run with -benchtime=1x; extraction is outside the
// timer.
func BenchmarkSegmentHistoryOnlineRetail(b *testing.B) {
	const data = "/work/shared/datasets/online_retail/online_retail.csv.gz"
	dir := b.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink(data, filepath.Join(dir, "data", "online_retail.csv.gz")); err != nil {
		b.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "cdw.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`warehouse: wh
sources:
  - name: uci
    kind: files
    entities:
      orders:
        path: data/*
        timestamp_formats: ["1/2/2006 15:04"]
        columns: {order_id: InvoiceNo, customer_id: CustomerID, order_ts: InvoiceDate, product_id: StockCode,
                  product_name: Description, quantity: Quantity, unit_price: UnitPrice, business_unit: Country}
`)), 0o600); err != nil {
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
		rep, err := r.Run(context.Background(), pipelines.Options{Steps: pipelines.Steps{Transform: true}, FullRefresh: i > 0, Log: log})
		if err != nil {
			b.Fatal(err)
		}
		var hist, segs float64
		for _, m := range rep.Transform.Models {
			switch m.Model {
			case "segment_history":
				hist = float64(m.Duration.Milliseconds())
			case "customer_segments":
				segs = float64(m.Duration.Milliseconds())
			}
		}
		b.ReportMetric(hist, "segment_history_ms")
		b.ReportMetric(segs, "segments_ms")
		b.ReportMetric(hist/max(segs, 1), "ratio")
	}
	b.StopTimer()
	// one more order on the last day: as_of stays 2011-12-09, a Friday
	extra := "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n" +
		"581588,22138,BAKING SET 9 PIECE RETROSPOT,1,2011-12-09 13:00:00,4.95,12680.0,France\n"
	if err := os.WriteFile(filepath.Join(dir, "data", "zz-extra.csv"), []byte(extra), 0o600); err != nil {
		b.Fatal(err)
	}
	rep, err := r.Run(context.Background(), pipelines.Options{Steps: pipelines.Steps{Extract: true, Transform: true}, Log: log})
	if err != nil {
		b.Fatal(err)
	}
	var hist, segs float64
	for _, m := range rep.Transform.Models {
		switch m.Model {
		case "segment_history":
			hist = float64(m.Duration.Milliseconds())
			var merged float64
			if _, err := fmt.Sscanf(m.Notes[strings.LastIndex(m.Notes, "merged "):], "merged %g rows", &merged); err != nil {
				b.Fatalf("segment_history was not built incrementally: %q", m.Notes)
			}
			b.ReportMetric(merged, "noop_merged_rows")
		case "customer_segments":
			segs = float64(m.Duration.Milliseconds())
		}
	}
	b.ReportMetric(hist, "noop_ms")
	b.ReportMetric(segs, "noop_segments_ms")
	b.ReportMetric(hist/max(segs, 1), "noop_ratio")
}

// BenchmarkCLVModels times the CLV models on the demo generator's data at
// 1M and 10M order lines (a tenth as many customers; run one size with
// -bench 'CLVModels/1M' -benchtime=1x): clv_params (five fits: BG/NBD,
// Pareto/NBD and Gamma-Gamma on everyone, and both purchase models again
// on four fifths for the holdout choice), customer_value and churn_risk,
// beside the whole build of the models they need (--select +churn_risk
// +customer_value +clv_model, what cdw backtest builds; share_of_transform).
// It then times each model's fit alone on the same customer_summary rows
// (bgnbd_fit_ms, pnbd_fit_ms, gg_fit_ms), the cost of one fit for comparison.
func BenchmarkCLVModels(b *testing.B) {
	for _, n := range []int{1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("%dM", n/1_000_000), func(b *testing.B) {
			r, files, log := extractedDemo(b, sample.Options{Customers: n / 10, Orders: n, Updates: 0.005})
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rep, err := r.Run(context.Background(), pipelines.Options{Steps: pipelines.Steps{Transform: true}, FullRefresh: i > 0,
					Select: "+churn_risk +customer_value +clv_model", Log: log})
				if err != nil {
					b.Fatal(err)
				}
				ms := map[string]float64{}
				var total float64
				for _, m := range rep.Transform.Models {
					d := float64(m.Duration.Milliseconds())
					ms[m.Model] = d
					total += d
				}
				b.ReportMetric(float64(files.OrderLines), "order_lines")
				for _, m := range []string{"clv_params", "customer_value", "churn_risk"} {
					b.ReportMetric(ms[m], m+"_ms")
				}
				b.ReportMetric((ms["clv_params"]+ms["customer_value"])/max(total, 1), "share_of_transform")
			}
			b.StopTimer()
			fitsAlone(b, filepath.Join(r.Cfg.Warehouse, "warehouse.duckdb"))
		})
	}
}

// fitsAlone times one BG/NBD, Pareto/NBD and Gamma-Gamma fit on the
// warehouse's customer_summary (the rows clv_params fits on).
func fitsAlone(b *testing.B, path string) {
	db, err := sql.Open("duckdb", path+"?access_mode=read_only")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT frequency, recency, t, coalesce(monetary, 0) FROM customer_summary`)
	if err != nil {
		b.Fatal(err)
	}
	var data []clv.Customer
	for rows.Next() {
		var c clv.Customer
		if err := rows.Scan(&c.Frequency, &c.Recency, &c.T, &c.Monetary); err != nil {
			b.Fatal(err)
		}
		data = append(data, c)
	}
	if err := rows.Close(); err != nil {
		b.Fatal(err)
	}
	for _, f := range []struct {
		name string
		fit  func() error
	}{
		{"bgnbd_fit_ms", func() error { _, err := clv.FitBGNBD(data, clv.FitOptions{}); return err }},
		{"pnbd_fit_ms", func() error { _, err := clv.FitParetoNBD(data, clv.FitOptions{}); return err }},
		{"gg_fit_ms", func() error { _, err := clv.FitGammaGamma(data, clv.FitOptions{}); return err }},
	} {
		start := time.Now()
		if err := f.fit(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Milliseconds()), f.name)
	}
}
