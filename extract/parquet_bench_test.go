package extract_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/cdwhq/cdw/extract"
	_ "github.com/cdwhq/cdw/extract/files"
	"github.com/cdwhq/cdw/extract/sample"
	"github.com/cdwhq/cdw/internal/config"
)

// benchRecords reads generated order lines through the files source once, so
// the writer benchmarks below time the Parquet writer alone.
func benchRecords(b *testing.B, lines int) (*arrow.Schema, []arrow.RecordBatch) {
	b.Helper()
	dir := b.TempDir()
	f, err := sample.Write(dir, sample.Options{Customers: max(lines/10, 100), Orders: lines, Updates: 0.005})
	if err != nil {
		b.Fatal(err)
	}
	yml := fmt.Sprintf(`entities:
  orders:
    path: %s
    columns: {order_id: order_no, line_no: line, customer_id: customer, order_ts: ordered_at, status: status,
              product_id: sku, product_name: product, category: category, quantity: qty, unit_price: unit_price,
              cost: cost, business_unit: business_unit, channel: channel, updated_at: updated_at}
`, f.Orders)
	n, err := config.Parse("cdw.yaml", []byte(yml))
	if err != nil {
		b.Fatal(err)
	}
	k, err := extract.LookupKind("files")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	src, err := k.Open(ctx, extract.SourceConfig{Name: "shop", Options: n, BaseDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	ent, _ := extract.LookupEntity("orders")
	rd, err := src.Read(ctx, extract.ReadRequest{Entity: ent, BatchRows: 64 * 1024})
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	var recs []arrow.RecordBatch
	for {
		ch, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if ch.Rows != nil && ch.Rows.NumRows() > 0 {
			recs = append(recs, ch.Rows)
		}
	}
	b.Cleanup(func() {
		for _, r := range recs {
			r.Release()
		}
	})
	return rd.Schema(), recs
}

// BenchmarkParquetWriteOrders writes ~500k generated order lines (as the files
// source delivers them) to one raw Parquet file and reports its size.
func BenchmarkParquetWriteOrders(b *testing.B) {
	schema, recs := benchRecords(b, 500_000)
	var rows int64
	for _, r := range recs {
		rows += r.NumRows()
	}
	dir := b.TempDir()
	b.ResetTimer()
	cpu0 := processCPU()
	var size int64
	for i := 0; i < b.N; i++ {
		path := filepath.Join(dir, fmt.Sprintf("%d.parquet", i))
		pf, err := extract.CreateParquet(path, schema)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range recs {
			if err := pf.Write(r); err != nil {
				b.Fatal(err)
			}
		}
		if err := pf.Finish(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		size = fi.Size()
		os.Remove(path)
		b.StartTimer()
	}
	cpu := processCPU() - cpu0
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*rows), "ns/row")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(int64(b.N)*rows), "cpu-ns/row")
	b.ReportMetric(float64(size)/float64(rows), "bytes/row")
}

// processCPU is the user and system time of this process so far: on a shared
// machine it says more than the wall clock.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
