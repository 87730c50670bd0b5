package pipelines_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cdwhq/cdw/extract"
	_ "github.com/cdwhq/cdw/extract/httpapi"
	_ "github.com/cdwhq/cdw/extract/postgres"
	"github.com/cdwhq/cdw/internal/pgtest"
)

// bigAmount has 18 significant digits: binary floating point holds it as
// 12345678901234.564453125, which rounds to …4.56, not …4.57.
const bigAmount = "12345678901234.5651"

// Issue 17 item 1: money is exact from every source kind to the marts.
// Each source has a customer with 1,000 lines of 0.1 and 1,000 of 0.7 (in
// float64 they do not add up to 800) and one with bigAmount, which float64
// cannot hold; the marts must show 800.00 and …4.57, and raw must carry
// DECIMAL(18,4), not DOUBLE.
func TestMoneyExactFromEverySource(t *testing.T) {
	var f float64
	for range 1000 {
		f += 0.1
	}
	for range 1000 {
		f += 0.7
	}
	if f == 800 {
		t.Fatal("the float64 sum is exact: the test would prove nothing")
	}

	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("id,customer,ts,amount\n")
	var jsonRows []string
	for i := range 2000 {
		a := "0.1"
		if i >= 1000 {
			a = "0.7"
		}
		fmt.Fprintf(&csv, "F%d,F,2024-05-01 10:00:00,%s\n", i, a)
		jsonRows = append(jsonRows, fmt.Sprintf(`{"id":"H%d","customer":"H","ts":"2024-05-01T10:00:00Z","qty":1,"price":%s}`, i, a))
	}
	fmt.Fprintf(&csv, "FB,FB,2024-05-02 10:00:00,%s\n", bigAmount)
	jsonRows = append(jsonRows, fmt.Sprintf(`{"id":"HB","customer":"HB","ts":"2024-05-02T10:00:00Z","qty":1,"price":%s}`, bigAmount))
	if err := os.WriteFile(filepath.Join(dir, "orders.csv"), []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"data":[%s]}`, strings.Join(jsonRows, ","))
	}))
	defer api.Close()

	db := pgtest.NewDB(t)
	db.Exec(t, `CREATE TABLE order_lines (id text PRIMARY KEY, customer text, ordered_at timestamptz NOT NULL, amount numeric(18,4));
		INSERT INTO order_lines SELECT 'P' || g, 'P', timestamptz '2024-05-01 10:00:00+00', CASE WHEN g <= 1000 THEN 0.1 ELSE 0.7 END
		FROM generate_series(1, 2000) g;
		INSERT INTO order_lines VALUES ('PB', 'PB', timestamptz '2024-05-02 10:00:00+00', `+bigAmount+`);`)
	pc, err := pgx.ParseConfig(db.DSN)
	if err != nil {
		t.Fatal(err)
	}

	_, wh := runFilesIn(t, dir, fmt.Sprintf(`sources:
  - name: shop
    kind: files
    entities:
      orders:
        path: orders.csv
        columns: {order_id: id, customer_id: customer, order_ts: ts, amount: amount}
  - name: api
    kind: httpapi
    base_url: %s
    entities:
      orders:
        path: /orders
        records: data
        pagination: {type: none}
        fields: {order_id: id, customer_id: customer, order_ts: ts, quantity: qty, unit_price: price}
  - name: erp
    kind: postgres
    host: %s
    port: %d
    database: %s
    user: %s
    sslmode: disable
    entities:
      orders:
        table: public.order_lines
        key: [id]
        columns: {order_id: id, customer_id: customer, order_ts: ordered_at, amount: amount}
`, api.URL, pc.Host, pc.Port, pc.Database, pc.User), nil)

	got := rows(t, wh, `SELECT customer_id, monetary::VARCHAR FROM customer_segments`)
	want := map[string][]string{}
	for _, c := range []string{"F", "H", "P"} {
		want[c] = []string{"800.00"}
		want[c+"B"] = []string{"12345678901234.57"}
	}
	expectRows(t, "customer_segments monetary", got, want)
	if n := scalar[string](t, wh, `SELECT string_agg(DISTINCT net_amount::VARCHAR, ',') FROM stg_orders WHERE customer_id LIKE '_B'`); n != bigAmount {
		t.Errorf("stg_orders net_amount of the large lines: %s, want %s from every source", n, bigAmount)
	}
	// raw as staging reads it: DECIMAL(18,4) for every money column of every source.
	for _, view := range []string{"orders", "shop_orders", "api_orders", "erp_orders"} {
		types := scalar[string](t, wh, `SELECT string_agg(column_name || ' ' || column_type, '; ' ORDER BY column_name)
			FROM (DESCRIBE SELECT quantity, unit_price, amount, cost FROM raw.`+view+`)`)
		if want := "amount DECIMAL(18,4); cost DECIMAL(18,4); quantity DECIMAL(18,4); unit_price DECIMAL(18,4)"; types != want {
			t.Errorf("raw.%s: %s, want %s", view, types, want)
		}
	}
}

// rows returns a query's rows keyed by the first column.
func rows(t *testing.T, db *sql.DB, q string) map[string][]string {
	t.Helper()
	r, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer r.Close()
	cols, _ := r.Columns()
	out := map[string][]string{}
	for r.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var row []string
		for _, v := range vals[1:] {
			if v.Valid {
				row = append(row, v.String)
			} else {
				row = append(row, "NULL")
			}
		}
		out[vals[0].String] = row
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func expectRows(t *testing.T, what string, got, want map[string][]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || strings.Join(g, "|") != strings.Join(w, "|") {
			t.Errorf("%s[%s] = %q, want %q", what, k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s has %d rows, want %d: %v", what, len(got), len(want), got)
	}
}

func scalar[T any](t *testing.T, db *sql.DB, q string, args ...any) T {
	t.Helper()
	var v T
	if err := db.QueryRow(q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// A warehouse built by the version that wrote money as DOUBLE keeps working
// without --full-refresh: its raw files are cast on read, beside the new
// DECIMAL files, and incremental runs go on.
func TestRawFilesWrittenAsDoubleStillRead(t *testing.T) {
	dir := t.TempDir()
	cfg := `sources:
  - name: shop
    kind: files
    entities:
      orders:
        path: "orders*.csv"
        columns: {order_id: id, customer_id: customer, order_ts: ts, quantity: qty, unit_price: price}
`
	lines := func(prefix string, n int) string {
		var b strings.Builder
		b.WriteString("id,customer,ts,qty,price\n")
		for i := range n {
			fmt.Fprintf(&b, "%s%d,C%d,2024-05-0%d 10:00:00,3,0.7\n", prefix, i, i%5, 1+i%3)
		}
		return b.String()
	}
	_, db := runFilesIn(t, dir, cfg, map[string]string{"orders1.csv": lines("A", 300)})
	db.Close()

	// What the earlier version left: money columns DOUBLE, no format in state.
	wh := filepath.Join(dir, "wh")
	store := extract.StateStore{Dir: wh}
	st, err := store.Load("shop", "orders")
	if err != nil || len(st.Files) != 1 || st.Files[0].Format != extract.RawFormat {
		t.Fatalf("state after the first run: %+v (%v)", st, err)
	}
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	path := filepath.Join(wh, filepath.FromSlash(st.Files[0].Path))
	if _, err := duck.Exec(fmt.Sprintf(`COPY (SELECT * REPLACE (quantity::DOUBLE AS quantity, unit_price::DOUBLE AS unit_price,
		amount::DOUBLE AS amount, cost::DOUBLE AS cost) FROM read_parquet('%[1]s')) TO '%[1]s.old' (FORMAT parquet)`, path)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".old", path); err != nil {
		t.Fatal(err)
	}
	if typ := scalar[string](t, duck, fmt.Sprintf(`SELECT column_type FROM (DESCRIBE SELECT unit_price FROM read_parquet('%s'))`, path)); typ != "DOUBLE" {
		t.Fatalf("old file's unit_price is %s", typ)
	}
	st.Files[0].Format = 0
	if err := store.Commit(st); err != nil {
		t.Fatal(err)
	}

	for i, file := range []string{"orders2.csv", "orders3.csv"} {
		text := lines(fmt.Sprintf("B%d-", i), 200)
		if i == 0 {
			// read beside a DOUBLE file, a new file's money must not go
			// through DOUBLE on the way
			text += "BIG,BIG,2024-05-02 10:00:00,1," + bigAmount + "\n"
		}
		rep, db := runFilesIn(t, dir, cfg, map[string]string{file: text})
		n := 300 + 200*(i+1)
		var gotN int
		var total, typ string
		if err := db.QueryRow(`SELECT count(*), sum(net_amount)::VARCHAR, (SELECT column_type FROM (DESCRIBE SELECT unit_price FROM raw.orders))
			FROM stg_orders WHERE customer_id <> 'BIG'`).Scan(&gotN, &total, &typ); err != nil {
			t.Fatal(err)
		}
		if big := scalar[string](t, db, `SELECT string_agg(net_amount::VARCHAR, ',') FROM stg_orders WHERE customer_id = 'BIG'`); big != bigAmount {
			t.Errorf("run %d: the large line is %s, want %s", i+2, big, bigAmount)
		}
		if want := fmt.Sprintf("%.4f", float64(n)*2.1); gotN != n || total != want || typ != "DECIMAL(18,4)" {
			t.Errorf("run %d: stg_orders %d lines, net %s, raw unit_price %s; want %d, %s, DECIMAL(18,4)", i+2, gotN, total, typ, n, want)
		}
		if i == 1 {
			for _, m := range rep.Transform.Models {
				if m.Model == "stg_orders" && !strings.Contains(m.Notes, "incremental: 1 new raw file(s)") {
					t.Errorf("third run: stg_orders %q, want an incremental build beside the old file", m.Notes)
				}
			}
		}
		db.Close()
	}
}
