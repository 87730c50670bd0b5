package postgres

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/durable"
	"github.com/cdwhq/cdw/internal/pgtest"
)

// benchOrdersDDL is a realistic order table; the index serves the
// incremental read's ORDER BY updated_at, id.
const benchOrdersDDL = `
CREATE TABLE bench_orders (
	id          bigint PRIMARY KEY,
	order_no    text NOT NULL,
	customer_id text,
	ordered_at  timestamptz NOT NULL,
	qty         int,
	price       numeric(12,2),
	amount      numeric(14,2),
	status      text,
	updated_at  timestamptz NOT NULL
);`

const benchOrdersFill = `
INSERT INTO bench_orders
SELECT g, 'SO-' || lpad(g::text, 9, '0'), 'C' || (g * 7919 % 50000),
       timestamptz '2021-01-01 00:00:00+00' + g * interval '61 seconds',
       1 + g % 9, round((1 + (g * 37 % 10000) / 100.0)::numeric, 2),
       round(((1 + g % 9) * (1 + (g * 37 % 10000) / 100.0))::numeric, 2),
       (ARRAY['completed', 'completed', 'completed', 'cancelled', 'returned'])[1 + g % 5],
       timestamptz '2024-01-01 00:00:00+00' + g * interval '17 milliseconds'
FROM generate_series(1, $1::bigint) g;
CREATE INDEX ON bench_orders (updated_at, id);
VACUUM (ANALYZE, FREEZE) bench_orders;`

// benchCopySQL is the same rows, columns and order our incremental first load
// reads, for psql's CSV copy.
const benchCopySQL = `SELECT id, order_no, customer_id, ordered_at, qty, price, amount, status, updated_at
FROM bench_orders WHERE updated_at IS NOT NULL AND updated_at <= now() ORDER BY updated_at, id`

// BenchmarkExtractOrders extracts a generated table of ≥1M order lines (set
// CDW_BENCH_ROWS for more) into raw Parquet through the real runner, and in
// the same run times psql's "\copy (SELECT …) TO STDOUT CSV" of the same rows
// into /dev/null. It reports both rates and ours/psql.
func BenchmarkExtractOrders(b *testing.B) {
	db, src, rows := benchOrdersSource(b)
	var ours, theirs, oursCPU, theirsCPU time.Duration
	peak := watchHeap(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		start, cpu := time.Now(), processCPU()
		res, err := (&extract.Extractor{Dir: dir}).Extract(context.Background(), "erp", src, "orders", false)
		ours += time.Since(start)
		oursCPU += processCPU() - cpu
		if err != nil {
			b.Fatal(err)
		}
		if res.Rows != rows {
			b.Fatalf("extracted %d rows, want %d", res.Rows, rows)
		}

		b.StopTimer()
		d, c := psqlCopyCPU(b, db)
		theirs += d
		theirsCPU += c
		os.RemoveAll(dir)
		b.StartTimer()
	}
	n := float64(rows) * float64(b.N)
	b.ReportMetric(n/ours.Seconds(), "rows/s")
	b.ReportMetric(n/theirs.Seconds(), "psql_csv_rows/s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "speed_vs_psql")
	// CPU seconds per million rows in the client (ours: this process; psql:
	// its process), which load from other processes disturbs less than wall time.
	b.ReportMetric(oursCPU.Seconds()/n*1e6, "cpu_s/Mrows")
	b.ReportMetric(theirsCPU.Seconds()/n*1e6, "psql_cpu_s/Mrows")
	b.ReportMetric(float64(peak())/1e6, "peak_heap_MB")
}

// watchHeap samples the live heap every 10ms until the benchmark ends and
// returns a function reporting the peak: with streaming it stays flat however
// many rows the table has (compare CDW_BENCH_ROWS=1000000 and 3000000).
func watchHeap(b *testing.B) func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	b.Cleanup(func() { close(done); <-stopped })
	return peak.Load
}

// psqlCopy times psql's "\copy (benchCopySQL) TO STDOUT CSV" into /dev/null.
func psqlCopy(b *testing.B, db *pgtest.DB) time.Duration {
	d, _ := psqlCopyCPU(b, db)
	return d
}

// psqlCopyCPU also returns the CPU time of the psql process.
func psqlCopyCPU(b *testing.B, db *pgtest.DB) (time.Duration, time.Duration) {
	cp := db.Psql(b, "-c", `\copy (`+benchCopySQL+`) TO STDOUT CSV`)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	cp.Stdout = devnull
	start := time.Now()
	if err := cp.Run(); err != nil {
		b.Fatalf("psql copy: %v", err)
	}
	return time.Since(start), cp.ProcessState.UserTime() + cp.ProcessState.SystemTime()
}

// processCPU is the user and system CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchOrdersSource fills bench_orders (CDW_BENCH_ROWS rows, default 1M) and
// opens a source on it.
func benchOrdersSource(b *testing.B) (*pgtest.DB, extract.Source, int64) {
	rows := int64(1_000_000)
	if s := os.Getenv("CDW_BENCH_ROWS"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			b.Fatalf("CDW_BENCH_ROWS=%q", s)
		}
		rows = n
	}
	db := pgtest.NewDB(b)
	db.Exec(b, benchOrdersDDL)
	fill := db.Psql(b, "-v", "n="+strconv.FormatInt(rows, 10))
	// Run as a psql script: psql's :n stands in for the row count.
	fill.Stdin = strings.NewReader(strings.ReplaceAll(benchOrdersFill, "$1", ":n"))
	if out, err := fill.CombinedOutput(); err != nil {
		b.Fatalf("filling bench_orders: %v\n%s", err, out)
	}
	yaml := sourceYAML(db, "safety_lag: 0s\n", `    orders:
      table: bench_orders
      cursor: updated_at
      key: [id]
      columns: {order_id: order_no, order_ts: ordered_at, quantity: qty, unit_price: price}
`)
	return db, openSource(b, "erp", yaml), rows
}

