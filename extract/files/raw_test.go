package files_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract"
)

// TestRawTablesMarketplace lands a marketplace export in four files (order
// headers, order items, customers, reviews) as raw tables: every column under
// its own name with an inferred type, exactly once.
func TestRawTablesMarketplace(t *testing.T) {
	wh := t.TempDir()
	src := openSource(t, "testdata/marketplace", `
entities:
  order_headers: {path: orders.csv}
  order_items: {path: order_items.csv}
  customers: {path: customers.csv}
  reviews: {path: reviews.csv}
`)
	x := &extract.Extractor{Dir: wh}
	want := map[string]int64{"order_headers": 3, "order_items": 4, "customers": 3, "reviews": 3}
	for name, n := range want {
		res, err := x.Extract(context.Background(), "shop", src, name, false)
		if err != nil {
			t.Fatal(err)
		}
		if res.Rows != n || res.Rejected != 0 {
			t.Fatalf("%s: rows=%d rejected=%d, want %d and 0", name, res.Rows, res.Rejected, n)
		}
	}
	for name, types := range map[string][]string{
		"order_items": {"order_id VARCHAR", "order_item_id BIGINT", "product_id VARCHAR", "seller_id VARCHAR",
			"shipping_limit_date TIMESTAMP WITH TIME ZONE", "price DECIMAL(18,4)", "freight_value DECIMAL(18,4)"},
		"customers": {"customer_id VARCHAR", "customer_unique_id VARCHAR", "customer_zip_code_prefix VARCHAR", "customer_city VARCHAR", "customer_state VARCHAR"},
		"reviews": {"review_id VARCHAR", "order_id VARCHAR", "review_score BIGINT", "review_comment_title VARCHAR",
			"review_comment_message VARCHAR", "review_creation_date TIMESTAMP WITH TIME ZONE", "review_answer_timestamp TIMESTAMP WITH TIME ZONE"},
	} {
		var got string
		if err := rawQuery(t, wh, "shop", name, "SELECT string_agg(column_name || ' ' || column_type, ';') FROM (DESCRIBE SELECT * FROM RAW)").Scan(&got); err != nil {
			t.Fatal(err)
		}
		cols := strings.Split(got, ";")
		if !slices.Equal(cols[:len(types)], types) {
			t.Errorf("%s columns\n got %q\nwant %q", name, cols, types)
		}
	}
	// The zip prefix keeps its leading zero; the order without delivery date has NULL.
	var zip string
	var undelivered int
	if err := rawQuery(t, wh, "shop", "customers", "SELECT min(customer_zip_code_prefix) FROM RAW").Scan(&zip); err != nil || zip != "03149" {
		t.Fatalf("zip = %q (%v)", zip, err)
	}
	if err := rawQuery(t, wh, "shop", "order_headers", "SELECT count(*) FILTER (WHERE order_delivered_customer_date IS NULL) FROM RAW").Scan(&undelivered); err != nil || undelivered != 1 {
		t.Fatalf("undelivered = %d (%v)", undelivered, err)
	}
	// Exactly once: a rerun loads nothing.
	for name := range want {
		res, err := x.Extract(context.Background(), "shop", src, name, false)
		if err != nil || res.Rows != 0 {
			t.Fatalf("rerun %s: %+v %v", name, res, err)
		}
	}
	// A raw table takes no mapping.
	if err := openErr(t, "testdata/marketplace", "entities:\n  reviews: {path: reviews.csv, columns: {a: b}}\n"); err == nil || !strings.Contains(err.Error(), "reviews is a raw table") {
		t.Fatalf("raw table with columns: %v", err)
	}
}

// TestNewColumnsPolicy: a column nothing maps is kept in raw under its own
// name by default (and logged), left out with ignore, an error with fail.
func TestNewColumnsPolicy(t *testing.T) {
	const yml = `
entities:
  orders:
    path: order_items.csv
    columns: {order_id: order_id, line_no: order_item_id, order_ts: shipping_limit_date, unit_price: price}
`
	wh := t.TempDir()
	x := &extract.Extractor{Dir: wh}
	if _, err := x.Extract(context.Background(), "keep", openSource(t, "testdata/marketplace", yml), "orders", false); err != nil {
		t.Fatal(err)
	}
	// product_id is a canonical column nothing maps: the file's lands beside it.
	var got string
	if err := rawQuery(t, wh, "keep", "orders", "SELECT min(seller_id) || ' ' || min(freight_value) || ' ' || min(product_id_2) || ' ' || count(product_id) FROM RAW").Scan(&got); err != nil ||
		got != "289cdb325fb7e7f891c38608bf9e0962 19.22 595fac2a385ac33a80bd5114aec74eb8 0" {
		t.Fatalf("kept columns: %q %v", got, err)
	}
	if _, err := x.Extract(context.Background(), "ign", openSource(t, "testdata/marketplace", yml+"    on_new_columns: ignore\n"), "orders", false); err != nil {
		t.Fatal(err)
	}
	if err := rawQuery(t, wh, "ign", "orders", "SELECT string_agg(column_name, ',') FROM (DESCRIBE SELECT * FROM RAW) WHERE column_name IN ('seller_id', 'freight_value', 'product_id_2')").Scan(&got); err == nil && got != "" {
		t.Fatalf("ignore kept %q", got)
	}
	_, err := x.Extract(context.Background(), "fail", openSource(t, "testdata/marketplace", yml+"    on_new_columns: fail\n"), "orders", false)
	if err == nil || !strings.Contains(err.Error(), `order_items.csv: column(s) "product_id", "seller_id", "freight_value" are neither mapped nor in extra`) {
		t.Fatalf("fail: %v", err)
	}
}
