package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/pgtest"
)

const ordersDDL = `
CREATE TABLE order_lines (
	id          bigserial PRIMARY KEY,
	order_no    text NOT NULL,
	line_no     int NOT NULL,
	customer_id text,
	ordered_at  timestamptz NOT NULL,
	qty         int,
	price       numeric(12,2),
	net_amount  numeric(14,2),
	status      text,
	updated_at  timestamptz NOT NULL
);
CREATE INDEX ON order_lines (updated_at, id);`

// ordersEntity maps order_lines onto the orders entity, incrementally.
const ordersEntity = `    orders:
      table: public.order_lines
      cursor: updated_at
      key: [id]
      columns: {order_id: order_no, order_ts: ordered_at, quantity: qty, unit_price: price, amount: net_amount}
`

// insertOrders adds n order lines changed at updatedAt (an SQL expression).
func insertOrders(t *testing.T, db *pgtest.DB, n int, updatedAt string) {
	t.Helper()
	db.Exec(t, fmt.Sprintf(`INSERT INTO order_lines (order_no, line_no, customer_id, ordered_at, qty, price, net_amount, status, updated_at)
		SELECT 'SO-' || g, 1 + g %% 3, 'C' || (g %% 7), timestamptz '2024-03-01 10:00:00+00' + g * interval '1 minute',
		       g, 9.99, 9.99 * g, 'completed', %s
		FROM generate_series(1, %d) g`, updatedAt, n))
}

func TestFullLoadMapsOntoEntity(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, 250, "now() - interval '1 hour'")
	src := openSource(t, "erp", sourceYAML(db, "", ordersEntity))
	dir := t.TempDir()

	res := extractOnce(t, dir, "erp", src, "orders", false)
	if res.Rows != 250 || res.Files != 1 || res.Rejected != 0 {
		t.Fatalf("result %+v, want 250 rows in 1 file", res)
	}
	d := rawDB(t, dir, "erp", "orders")
	// Canonical columns come first in entity order, then the source's own.
	cols := queryStrings(t, d, "SELECT column_name || ' ' || column_type FROM (DESCRIBE raw)")
	want := []string{
		"order_id VARCHAR", "line_no BIGINT", "customer_id VARCHAR", "order_ts TIMESTAMP WITH TIME ZONE",
		"status VARCHAR", "product_id VARCHAR", "product_name VARCHAR", "category VARCHAR",
		"quantity BIGINT", "unit_price DECIMAL(12,2)", "amount DECIMAL(14,2)", "cost DECIMAL(18,4)", "currency VARCHAR",
		"business_unit VARCHAR", "channel VARCHAR", "updated_at TIMESTAMP WITH TIME ZONE", "deleted BOOLEAN",
		"id BIGINT",
	}
	if !slices.Equal(cols, want) {
		t.Fatalf("raw columns\n got %q\nwant %q", cols, want)
	}
	got := queryStrings(t, d, `SELECT concat_ws('|', order_id, line_no, customer_id, strftime(order_ts, '%Y-%m-%d %H:%M:%S'), status,
		quantity, unit_price, amount, coalesce(product_id, 'null'), id) FROM raw WHERE id IN (1, 250) ORDER BY id`)
	wantRows := []string{
		"SO-1|2|C1|2024-03-01 10:01:00|completed|1|9.99|9.99|null|1",
		"SO-250|2|C5|2024-03-01 14:10:00|completed|250|9.99|2497.50|null|250",
	}
	if !slices.Equal(got, wantRows) {
		t.Fatalf("rows\n got %q\nwant %q", got, wantRows)
	}
	if n := queryInt(t, d, "SELECT count(DISTINCT id) FROM raw"); n != 250 {
		t.Fatalf("%d distinct ids", n)
	}
}

