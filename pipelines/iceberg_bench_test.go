package pipelines_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/cdwhq/cdw/internal/datasets"
	"github.com/cdwhq/cdw/pipelines"
)

// BenchmarkExtractIceberg extracts UCI Online Retail (541,909 lines, one
// file: one batch) into a fresh warehouse without and with the Iceberg raw
// tables (filesystem catalog), so the ratio of the two is the cost of
// Iceberg on real data. The middle case splits the raw files by event day
// (as Iceberg does) without committing them, so that cost shows apart from
// the commits'.
func BenchmarkExtractIceberg(b *testing.B) {
	for _, c := range []struct {
		name                   string
		eventDays, withIceberg bool
	}{{"parquet-only", false, false}, {"event-days-only", true, false}, {"with-iceberg", true, true}} {
		withIceberg := c.withIceberg
		b.Run(c.name, func(b *testing.B) {
			var rows int64
			for b.Loop() {
				b.StopTimer()
				r := onlineRetailRunner(b, b.TempDir(), withIceberg)
				r.EventDays = c.eventDays
				b.StartTimer()
				res, err := r.Extract(context.Background(), pipelines.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					b.Fatal(err)
				}
				rows = 0
				for _, e := range res {
					rows += e.Rows
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// onlineRetailRunner is a runner over UCI Online Retail's orders in a fresh
// warehouse under dir, with the filesystem Iceberg catalog on or off.
func onlineRetailRunner(tb testing.TB, dir string, withIceberg bool) *pipelines.Runner {
	tb.Helper()
	cfg := fmt.Sprintf(`warehouse: wh
sources:
  - name: retail
    kind: files
    entities:
      orders:
        path: %s
        timezone: Europe/London
        columns: {order_id: InvoiceNo, product_id: StockCode, product_name: Description,
                  quantity: Quantity, order_ts: InvoiceDate, unit_price: UnitPrice, customer_id: CustomerID}
        extra: {country: Country}
`, datasets.Path(tb, "online_retail/online_retail.csv.gz"))
	if withIceberg {
		cfg += "iceberg: {catalog: filesystem}\n"
	}
	p := filepath.Join(dir, "cdw.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	c, err := pipelines.LoadConfig(p)
	if err != nil {
		tb.Fatal(err)
	}
	return &pipelines.Runner{Cfg: c}
}
