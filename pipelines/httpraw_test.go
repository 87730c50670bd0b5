package pipelines_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/pipelines"
)

// marketplaceAPI serves order headers (/orders) and order items (/items,
// two pages: the second adds a field and a price with a fraction).
func marketplaceAPI(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path + "?" + r.URL.Query().Get("page") {
		case "/orders?":
			fmt.Fprint(w, `{"data":[
			  {"id":"o1","buyer":"B1","placed":"2024-06-01T09:00:00Z","price":19.99,"discount":"2.50"},
			  {"id":"o2","buyer":"B2","placed":"2024-06-02T09:00:00+02:00","price":0.1,"discount":null}]}`)
		case "/items?1":
			fmt.Fprint(w, `{"data":[
			  {"order_id":"o1","Item No":1,"sku":"A-1","price":12,"dims":{"w":10,"h":2}},
			  {"order_id":"o1","Item No":2,"sku":"B-7","price":7,"dims":null}]}`)
		case "/items?2":
			fmt.Fprint(w, `{"data":[
			  {"order_id":"o2","Item No":1,"sku":"C-3","price":0.1,"gift":true,"shipped":"2024-06-03T10:00:00Z"}]}`)
		case "/items?3":
			fmt.Fprint(w, `{"data":[]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// marketplaceYAML is the README's HTTP example with base_url a format verb.
func marketplaceYAML(t *testing.T) string {
	t.Helper()
	for _, b := range readmeBlocks(t) {
		if filepath.Clean(b.file) == filepath.Join("..", "README.md") && strings.Contains(b.text, "kind: httpapi") && strings.Contains(b.text, "{sql:") {
			return strings.Replace(b.text, "https://marketplace.example.com/v1", "%s", 1)
		}
	}
	t.Fatal("README.md has no yaml block of an httpapi source with {sql: …}")
	return ""
}

// Issue 17 item 9 for the HTTP source, the README's example as written: a raw table of any name lands every
// field of the records (types inferred and widened across pages, objects
// as JSON text), and canonical fields take constants and expressions.
func TestHTTPRawTablesConstantsExpressions(t *testing.T) {
	srv := marketplaceAPI(t)
	_, db := runFiles(t, fmt.Sprintf(marketplaceYAML(t), srv.URL), nil)

	types := scalar[string](t, db, `SELECT string_agg(column_name || ' ' || column_type, '; ' ORDER BY column_name)
		FROM (DESCRIBE SELECT * EXCLUDE (_source, _file, dt) FROM raw.api_order_items)`)
	// price is whole on page 1 (BIGINT in its file) and has a fraction on
	// page 2 (DECIMAL(18,4)): DuckDB reads both files as DECIMAL(23,4), exact.
	if want := "dims VARCHAR; gift BOOLEAN; item_no BIGINT; order_id VARCHAR; price DECIMAL(23,4); shipped TIMESTAMP WITH TIME ZONE; sku VARCHAR"; types != want {
		t.Errorf("raw.api_order_items:\n got %s\nwant %s", types, want)
	}
	items := rows(t, db, `SELECT sku, price::VARCHAR, item_no, json_extract(dims, '$.w')::VARCHAR, gift FROM raw.api_order_items`)
	expectRows(t, "raw.api_order_items", items, map[string][]string{
		"A-1": {"12.0000", "1", "10", "NULL"},
		"B-7": {"7.0000", "2", "NULL", "NULL"},
		"C-3": {"0.1000", "1", "NULL", "true"},
	})
	orders := rows(t, db, `SELECT order_id, quantity::VARCHAR, channel, net_amount::VARCHAR FROM stg_orders`)
	expectRows(t, "stg_orders", orders, map[string][]string{
		"o1": {"1.0000", "online", "17.4900"},
		"o2": {"1.0000", "online", "0.1000"},
	})
}

// A mapping expression is one expression of the row: anything else is an
// error naming the source, entity and column, before any view is made.
func TestHTTPMappingExpressionRefused(t *testing.T) {
	srv := marketplaceAPI(t)
	for expr, want := range map[string]string{
		`1); DROP TABLE stg_orders; SELECT (1`:         "no expression of the row's columns",
		`(SELECT max(price) FROM raw.api_order_items)`: "a subquery reads other tables",
		`unit_price * no_such_column`:                  "no_such_column",
	} {
		dir := t.TempDir()
		yml := strings.Replace(fmt.Sprintf(marketplaceYAML(t), srv.URL), `"unit_price * quantity - coalesce(CAST(discount AS DECIMAL(18,4)), 0)"`, fmt.Sprintf("%q", expr), 1)
		cfgPath := filepath.Join(dir, "cdw.yaml")
		if err := os.WriteFile(cfgPath, []byte("warehouse: wh\n"+yml+publishYAML), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := pipelines.LoadConfig(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		_, err = (&pipelines.Runner{Cfg: cfg}).Run(context.Background(), pipelines.Options{
			Steps: pipelines.AllSteps, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "api_orders") && !strings.Contains(err.Error(), "column amount") {
			t.Errorf("expression %q: %v, want an error saying %q", expr, err, want)
		}
	}
}

// The same expression form for a files source: the unmapped column
// (kept in raw as text, on_new_columns: keep) feeds the computed amount.
func TestFilesMappingExpression(t *testing.T) {
	_, db := runFiles(t, `sources:
  - name: shop
    kind: files
    entities:
      orders:
        path: orders.csv
        columns:
          order_id: id
          order_ts: ts
          quantity: qty
          unit_price: price
          amount: {sql: "quantity * unit_price * (1 - CAST(rebate_pct AS DECIMAL(18,4)) / 100)"}
`, map[string]string{"orders.csv": "id,ts,qty,price,rebate_pct\n1,2024-06-01,3,0.70,10\n2,2024-06-02,1,19.99,0\n"})
	got := rows(t, db, `SELECT order_id, net_amount::VARCHAR FROM stg_orders`)
	expectRows(t, "stg_orders", got, map[string][]string{"1": {"1.8900"}, "2": {"19.9900"}})
}

// Issue 17: a source path matching no file exited 0 and published empty
// marts. Now the run fails, naming the path and allow_empty, and publishes
// nothing.
func TestSourceMatchingNoFileFailsTheRun(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "cdw.yaml")
	yml := "warehouse: wh\nsources:\n  - name: shop\n    kind: files\n    entities:\n      orders:\n        path: exports/orders_*.csv\n" +
		"        columns: {order_id: id, order_ts: ts}\n" + publishYAML
	if err := os.WriteFile(cfgPath, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipelines.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := (&pipelines.Runner{Cfg: cfg}).Run(context.Background(), pipelines.Options{
		Steps: pipelines.AllSteps, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "no file matches") || !strings.Contains(err.Error(), "allow_empty") {
		t.Fatalf("run: %v, want an error naming the path and allow_empty", err)
	}
	if rep != nil && len(rep.Published) > 0 {
		t.Errorf("published %v from a source with no file", rep.Published)
	}
	if _, err := os.Stat(filepath.Join(dir, "wh", "marts")); !os.IsNotExist(err) {
		t.Errorf("marts directory exists after the failed run (%v)", err)
	}
}