func TestFullModeReadsEverythingAndResumes(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, 1000, "now()")
	entity := `    orders:
      table: order_lines
      columns: {order_id: order_no, order_ts: ordered_at}
      key: [id]
`
	src := openSource(t, "erp", sourceYAML(db, "checkpoint_rows: 300\n", entity))
	dir := t.TempDir()

	res := extractOnce(t, dir, "erp", src, "orders", true)
	if res.Rows != 1000 || res.Files != 4 {
		t.Fatalf("result %+v, want 1000 rows in 4 files (a checkpoint every 300 rows)", res)
	}
	pos := statePosition(t, dir, "erp", "orders")
	if pos.Mode != modeFull || !pos.Done || len(pos.After) != 0 {
		t.Fatalf("position after a full read: %+v", pos)
	}
	// A full read has no cursor: the next one reads every row again, also
	// rows changed "in the past" (safety lag does not apply), and replaces
	// the raw files even when the caller did not ask for a full refresh
	// (the source is a Snapshotter), so raw never holds two copies.
	db.Exec(t, "UPDATE order_lines SET status = 'cancelled' WHERE id = 7")
	res = extractOnce(t, dir, "erp", src, "orders", false)
	if res.Rows != 1000 {
		t.Fatalf("second full read: %+v", res)
	}
	d := rawDB(t, dir, "erp", "orders")
	if n := queryInt(t, d, "SELECT count(*) FROM raw"); n != 1000 {
		t.Fatalf("refresh left %d rows in raw, want the 1000 of the last read", n)
	}
	if s := queryStrings(t, d, "SELECT status FROM raw WHERE id = 7"); !slices.Equal(s, []string{"cancelled"}) {
		t.Fatalf("status of 7: %q", s)
	}
}

func TestIncrementalAppendsOnlyChanges(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, 100, "now() - interval '2 hours' + g * interval '1 second'")
	src := openSource(t, "erp", sourceYAML(db, "safety_lag: 5s\n", ordersEntity))
	dir := t.TempDir()

	res := extractOnce(t, dir, "erp", src, "orders", false)
	if res.Rows != 100 || res.Files != 1 {
		t.Fatalf("first run %+v", res)
	}
	pos := statePosition(t, dir, "erp", "orders")
	if pos.Mode != modeIncremental || !slices.Equal(pos.By, []string{"updated_at", "id"}) || len(pos.After) != 2 || *pos.After[1] != "100" {
		t.Fatalf("position after first run: %+v", pos)
	}
	same := pgStrings(t, db, "SELECT (updated_at = '"+*pos.After[0]+"'::timestamptz)::text FROM order_lines WHERE id = 100")[0]
	if same != "true" {
		t.Fatalf("cursor %q is not the last row's updated_at", *pos.After[0])
	}

	db.Exec(t, "UPDATE order_lines SET status = 'returned', updated_at = now() - interval '1 minute' WHERE id IN (5, 50, 77)")
	insertOrders(t, db, 2, "now() - interval '30 seconds'")
	res = extractOnce(t, dir, "erp", src, "orders", false)
	if res.Rows != 5 || res.Files != 1 {
		t.Fatalf("second run %+v, want the 5 changed rows", res)
	}
	pos = statePosition(t, dir, "erp", "orders")
	if *pos.After[1] != "102" {
		t.Fatalf("cursor did not move to the last changed row: %+v", pos.After)
	}
	files := committedFiles(t, dir, "erp", "orders")
	if len(files) != 2 {
		t.Fatalf("%d committed files", len(files))
	}
	d := rawDB(t, dir, "erp", "orders")
	got := queryStrings(t, d, "SELECT id || ':' || status FROM read_parquet(?) ORDER BY id", files[1])
	if !slices.Equal(got, []string{"5:returned", "50:returned", "77:returned", "101:completed", "102:completed"}) {
		t.Fatalf("second batch holds %q", got)
	}
	if n := queryInt(t, d, "SELECT count(*) FROM raw"); n != 105 {
		t.Fatalf("raw holds %d rows, want 105", n)
	}

	before, _ := os.ReadFile(dir + "/state/extract/erp/orders.json")
	res = extractOnce(t, dir, "erp", src, "orders", false)
	if res.Rows != 0 || res.Files != 0 {
		t.Fatalf("third run with nothing changed: %+v", res)
	}
	after, _ := os.ReadFile(dir + "/state/extract/erp/orders.json")
	if !bytes.Equal(stripUpdatedAt(before), stripUpdatedAt(after)) {
		t.Fatalf("state changed by a read that found nothing:\n%s\n%s", before, after)
	}
}

