package pipelines_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
