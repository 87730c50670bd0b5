package postgres

import (
	"slices"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/internal/pgtest"
)

// TestCompositeKey maps a shop whose order key is two columns (customer and
// day) onto order_id: the parts are joined with U+001F, read incrementally
// with the parts as the key, and a row with a missing part is rejected
// naming the key's parts.
func TestCompositeKey(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, `CREATE TABLE purchases (
		customer   text,
		day        date NOT NULL,
		cds        int,
		usd        numeric(8,2),
		updated_at timestamptz NOT NULL DEFAULT now() - interval '1 hour');
	INSERT INTO purchases (customer, day, cds, usd) VALUES
		('00001', '1997-01-01', 1, 11.77),
		('00002', '1997-01-01', 2, 29.33),
		('00002', '1997-01-12', 1, 12.00),
		(NULL,    '1997-01-13', 1, 5.00)`)
	src := openSource(t, "shop", sourceYAML(db, "", `    orders:
      table: purchases
      cursor: updated_at
      columns: {order_id: [customer, day], customer_id: customer, order_ts: day, quantity: cds, amount: usd}
`))
	dir := t.TempDir()
	res := extractOnce(t, dir, "shop", src, "orders", false)
	if res.Rows != 3 || res.Rejected != 1 {
		t.Fatalf("result %+v, want 3 rows and 1 reject", res)
	}
	d := rawDB(t, dir, "shop", "orders")
	got := queryStrings(t, d, "SELECT replace(order_id, chr(31), '|') || ' ' || customer_id || ' ' || strftime(order_ts, '%Y-%m-%d') FROM raw ORDER BY 1")
	want := []string{"00001|1997-01-01 00001 1997-01-01", "00002|1997-01-01 00002 1997-01-01", "00002|1997-01-12 00002 1997-01-12"}
	if !slices.Equal(got, want) {
		t.Fatalf("rows\n got %q\nwant %q", got, want)
	}
	if pos := statePosition(t, dir, "shop", "orders"); !slices.Equal(pos.By, []string{"updated_at", "customer", "day"}) {
		t.Fatalf("read ordered by %q, want the cursor then the key's parts", pos.By)
	}
	st := readState(t, dir, "shop", "orders")
	reasons := queryStrings(t, d, "SELECT reason FROM read_parquet(?)", dir+"/"+st.Quarantine[0].Path)
	if len(reasons) != 1 || !strings.Contains(reasons[0], "order_id: a part of the key (customer, day) is NULL") {
		t.Fatalf("quarantine reasons %q", reasons)
	}

	for yml, wantErr := range map[string]string{
		"{order_id: [customer, customer], order_ts: day}":           `source column "customer" listed twice`,
		"{order_id: [customer], order_ts: day}":                     "at least two source columns",
		"{order_id: customer, order_ts: day, quantity: [cds, usd]}": "only text columns",
	} {
		_, err := openSourceErr("shop", sourceYAML(db, "", "    orders:\n      table: purchases\n      columns: "+yml+"\n"))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: %v, want %q", yml, err, wantErr)
		}
	}
}

// TestRawTable lands a table of no canonical entity (marketplace reviews)
// with its own columns and types, readable for a SQL model to map.
func TestRawTable(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, `CREATE TABLE reviews (review_id text, order_id text, review_score int, review_answer_timestamp timestamptz);
	INSERT INTO reviews VALUES ('r1', 'o1', 4, '2017-10-12 03:43:48+00'), ('r2', 'o2', 5, NULL), ('r2', 'o3', 5, NULL)`)
	src := openSource(t, "shop", sourceYAML(db, "", "    reviews: {table: reviews}\n"))
	dir := t.TempDir()
	if res := extractOnce(t, dir, "shop", src, "reviews", false); res.Rows != 3 {
		t.Fatalf("result %+v, want 3 rows", res)
	}
	d := rawDB(t, dir, "shop", "reviews")
	cols := queryStrings(t, d, "SELECT column_name || ' ' || column_type FROM (DESCRIBE raw)")
	want := []string{"review_id VARCHAR", "order_id VARCHAR", "review_score BIGINT", "review_answer_timestamp TIMESTAMP WITH TIME ZONE"}
	if !slices.Equal(cols, want) {
		t.Fatalf("raw columns\n got %q\nwant %q", cols, want)
	}
}
