package pipelines_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/pipelines"
)

// retailYAML is the README's Online Retail mapping (line_no unmapped) over
// one file, orders.csv, in dir.
func retailYAML(dir, extra string) string {
	return "warehouse: " + filepath.Join(dir, "wh") + `
sources:
  - name: retail
    kind: files
    entities:
      orders:
        path: orders.csv
        timezone: Europe/London
        timestamp_formats: ["1/2/2006 15:04"]   # the UCI file's US dates: 12/1/2010 alone could be either
        columns: {order_id: InvoiceNo, product_id: StockCode, product_name: Description,
                  quantity: Quantity, order_ts: InvoiceDate, unit_price: UnitPrice, customer_id: CustomerID}
` + extra
}

const retailHeader = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runCfg loads dir/cdw.yaml and runs the given steps on it.
func runCfg(t *testing.T, dir string, steps pipelines.Steps, sel string) (*pipelines.Report, error) {
	t.Helper()
	cfg, err := pipelines.LoadConfig(filepath.Join(dir, "cdw.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return (&pipelines.Runner{Cfg: cfg}).Run(context.Background(), pipelines.Options{
		Steps: steps, Select: sel, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func stgOrders(t *testing.T, dir string) (lines int, revenue float64) {
	t.Helper()
	db, err := sql.Open("duckdb", filepath.Join(dir, "wh", "warehouse.duckdb")+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow("SELECT count(*), coalesce(sum(net_amount), 0)::DOUBLE FROM stg_orders").Scan(&lines, &revenue); err != nil {
		t.Fatal(err)
	}
	return lines, revenue
}

// Issue 16.1: a re-exported file with a row inserted in the middle counted
// every later line twice, and rows removed from it stayed forever.
func TestReexportedFileReplacesItsRows(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "cdw.yaml"), retailYAML(dir, ""))
	f := filepath.Join(dir, "orders.csv")
	a := "536365,85123A,WHITE HANGING HEART,1,12/1/2010 8:26,10,17850,United Kingdom\n"
	b := "536365,71053,WHITE METAL LANTERN,1,12/1/2010 8:26,20,17850,United Kingdom\n"
	c := "536366,22633,HAND WARMER UNION JACK,1,12/1/2010 8:28,30,17850,United Kingdom\n"
	d := "536367,84879,ASSORTED COLOUR BIRD,2,12/1/2010 8:34,30,13047,United Kingdom\n"
	ins := "536366,22632,HAND WARMER RED POLKA,1,12/1/2010 8:28,10,17850,United Kingdom\n"
	steps := pipelines.Steps{Extract: true, Transform: true}
	for _, tc := range []struct {
		name    string
		body    string
		lines   int
		revenue float64
	}{
		{"first export", a + b + c + d, 4, 120},
		{"one row inserted in the middle", a + b + ins + c + d, 5, 130},
		{"two rows removed", a + ins + d, 3, 80},
		// An exact duplicate line is a line of its own (Online Retail has them).
		{"a line repeated", a + ins + d + d, 4, 140},
	} {
		writeFile(t, f, retailHeader+tc.body)
		if _, err := runCfg(t, dir, steps, "stg_orders"); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n, rev := stgOrders(t, dir); n != tc.lines || rev != tc.revenue {
			t.Errorf("%s: stg_orders has %d lines, revenue %v; want %d and %v", tc.name, n, rev, tc.lines, tc.revenue)
		}
	}
}

// twoSourcesYAML: source "broken" (listed first) reads orders from a .gz
// file, source "retail" from orders.csv.
func twoSourcesYAML(dir, extra string) string {
	return retailYAML(dir, `  - name: broken
    kind: files
    entities:
      orders:
        path: broken.csv.gz
        columns: {order_id: InvoiceNo, order_ts: InvoiceDate, quantity: Quantity, unit_price: UnitPrice}
`) + extra
}

// Issue 16.6: a truncated .gz in one source stopped every other source from
// being extracted.
func TestFailingSourceDoesNotStopTheOthers(t *testing.T) {
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, retailHeader)
	for i := range 2000 {
		fmt.Fprintf(zw, "%d,X%d,ITEM %d,1,12/1/2010 8:26,%d,17850,United Kingdom\n", 600000+i, i, i*7919, i)
	}
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "broken.csv.gz"), gz.Bytes()[:gz.Len()/2], 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "orders.csv"), retailHeader+
		"536365,85123A,WHITE HANGING HEART,1,12/1/2010 8:26,10,17850,United Kingdom\n")
	steps := pipelines.Steps{Extract: true, Transform: true}

	// Default (fail): the good source is extracted and committed, the run
	// fails naming the broken one, and nothing is built.
	writeFile(t, filepath.Join(dir, "cdw.yaml"), twoSourcesYAML(dir, ""))
	rep, err := runCfg(t, dir, steps, "stg_orders")
	if err == nil || !strings.Contains(err.Error(), "broken") || !strings.Contains(err.Error(), "broken.csv.gz") ||
		!strings.Contains(err.Error(), "on_source_error") {
		t.Fatalf("run error = %v, want one naming source broken, its file and on_source_error", err)
	}
	var rows int64
	for _, e := range rep.Extract {
		if e.Source == "retail" {
			rows += e.Rows
		}
	}
	if rows != 1 {
		t.Fatalf("retail extracted %d rows, want 1 (extracted despite the broken source)", rows)
	}
	if len(rep.Transform.Models) != 0 {
		t.Fatalf("models were built although a source failed: %v", rep.Transform.Models)
	}
	if _, err := os.Stat(filepath.Join(dir, "wh", "warehouse.duckdb")); err == nil {
		if n, _ := stgOrdersIfBuilt(t, dir); n >= 0 {
			t.Fatalf("stg_orders built with %d lines although a source failed", n)
		}
	}

	// on_source_error: continue builds without the broken source, says so
	// in the report and in history.
	writeFile(t, filepath.Join(dir, "cdw.yaml"), twoSourcesYAML(dir, "on_source_error: continue\n"))
	rep, err = runCfg(t, dir, steps, "stg_orders")
	if err != nil {
		t.Fatalf("run with on_source_error: continue: %v", err)
	}
	if names := rep.SourceErrors.Names(); len(names) != 1 || names[0] != "broken.orders" {
		t.Fatalf("source errors = %v, want [broken.orders]", names)
	}
	if n, rev := stgOrders(t, dir); n != 1 || rev != 10 {
		t.Fatalf("stg_orders: %d lines, revenue %v; want 1 and 10", n, rev)
	}
	cfg, _ := pipelines.LoadConfig(filepath.Join(dir, "cdw.yaml"))
	hist, err := pipelines.ReadHistory(cfg.Warehouse, 0)
	if err != nil || len(hist) != 2 || hist[1].Status != "error" || hist[0].Status != "partial" || !strings.Contains(hist[0].Error, "broken.csv.gz") {
		t.Fatalf("history = %+v (%v), want an error run, then (newest first) a partial one naming the file", hist, err)
	}
}

