package pipelines

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	_ "github.com/cdwhq/cdw/extract/files"
)

// TestRawTableViews lands the marketplace export (four files) as raw tables
// and reads them through raw.<source>_<name>: order items joined with their
// order headers, the route a user model takes to build orders.
func TestRawTableViews(t *testing.T) {
	dir := t.TempDir()
	data, err := filepath.Abs("../extract/files/testdata/marketplace")
	if err != nil {
		t.Fatal(err)
	}
	yml := `warehouse: wh
sources:
  - name: shop
    kind: files
    entities:
      order_headers: {path: ` + data + `/orders.csv}
      order_items: {path: ` + data + `/order_items.csv}
      customers: {path: ` + data + `/customers.csv}
      reviews: {path: ` + data + `/reviews.csv}
`
	if err := os.WriteFile(filepath.Join(dir, "cdw.yaml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(filepath.Join(dir, "cdw.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Cfg: cfg}
	if _, err := r.Extract(context.Background(), Options{}, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := createRawViews(context.Background(), db, cfg); err != nil {
		t.Fatal(err)
	}
	var lines int
	var revenue float64
	var customers int
	if err := db.QueryRow(`SELECT count(*), sum(i.price), count(DISTINCT c.customer_unique_id)
		FROM raw.shop_order_items i
		JOIN raw.shop_order_headers h USING (order_id)
		JOIN raw.shop_customers c ON c.customer_id = h.customer_id`).Scan(&lines, &revenue, &customers); err != nil {
		t.Fatal(err)
	}
	if lines != 4 || math.Abs(revenue-468.49) > 1e-9 || customers != 3 {
		t.Fatalf("lines=%d revenue=%v customers=%d", lines, revenue, customers)
	}
	// A review attached to two orders is two rows, one per order.
	var links int
	if err := db.QueryRow(`SELECT count(*) FROM raw.shop_reviews WHERE review_id = '80e641a11e56f04c1ad469d5645fdfde'`).Scan(&links); err != nil || links != 2 {
		t.Fatalf("review links = %d (%v)", links, err)
	}
}
