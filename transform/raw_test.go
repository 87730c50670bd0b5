package transform

import (
	"context"
	"database/sql"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRawViewsFromNeutralValues builds the raw layer from plain values (as
// pipelines does from extract state): a canonical entity over two sources,
// one with a computed column, and a raw table; and measures freshness on it.
func TestRawViewsFromNeutralValues(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	shop, items := filepath.Join(dir, "shop.parquet"), filepath.Join(dir, "items.parquet")
	for _, q := range []string{
		`COPY (SELECT 1 AS order_id, 2.5::DOUBLE AS amount, 3 AS qty, TIMESTAMPTZ '2026-01-02 03:04:05+00' AS updated_at) TO '` + shop + `'`,
		`COPY (SELECT 7 AS item_id, 'x' AS sku) TO '` + items + `'`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	cols := []RawColumn{{Name: "order_id", Type: "BIGINT"}, {Name: "amount", Type: "DECIMAL(18,4)", Cast: true},
		{Name: "updated_at", Type: "TIMESTAMPTZ"}}
	l := RawLayer{
		Entities: []RawEntity{{Name: "orders", Columns: cols}},
		Sources: []RawSource{
			{Source: "shop", Entity: "orders", Columns: cols, Files: []RawFile{{Path: shop}},
				Exprs: []RawExpr{{Column: "amount", Type: "DECIMAL(18,4)", SQL: "amount * qty"}}},
			{Source: "crm", Entity: "orders", Columns: cols},
			{Source: "shop", Entity: "items", Files: []RawFile{{Path: items}}},
		},
	}
	want := []string{"raw.crm_orders", "raw.orders", "raw.shop_items", "raw.shop_orders"}
	if got := l.Relations(); !slices.Equal(got, want) {
		t.Fatalf("relations %v, want %v", got, want)
	}
	inputs, err := CreateRawViews(ctx, db, l)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(inputs)); !slices.Equal(got, want) {
		t.Fatalf("inputs %v, want %v", got, want)
	}
	if !slices.Equal(inputs["raw.orders"].Files, []string{shop}) || inputs["raw.orders"].Shape != l.Inputs()["raw.orders"].Shape {
		t.Fatalf("raw.orders reads %+v", inputs["raw.orders"])
	}
	var n int
	var amount, typ, src string
	if err := db.QueryRow(`SELECT count(*), any_value(amount)::VARCHAR, any_value(typeof(amount)), any_value(_source) FROM raw.orders`).Scan(&n, &amount, &typ, &src); err != nil {
		t.Fatal(err)
	}
	if n != 1 || amount != "7.5000" || typ != "DECIMAL(18,4)" || src != "shop" {
		t.Fatalf("raw.orders: %d rows, amount %s (%s), source %s", n, amount, typ, src)
	}
	var sku string
	if err := db.QueryRow(`SELECT sku FROM raw.shop_items WHERE item_id = 7`).Scan(&sku); err != nil || sku != "x" {
		t.Fatalf("raw.shop_items: %q (%v)", sku, err)
	}
	newest, err := NewestRow(ctx, db, "orders")
	if err != nil || !newest.Time.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("newest row %v (%v)", newest, err)
	}
	// A mapping expression must be one expression of the row.
	l.Sources[0].Exprs[0].SQL = "(SELECT max(order_id) FROM raw.orders)"
	if _, err := CreateRawViews(ctx, db, l); err == nil || !strings.Contains(err.Error(), "source shop entity orders column amount") {
		t.Fatalf("a subquery as mapping: %v", err)
	}
}