// stripUpdatedAt drops the state's commit time, which says nothing about content.
func stripUpdatedAt(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.Contains(l, []byte(`"updated_at"`)) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// TestLateCommitInsideSafetyLag: a transaction stamps updated_at with its start
// time but commits after a younger row was read. Without a lag the cursor has
// already moved past it, and the snapshot horizon brings it in with the next
// read; with a lag neither row is read until the lag has passed.
func TestLateCommitInsideSafetyLag(t *testing.T) {
	for _, tc := range []struct {
		lag      string
		wantLate bool
	}{
		{"0s", true},
		{"2s", true},
	} {
		t.Run("lag="+tc.lag, func(t *testing.T) {
			db := pgtest.NewDB(t)
			db.Exec(t, ordersDDL)
			src := openSource(t, "erp", sourceYAML(db, "safety_lag: "+tc.lag+"\n", ordersEntity))
			dir := t.TempDir()
			ctx := context.Background()

			slow := db.Connect(t)
			if _, err := slow.Exec(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			// updated_at = now(): the slow transaction's start time.
			if _, err := slow.Exec(ctx, `INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at)
				VALUES ('LATE', 1, now(), now())`); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
			db.Exec(t, `INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at)
				VALUES ('FAST', 1, now(), clock_timestamp())`)

			first := extractOnce(t, dir, "erp", src, "orders", false)
			if _, err := slow.Exec(ctx, "COMMIT"); err != nil {
				t.Fatal(err)
			}
			if tc.lag == "0s" && first.Rows != 1 {
				t.Fatalf("without lag the first read should see only FAST, got %d rows", first.Rows)
			}
			if tc.lag == "2s" && first.Rows != 0 {
				t.Fatalf("rows younger than the lag were read: %d", first.Rows)
			}
			time.Sleep(2100 * time.Millisecond)
			extractOnce(t, dir, "erp", src, "orders", false)

			d := rawDB(t, dir, "erp", "orders")
			got := queryStrings(t, d, "SELECT order_id FROM raw ORDER BY order_id")
			hasLate := slices.Contains(got, "LATE")
			if hasLate != tc.wantLate || !slices.Contains(got, "FAST") {
				t.Fatalf("raw holds %q; late row read: %v, want %v", got, hasLate, tc.wantLate)
			}
		})
	}
}

func TestEmptyTableFinishesCleanly(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	src := openSource(t, "erp", sourceYAML(db, "", ordersEntity))
	dir := t.TempDir()
	res := extractOnce(t, dir, "erp", src, "orders", false)
	if res.Rows != 0 || res.Files != 0 || res.Rejected != 0 {
		t.Fatalf("empty table: %+v", res)
	}
	if st := readState(t, dir, "erp", "orders"); st.Cursor != nil || len(st.Files) != 0 {
		t.Fatalf("empty table left state %+v", st)
	}
	n, err := src.(extract.Counter).Count(context.Background(), extract.ReadRequest{Entity: mustEntity(t, "orders")})
	if err != nil || n != 0 {
		t.Fatalf("Count = %d, %v", n, err)
	}
}

func mustEntity(t testing.TB, name string) extract.Entity {
	e, err := extract.LookupEntity(name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCountMatchesRead(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, 40, "now() - interval '1 hour'")
	insertOrders(t, db, 5, "now()") // inside the default 1m safety lag
	src := openSource(t, "erp", sourceYAML(db, "", ordersEntity))
	req := extract.ReadRequest{Entity: mustEntity(t, "orders")}
	n, err := src.(extract.Counter).Count(context.Background(), req)
	if err != nil || n != 40 {
		t.Fatalf("Count = %d, %v; want 40", n, err)
	}
	dir := t.TempDir()
	if res := extractOnce(t, dir, "erp", src, "orders", false); res.Rows != 40 {
		t.Fatalf("read %d rows", res.Rows)
	}
	req.Cursor = readState(t, dir, "erp", "orders").Cursor
	if n, err := src.(extract.Counter).Count(context.Background(), req); err != nil || n != 0 {
		t.Fatalf("Count after the read = %d, %v; want 0", n, err)
	}
}

func TestNewSourceColumnAppears(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, 10, "now() - interval '1 hour'")
	src := openSource(t, "erp", sourceYAML(db, "safety_lag: 0s\n", ordersEntity))
	dir := t.TempDir()
	extractOnce(t, dir, "erp", src, "orders", false)

	db.Exec(t, "ALTER TABLE order_lines ADD COLUMN gift_note text")
	db.Exec(t, "UPDATE order_lines SET gift_note = 'for mum', updated_at = now() WHERE id = 3")
	res := extractOnce(t, dir, "erp", src, "orders", false)
	if res.Rows != 1 {
		t.Fatalf("second run %+v", res)
	}
	d := rawDB(t, dir, "erp", "orders")
	got := queryStrings(t, d, "SELECT id || ':' || coalesce(gift_note, 'NULL') FROM raw ORDER BY id, gift_note NULLS FIRST")
	want := []string{"1:NULL", "2:NULL", "3:NULL", "3:for mum", "4:NULL", "5:NULL", "6:NULL", "7:NULL", "8:NULL", "9:NULL", "10:NULL"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	pos := statePosition(t, dir, "erp", "orders")
	if !slices.ContainsFunc(pos.Columns, func(f field) bool { return f.Name == "gift_note" && f.Type == "text" }) {
		t.Fatalf("the new column is not remembered: %+v", pos.Columns)
	}
}

func TestLossyTypeChangeStopsEntity(t *testing.T) {
	for _, tc := range []struct {
		alter     string
		column    string
		old, new  string
		refreshOK bool // the new type still maps onto the entity
	}{
		{"ALTER TABLE order_lines ALTER COLUMN price TYPE text", "price", "numeric(12,2)", "text", false},
		{"ALTER TABLE order_lines ALTER COLUMN net_amount TYPE numeric(14,1)", "net_amount", "numeric(14,2)", "numeric(14,1)", true},
		{"ALTER TABLE order_lines ALTER COLUMN customer_id TYPE int USING 0", "customer_id", "text", "integer", true},
	} {
		t.Run(tc.column, func(t *testing.T) {
			db := pgtest.NewDB(t)
			db.Exec(t, ordersDDL)
			insertOrders(t, db, 10, "now() - interval '1 hour'")
			src := openSource(t, "erp", sourceYAML(db, "safety_lag: 0s\n", ordersEntity))
			dir := t.TempDir()
			extractOnce(t, dir, "erp", src, "orders", false)
			before, _ := os.ReadFile(dir + "/state/extract/erp/orders.json")

			db.Exec(t, tc.alter)
			db.Exec(t, "UPDATE order_lines SET updated_at = now() WHERE id = 1")
			_, err := (&extract.Extractor{Dir: dir}).Extract(context.Background(), "erp", src, "orders", false)
			if !errors.Is(err, extract.ErrSchemaChanged) {
				t.Fatalf("want ErrSchemaChanged, got %v", err)
			}
			for _, s := range []string{"source erp", "table public.order_lines", "column " + tc.column, tc.old, tc.new} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not name %q: %v", s, err)
				}
			}
			after, _ := os.ReadFile(dir + "/state/extract/erp/orders.json")
			if !bytes.Equal(before, after) {
				t.Errorf("state changed by a refused read")
			}
			// A full refresh rewrites raw with the new type and goes on, if
			// the new type maps at all.
			res, err := (&extract.Extractor{Dir: dir}).Extract(context.Background(), "erp", src, "orders", true)
			switch {
			case tc.refreshOK && (err != nil || res.Rows != 10):
				t.Fatalf("full refresh after the change: %+v, %v", res, err)
			case !tc.refreshOK && (err == nil || !strings.Contains(err.Error(), "does not map onto decimal column \"unit_price\"")):
				t.Fatalf("full refresh with an unmappable type: %v", err)
			}
		})
	}
}

func TestCompatibleTypeChangesGoOn(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, 10, "now() - interval '1 hour'")
	src := openSource(t, "erp", sourceYAML(db, "safety_lag: 0s\n", ordersEntity))
	dir := t.TempDir()
	extractOnce(t, dir, "erp", src, "orders", false)
	db.Exec(t, `ALTER TABLE order_lines ALTER COLUMN qty TYPE bigint, ALTER COLUMN net_amount TYPE numeric(18,3),
		ALTER COLUMN status TYPE varchar(20), ALTER COLUMN line_no TYPE smallint`)
	db.Exec(t, "UPDATE order_lines SET net_amount = 1234567.125, updated_at = now() WHERE id = 2")
	// ALTER COLUMN … TYPE rewrites the table: every row is a new version
	// (written by the ALTER, which the last read did not see), so the read
	// takes all 10 again, in the new types, id 2 as updated.
	if res := extractOnce(t, dir, "erp", src, "orders", false); res.Rows != 10 {
		t.Fatalf("after widening: %+v", res)
	}
	d := rawDB(t, dir, "erp", "orders")
	if got := queryStrings(t, d, "SELECT amount::VARCHAR FROM raw WHERE id = 2 ORDER BY amount"); !slices.Equal(got, []string{"19.980", "1234567.125"}) {
		t.Fatalf("amounts of id 2: %q", got)
	}
}

