package clv

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"math"
	"sync"
	"testing"

	"github.com/duckdb/duckdb-go/v2"
)

// Parameters are recovered from 200k customers simulated from the models
// (exact times), within 10% (the sampling error at this size is a few %).
func TestSyntheticParameterRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	sp := cdnowLike
	cs := simulate(42, 200_000, sp, false)
	bg, err := FitBGNBD(cs, FitOptions{})
	if err != nil || bg.Fallback != "" {
		t.Fatalf("BG fit: %v %q", err, bg.Fallback)
	}
	gg, err := FitGammaGamma(cs, FitOptions{})
	if err != nil || gg.Fallback != "" {
		t.Fatalf("GG fit: %v %q", err, gg.Fallback)
	}
	t.Logf("BG/NBD true r=%.3f α=%.3f a=%.3f b=%.3f; fitted %.3f %.3f %.3f %.3f", sp.r, sp.alpha, sp.a, sp.b, bg.R, bg.Alpha, bg.A, bg.B)
	t.Logf("Gamma-Gamma true p=%.3f q=%.3f γ=%.3f; fitted %.3f %.3f %.3f", sp.p, sp.q, sp.gamma, gg.P, gg.Q, gg.Gamma)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"r", bg.R, sp.r}, {"alpha", bg.Alpha, sp.alpha}, {"a", bg.A, sp.a}, {"b", bg.B, sp.b},
		{"p", gg.P, sp.p}, {"q", gg.Q, sp.q}, {"gamma", gg.Gamma, sp.gamma},
	} {
		if relErr(c.got, c.want) > 0.10 {
			t.Errorf("%s: fitted %.4f, true %.4f", c.name, c.got, c.want)
		}
	}
}

var (
	bench1MOnce sync.Once
	bench1M     []Customer
)

// benchData returns 1M customers simulated from the CDNOW-like parameters
// at day resolution (seed 2024), generated once per process.
func benchData() []Customer {
	bench1MOnce.Do(func() { bench1M = simulate(2024, 1_000_000, cdnowLike, true) })
	return bench1M
}

// reportRecovery attaches the fitted parameters and their largest relative
// error versus the generating parameters to the benchmark output.
func reportRecovery(b *testing.B, bg BGNBD) {
	sp := cdnowLike
	worst := 0.0
	for _, e := range []float64{relErr(bg.R, sp.r), relErr(bg.Alpha, sp.alpha), relErr(bg.A, sp.a), relErr(bg.B, sp.b)} {
		worst = math.Max(worst, e)
	}
	b.ReportMetric(bg.R, "r")
	b.ReportMetric(bg.Alpha, "alpha")
	b.ReportMetric(bg.A, "a")
	b.ReportMetric(bg.B, "b")
	b.ReportMetric(100*worst, "max_rel_err_%")
	b.ReportMetric(float64(bg.Tuples), "tuples")
}

// BenchmarkFitBGNBD1M fits BG/NBD to 1M simulated customers (including the
// tuple compression of the raw slice).
func BenchmarkFitBGNBD1M(b *testing.B) {
	data := benchData()
	b.ResetTimer()
	var bg BGNBD
	for b.Loop() {
		var err error
		if bg, err = FitBGNBD(data, FitOptions{}); err != nil || bg.Fallback != "" {
			b.Fatalf("fit: %v %q", err, bg.Fallback)
		}
	}
	reportRecovery(b, bg)
}

// BenchmarkFitParetoNBD1M fits Pareto/NBD to the same 1M customers.
func BenchmarkFitParetoNBD1M(b *testing.B) {
	data := benchData()
	b.ResetTimer()
	var pn ParetoNBD
	for b.Loop() {
		var err error
		if pn, err = FitParetoNBD(data, FitOptions{}); err != nil || pn.Fallback != "" {
			b.Fatalf("fit: %v %q", err, pn.Fallback)
		}
	}
	b.ReportMetric(float64(pn.FuncEvals), "evals")
	b.ReportMetric(float64(pn.Tuples), "tuples")
}

// BenchmarkFitGammaGamma1M fits Gamma-Gamma to the repeaters among 1M
// simulated customers.
func BenchmarkFitGammaGamma1M(b *testing.B) {
	data := benchData()
	b.ResetTimer()
	var gg GammaGamma
	for b.Loop() {
		var err error
		if gg, err = FitGammaGamma(data, FitOptions{}); err != nil || gg.Fallback != "" {
			b.Fatalf("fit: %v %q", err, gg.Fallback)
		}
	}
	b.ReportMetric(gg.P, "p")
	b.ReportMetric(gg.Q, "q")
	b.ReportMetric(gg.Gamma, "gamma")
	b.ReportMetric(float64(gg.Customers), "repeaters")
}

// BenchmarkFitFromQuery1M streams 1M rows from a DuckDB table and fits
// both models: the pipeline's path.
func BenchmarkFitFromQuery1M(b *testing.B) {
	data := benchData()
	conn := openDuckDB(b)
	ctx := context.Background()
	loadRFMTable(b, conn, data)
	b.ResetTimer()
	var fit Fit
	var err error
	for b.Loop() {
		if fit, err = FitFromQuery(ctx, conn, "SELECT frequency, recency, T, monetary FROM rfm", FitOptions{}); err != nil || fit.Fallback != "" {
			b.Fatalf("fit: %v %q", err, fit.Fallback)
		}
	}
	reportRecovery(b, fit.BG)
}

// loadRFMTable creates table rfm(frequency, recency, T, monetary) holding
// data, using DuckDB's appender.
func loadRFMTable(b *testing.B, conn *sql.Conn, data []Customer) {
	b.Helper()
	if _, err := conn.ExecContext(context.Background(), "CREATE TABLE rfm (frequency DOUBLE, recency DOUBLE, T DOUBLE, monetary DOUBLE)"); err != nil {
		b.Fatal(err)
	}
	err := conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "rfm")
		if err != nil {
			return err
		}
		for _, c := range data {
			if err := app.AppendRow(c.Frequency, c.Recency, c.T, c.Monetary); err != nil {
				return err
			}
		}
		return app.Close()
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkUDFCLV100k scores 100k customers in SQL with clv_value
// (12 months, weeks): the cost of the scoring step per 100k rows.
func BenchmarkUDFCLV100k(b *testing.B) {
	conn := openDuckDB(b)
	loadRFMTable(b, conn, benchData()[:100_000])
	q := `SELECT sum(clv_value(0.243, 4.414, 0.793, 2.426, 6.25, 3.74, 15.44,
		frequency, recency, T, monetary, 12, 0.01, 4.345)) FROM rfm`
	b.ResetTimer()
	for b.Loop() {
		if v, ok := queryFloat(b, conn, q); !ok || !finite(v) {
			b.Fatalf("sum = %v (valid %v)", v, ok)
		}
	}
}

// BenchmarkCLV12Months is the per-customer cost of a 12-month CLV (12
// conditional expectations) for a typical customer.
func BenchmarkCLV12Months(b *testing.B) {
	bg := BGNBD{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
	gg := GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44}
	for b.Loop() {
		CLV(bg, gg, 2, 30.43, 38.86, 22.35, 12, 0.01, 4.345)
	}
}

// BenchmarkCLV36MonthsNewCustomer hits the quadrature path (z > 0.95) for
// the later months.
func BenchmarkCLV36MonthsNewCustomer(b *testing.B) {
	bg := BGNBD{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
	gg := GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44}
	for b.Loop() {
		CLV(bg, gg, 0, 0, 1, 0, 36, 0.01, 4.345)
	}
}
