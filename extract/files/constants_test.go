package files_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract"
)

// TestConstantColumns maps constants: a marketplace order-items export has
// one row per item and no quantity column (quantity: 1), and every row of a
// web shop's file is the online channel.
func TestConstantColumns(t *testing.T) {
	dir, wh := t.TempDir(), t.TempDir()
	write(t, filepath.Join(dir, "items.csv"), "order_id,order_item_id,price,shipping_limit_date\n"+
		"e481f51c,1,29.99,2017-10-06 11:07:15\ne481f51c,2,118.70,2017-10-06 11:07:15\n")
	src := openSource(t, dir, `
entities:
  orders:
    path: items.csv
    columns: {order_id: order_id, line_no: order_item_id, order_ts: shipping_limit_date, unit_price: price,
              quantity: 1, channel: {value: online}, deleted: false}
`)
	res, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "shop", src, "orders", false)
	if err != nil || res.Rows != 2 || res.Rejected != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	var got string
	if err := rawQuery(t, wh, "shop", "orders", "SELECT string_agg(concat_ws('|', line_no, quantity, unit_price, channel, deleted), ' ' ORDER BY line_no) FROM RAW").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "1|1.0000|29.9900|online|false 2|1.0000|118.7000|online|false"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	// A constant that is not of the column's type is one clear error per row.
	src = openSource(t, dir, "entities:\n  orders:\n    path: items.csv\n    max_rejected: 100%\n    columns: {order_id: order_id, order_ts: shipping_limit_date, quantity: {value: one}}\n")
	res, err = (&extract.Extractor{Dir: wh}).Extract(context.Background(), "bad", src, "orders", false)
	if err != nil || res.Rows != 0 || res.Rejected != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	if err := openErr(t, dir, "entities:\n  orders:\n    path: items.csv\n    columns: {order_id: order_id, order_ts: shipping_limit_date, line_no: 1}\n"); err == nil ||
		!strings.Contains(err.Error(), "line_no cannot be a constant") {
		t.Fatalf("constant line_no: %v", err)
	}
}