func TestSourceDownNamesSourceAndKeepsState(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, 3, "now() - interval '1 hour'")
	dir := t.TempDir()
	extractOnce(t, dir, "crm", openSource(t, "crm", sourceYAML(db, "", ordersEntity)), "orders", false)
	before, _ := os.ReadFile(dir + "/state/extract/crm/orders.json")

	const secret = "pA55-w0rd-NEVER-PRINT"
	t.Setenv("CRM_PG_PASSWORD", secret)
	down := fmt.Sprintf("host: 127.0.0.1\nport: %d\ndatabase: crm\nuser: reader\npassword_env: CRM_PG_PASSWORD\nconnect_timeout: 3s\nentities:\n%s",
		closedPort(t), ordersEntity)
	src := openSource(t, "crm", down)
	_, err := (&extract.Extractor{Dir: dir}).Extract(context.Background(), "crm", src, "orders", false)
	if err == nil {
		t.Fatal("extract from a server that is down succeeded")
	}
	msg := err.Error()
	for _, s := range []string{"source crm", "127.0.0.1", "database crm", "connection refused"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error does not say %q: %s", s, msg)
		}
	}
	if strings.Contains(msg, secret) {
		t.Fatalf("error leaks the password: %s", msg)
	}
	after, _ := os.ReadFile(dir + "/state/extract/crm/orders.json")
	if !bytes.Equal(before, after) {
		t.Fatal("state changed by a failed extract")
	}
}