// BenchmarkReadOrders measures the source alone: rows from PostgreSQL into
// Arrow records, no Parquet.
func BenchmarkReadOrders(b *testing.B) {
	_, src, rows := benchOrdersSource(b)
	req := extract.ReadRequest{Entity: mustEntity(b, "orders"), BatchRows: 64 * 1024}
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		r, err := src.Read(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for {
			ch, err := r.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if ch.Rows != nil {
				n += ch.Rows.NumRows()
				ch.Rows.Release()
			}
		}
		r.Close()
		if n != rows {
			b.Fatalf("read %d rows", n)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric((processCPU()-cpu).Seconds()/float64(rows*int64(b.N))*1e6, "cpu_s/Mrows")
}

// BenchmarkParquetWriterSettings streams one read of bench_orders into a
// Parquet file the way the runner does (Next, write buffered, close, fsync):
// once through extract.CreateParquet, whatever its settings are, and once per
// alternative; psql's CSV copy of the same rows is timed in the same run. It
// is the evidence for the writer change recommended in README.md.
func BenchmarkParquetWriterSettings(b *testing.B) {
	db, src, rows := benchOrdersSource(b)
	zstd := parquet.WithCompression(compress.Codecs.Zstd)
	// What extract.CreateParquet sets, plus a smaller dictionary page: a
	// column of mostly distinct strings (order numbers) falls back to plain
	// encoding after 64 KiB instead of hashing 1 MiB of values per row group
	// first, while short lists (status, currency) keep their dictionary.
	stringDicts := func(schema *arrow.Schema) []parquet.WriterProperty {
		props := []parquet.WriterProperty{zstd, parquet.WithDictionaryDefault(true), parquet.WithDictionaryPageSizeLimit(64 << 10)}
		for _, f := range schema.Fields() {
			switch f.Type.ID() {
			case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.FLOAT32, arrow.FLOAT64, arrow.TIMESTAMP, arrow.DECIMAL128:
				props = append(props, parquet.WithDictionaryFor(f.Name, false))
			}
		}
		return props
	}
	noDict := func(*arrow.Schema) []parquet.WriterProperty {
		return []parquet.WriterProperty{zstd, parquet.WithDictionaryDefault(false)}
	}
	for _, tc := range []struct {
		name  string
		props func(*arrow.Schema) []parquet.WriterProperty // nil: extract.CreateParquet
	}{
		{"runner", nil},
		{"string_dict_pages_64KiB", stringDicts},
		{"no_dict", noDict},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var size int64
			var ours, theirs time.Duration
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				size = streamToParquet(b, src, filepath.Join(b.TempDir(), "orders.parquet"), tc.props)
				ours += time.Since(start)
				b.StopTimer()
				theirs += psqlCopy(b, db)
				b.StartTimer()
			}
			n := float64(rows) * float64(b.N)
			b.ReportMetric((processCPU()-cpu).Seconds()/n*1e6, "cpu_s/Mrows")
			b.ReportMetric(n/ours.Seconds(), "rows/s")
			b.ReportMetric(theirs.Seconds()/ours.Seconds(), "speed_vs_psql")
			b.ReportMetric(float64(size)/1e6, "MB")
		})
	}
}

// streamToParquet writes one read of erp.orders to path, with the runner's
// prefetch (reads one chunk ahead) and the given writer settings, or through
// extract.CreateParquet when props is nil. It returns the file size.
func streamToParquet(b *testing.B, src extract.Source, path string, props func(*arrow.Schema) []parquet.WriterProperty) int64 {
	r, err := src.Read(context.Background(), extract.ReadRequest{Entity: mustEntity(b, "orders"), BatchRows: 64 * 1024})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var write func(arrow.RecordBatch) error
	var finish func() error
	if props == nil {
		pf, err := extract.CreateParquet(path, r.Schema())
		if err != nil {
			b.Fatal(err)
		}
		write, finish = pf.Write, pf.Finish
	} else {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		all := append(props(r.Schema()), parquet.WithMaxRowGroupLength(extract.RowGroupRows), parquet.WithStats(true))
		w, err := pqarrow.NewFileWriter(r.Schema(), f, parquet.NewWriterProperties(all...), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			b.Fatal(err)
		}
		write = w.WriteBuffered
		finish = func() error {
			if err := w.Close(); err != nil { // closes f too
				return err
			}
			return durable.SyncFile(path)
		}
	}
	chunks := make(chan extract.Chunk, 1) // as the runner: read one chunk ahead
	errc := make(chan error, 1)
	go func() {
		defer close(chunks)
		for {
			ch, err := r.Next(context.Background())
			if err != nil {
				if err != io.EOF {
					errc <- err
				}
				return
			}
			chunks <- ch
		}
	}()
	for ch := range chunks {
		if ch.Rows != nil {
			err := write(ch.Rows)
			ch.Rows.Release()
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	select {
	case err := <-errc:
		b.Fatal(err)
	default:
	}
	if err := finish(); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return st.Size()
}