// stgOrdersIfBuilt is stgOrders, or -1 when the table does not exist.
func stgOrdersIfBuilt(t *testing.T, dir string) (int, error) {
	t.Helper()
	db, err := sql.Open("duckdb", filepath.Join(dir, "wh", "warehouse.duckdb")+"?access_mode=read_only")
	if err != nil {
		return -1, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM stg_orders").Scan(&n); err != nil {
		return -1, err
	}
	return n, nil
}

// runCfgLog is runCfg with the run's log written to buf.
func runCfgLog(t *testing.T, dir string, steps pipelines.Steps, sel string, buf *bytes.Buffer) (*pipelines.Report, error) {
	t.Helper()
	cfg, err := pipelines.LoadConfig(filepath.Join(dir, "cdw.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return (&pipelines.Runner{Cfg: cfg}).Run(context.Background(), pipelines.Options{
		Steps: steps, Select: sel, Log: slog.New(slog.NewTextHandler(buf, nil))})
}

// Issue 17.2: a run that quarantined every row exited 0 and published; one
// that quarantined some said so only in per-entity INFO lines.
func TestRejectBudgetStopsTheRunAndRejectsAreSummarised(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "cdw.yaml"), retailYAML(dir, ""))
	var body strings.Builder
	body.WriteString(retailHeader)
	for i := range 100 {
		price := "2"
		if i == 50 {
			price = "NaN"
		}
		fmt.Fprintf(&body, "%d,X%d,ITEM,1,12/1/2010 8:26,%s,17850,United Kingdom\n", 536365+i, i, price)
	}
	writeFile(t, filepath.Join(dir, "orders.csv"), body.String())
	steps := pipelines.Steps{Extract: true, Transform: true}
	var log bytes.Buffer
	if _, err := runCfgLog(t, dir, steps, "stg_orders", &log); err != nil {
		t.Fatalf("1 reject in 100 rows is within the default 1%%: %v", err)
	}
	if !strings.Contains(log.String(), "quarantined 1 row(s): retail.orders 1 of 100 — see cdw quarantine") {
		t.Errorf("no one-line quarantine summary in the log:\n%s", log.String())
	}
	if n, rev := stgOrders(t, dir); n != 99 || rev != 198 {
		t.Fatalf("stg_orders: %d lines, revenue %v; want 99 and 198", n, rev)
	}

	// A re-export whose timestamps no layout reads: detection stops the file
	// before any row is read (the reject budget itself: TestRejectBudget).
	writeFile(t, filepath.Join(dir, "orders.csv"), strings.ReplaceAll(body.String(), "12/1/2010 8:26", "2010.12.01 08:26"))
	rep, err := runCfg(t, dir, steps, "stg_orders")
	if err == nil || !strings.Contains(err.Error(), "none of the 100 sampled values") || !strings.Contains(err.Error(), "timestamp_formats") ||
		!strings.Contains(err.Error(), "orders.csv") {
		t.Fatalf("run error = %v, want one error naming the file and timestamp_formats", err)
	}
	if len(rep.Transform.Models) != 0 {
		t.Fatal("models built after an extract over its reject budget")
	}
	if n, rev := stgOrders(t, dir); n != 99 || rev != 198 {
		t.Fatalf("stg_orders after the failed run: %d lines, revenue %v; want the previous 99 and 198", n, rev)
	}
}