// closedPort returns a loopback port nothing listens on (it did a moment ago).
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestCloseMidReadEndsTheQuery: a reader closed early (an error downstream,
// a cancelled run) must not drain the rest of the table; its session ends.
func TestCloseMidReadEndsTheQuery(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, 100_000, "now() - interval '1 day'")
	src := openSource(t, "erp", sourceYAML(db, "", ordersEntity))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := src.Read(ctx, extract.ReadRequest{Entity: mustEntity(t, "orders"), BatchRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := r.Next(ctx)
	if err != nil || ch.Rows == nil || ch.Rows.NumRows() != 1000 {
		t.Fatalf("first chunk: %v", err)
	}
	ch.Rows.Release()
	cancel() // a cancelled run: Next says so
	if _, err := r.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := pgStrings(t, db, "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'cdw' AND datname = current_database()")[0]
		if n == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s cdw sessions still open after Close", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWideRowsEndChunksEarly: with 1 MB values a 1000-row chunk would hold a
// gigabyte; chunks end once their values pass maxChunkBytes instead.
func TestWideRowsEndChunksEarly(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, `CREATE TABLE notes (contact_id int PRIMARY KEY, body text);
		INSERT INTO notes SELECT g, repeat(md5(g::text), 32768) FROM generate_series(1, 100) g`)
	src := openSource(t, "crm", sourceYAML(db, "", "    contacts: {table: notes}\n"))
	r, err := src.Read(context.Background(), extract.ReadRequest{Entity: mustEntity(t, "contacts"), BatchRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var sizes []int64
	for {
		ch, err := r.Next(context.Background())
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		if ch.Rows != nil {
			sizes = append(sizes, ch.Rows.NumRows())
			ch.Rows.Release()
		}
	}
	// Each chunk ends at the first row that takes it to maxChunkBytes.
	per := int64(maxChunkBytes >> 20)
	var want []int64
	for left := int64(100); left > 0; left -= per {
		want = append(want, min(per, left))
	}
	if !slices.Equal(sizes, want) {
		t.Fatalf("chunk sizes %v, want %v (%d MiB of 1 MiB values a chunk, then the rest)", sizes, want, per)
	}
}
