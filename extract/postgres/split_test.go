package postgres

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/pgtest"
)

// splitSmall lets tables of a few thousand rows be split for the test.
func splitSmall(t *testing.T, rows int64) {
	old := splitMinRows
	splitMinRows = rows
	t.Cleanup(func() { splitMinRows = old })
}

// drain reads a read to its end: the rows it returned and its last checkpoint.
func drain(t *testing.T, r extract.Reader) (rows int64, last []byte) {
	t.Helper()
	for {
		ch, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return rows, last
		}
		if err != nil {
			t.Fatal(err)
		}
		if ch.Rows != nil {
			rows += ch.Rows.NumRows()
			ch.Rows.Release()
		}
		if ch.Checkpoint != nil {
			last = ch.Checkpoint
		}
	}
}

// splitTable makes a database whose order_lines (rows of them, changed a
// millisecond apart a day ago) is split when read.
func splitTable(t *testing.T, rows int) *pgtest.DB {
	splitSmall(t, 1000)
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, rows, "now() - interval '1 day' + g * interval '1 millisecond'")
	return db
}

// TestSplitCoversEveryRowOnce: the parts of a split are consecutive, about
// even, and together hold exactly the rows of the unsplit read.
func TestSplitCoversEveryRowOnce(t *testing.T) {
	splitSmall(t, 1000)
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, 30_000, "now() - interval '1 day' + (g % 5000) * interval '1 second'")
	db.Exec(t, "ANALYZE order_lines")
	src := openSource(t, "erp", sourceYAML(db, "safety_lag: 0s\n", ordersEntity)).(*Source)
	ctx := context.Background()
	conn, err := src.begin(ctx, src.entities["orders"], "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	p, spans, cutoff, err := src.prepare(ctx, conn, src.entities["orders"], nil)
	if err != nil {
		t.Fatal(err)
	}
	count := func(sp span) int64 {
		sql, args := p.countSQL(sp, cutoff)
		res := conn.PgConn().ExecParams(ctx, sql, args, nil, nil, nil).Read()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		n, _ := strconv.ParseInt(string(res.Rows[0][0]), 10, 64)
		return n
	}
	for _, n := range []int{2, 3, 5} {
		parts, err := split(ctx, conn, p, spans[0], cutoff, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != n {
			t.Fatalf("split in %d gave %d parts: %+v", n, len(parts), parts)
		}
		var sum int64
		for i, sp := range parts {
			c := count(sp)
			sum += c
			if c < 30_000/int64(n)/2 || c > 30_000*2/int64(n) {
				t.Errorf("part %d of %d holds %d rows; want about %d", i+1, n, c, 30_000/n)
			}
			if i > 0 && (len(sp.After) != 2 || *sp.After[1] != *parts[i-1].Upto[1]) {
				t.Errorf("part %d does not start where part %d ends: %+v", i+1, i, parts)
			}
		}
		if sum != 30_000 || len(parts[0].After) != 0 || len(parts[n-1].Upto) != 0 {
			t.Fatalf("parts hold %d rows together, want 30000, from the start to the end: %+v", sum, parts)
		}
	}

	// Below the threshold the read stays whole.
	splitMinRows = 1_000_000
	if parts, err := split(ctx, conn, p, spans[0], cutoff, 2); err != nil || len(parts) != 1 {
		t.Fatalf("a read under splitMinRows was split: %+v, %v", parts, err)
	}
}

// TestSplitReadSharesOneSnapshot: every part of a split read sees the table
// as it was when Read returned, even a part whose query starts after rows
// were deleted: its transaction imports the first one's snapshot.
func TestSplitReadSharesOneSnapshot(t *testing.T) {
	const total = 20_000
	db := splitTable(t, total)
	src := openSource(t, "erp", sourceYAML(db, "safety_lag: 0s\nparallel: 2\n", ordersEntity))
	ent, _ := extract.LookupEntity("orders")
	ctx := context.Background()
	r, err := src.Read(ctx, extract.ReadRequest{Entity: ent, BatchRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if rr := r.(*reader); len(rr.conns) != 2 || len(rr.spans) != 2*partsPerConnection {
		t.Fatalf("read on %d connections in %d parts; want %d parts on 2", len(rr.conns), len(rr.spans), 2*partsPerConnection)
	}
	// The workers start on the first Next: their queries run after this.
	db.Exec(t, "DELETE FROM order_lines WHERE id > 5000")
	rows, last := drain(t, r)
	if rows != total {
		t.Fatalf("split read returned %d rows; want the %d of its snapshot", rows, total)
	}
	p, err := decodePosition(last)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Spans) != 0 || len(p.After) != 2 || *p.After[1] != strconv.Itoa(total) {
		t.Fatalf("final checkpoint %+v; want a plain position after id %d", p, total)
	}
}

// TestSplitExtractMatchesOneConnection: through the runner, a split read
// lands the same rows in raw as a read on one connection, ends at the same
// position, and the next incremental read takes only what changed.
func TestSplitExtractMatchesOneConnection(t *testing.T) {
	db := splitTable(t, 40_000)
	summary := "SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || sum(amount) || ' ' || max(updated_at) FROM raw"
	var got []string
	var pos []*position
	for _, parallel := range []int{1, 3} {
		yaml := sourceYAML(db, "safety_lag: 0s\ncheckpoint_rows: 7000\nparallel: "+strconv.Itoa(parallel)+"\n", ordersEntity)
		dir := t.TempDir()
		res := extractOnce(t, dir, "erp", openSource(t, "erp", yaml), "orders", false)
		if res.Rows != 40_000 {
			t.Fatalf("parallel %d: read %d rows", parallel, res.Rows)
		}
		got = append(got, queryStrings(t, rawDB(t, dir, "erp", "orders"), summary)[0])
		pos = append(pos, statePosition(t, dir, "erp", "orders"))
		if parallel > 1 {
			db.Exec(t, "UPDATE order_lines SET net_amount = net_amount + 1, updated_at = now() WHERE id % 1000 = 0")
			res := extractOnce(t, dir, "erp", openSource(t, "erp", yaml), "orders", false)
			if res.Rows != 40 {
				t.Fatalf("the next read took %d rows; want the 40 changed", res.Rows)
			}
		}
	}
	if got[0] != got[1] {
		t.Fatalf("raw differs: one connection %q, split %q", got[0], got[1])
	}
	if len(pos[1].Spans) != 0 || *pos[0].After[1] != *pos[1].After[1] || *pos[0].After[0] != *pos[1].After[0] {
		t.Fatalf("positions differ: %+v vs %+v", pos[0], pos[1])
	}
}

// TestSplitPartitionedTable: a table partitioned by month is sampled through
// its partitions and read in parts like any other, and a view over it stays
// whole.
func TestSplitPartitionedTable(t *testing.T) {
	splitSmall(t, 1000)
	db := pgtest.NewDB(t)
	db.Exec(t, `CREATE TABLE order_lines (
	id bigint NOT NULL, order_no text NOT NULL, line_no int NOT NULL, customer_id text,
	ordered_at timestamptz NOT NULL, qty int, price numeric(12,2), net_amount numeric(14,2), status text,
	updated_at timestamptz NOT NULL) PARTITION BY RANGE (updated_at);
CREATE TABLE order_lines_old PARTITION OF order_lines FOR VALUES FROM (MINVALUE) TO ('2025-01-01');
CREATE TABLE order_lines_new PARTITION OF order_lines FOR VALUES FROM ('2025-01-01') TO (MAXVALUE);
CREATE INDEX ON order_lines (updated_at, id);
CREATE VIEW recent_lines AS SELECT * FROM order_lines;
INSERT INTO order_lines SELECT g, 'SO-' || g, 1, 'C' || (g % 7), '2024-03-01', 1, 9.99, 9.99 * g, 'completed',
	timestamptz '2024-12-01' + g * interval '1 minute' FROM generate_series(1, 60000) g`)
	ctx := context.Background()
	for _, c := range []struct {
		table string
		parts int
	}{{"order_lines", 2}, {"recent_lines", 1}} {
		src := openSource(t, "erp", sourceYAML(db, "safety_lag: 0s\n", `    orders:
      table: public.`+c.table+`
      cursor: updated_at
      key: [id]
      columns: {order_id: order_no, order_ts: ordered_at, quantity: qty, unit_price: price, amount: net_amount}
`)).(*Source)
		conn, err := src.begin(ctx, src.entities["orders"], "")
		if err != nil {
			t.Fatal(err)
		}
		p, spans, cutoff, err := src.prepare(ctx, conn, src.entities["orders"], nil)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := split(ctx, conn, p, spans[0], cutoff, 2)
		conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != c.parts {
			t.Fatalf("%s: split in %d parts, want %d: %+v", c.table, len(parts), c.parts, parts)
		}
		dir := t.TempDir()
		if res := extractOnce(t, dir, "erp", src, "orders", false); res.Rows != 60_000 {
			t.Fatalf("%s: read %d rows, want 60000", c.table, res.Rows)
		}
		if got := queryInt(t, rawDB(t, dir, "erp", "orders"), "SELECT count(DISTINCT order_id) FROM raw"); got != 60_000 {
			t.Fatalf("%s: raw holds %d distinct orders, want 60000", c.table, got)
		}
	}
}

// TestSplitReadOnFewerConnections: a role allowed one connection, or one the
// server does not let export its snapshot, still reads a large table in
// full: the one connection reads both parts in turn.
func TestSplitReadOnFewerConnections(t *testing.T) {
	const total = 20_000
	db := splitTable(t, total)
	role := "one_conn_" + db.Name
	db.Exec(t, "CREATE ROLE "+role+" LOGIN CONNECTION LIMIT 1")
	t.Cleanup(func() { db.Exec(t, "DROP OWNED BY "+role+"; DROP ROLE "+role) })
	db.Exec(t, "GRANT SELECT ON order_lines TO "+role)
	yaml := strings.Replace(sourceYAML(db, "safety_lag: 0s\n", ordersEntity), "\nuser: ", "\nuser: "+role+"\n# was: ", 1)
	src := openSource(t, "erp", yaml)
	ent, _ := extract.LookupEntity("orders")
	ctx := context.Background()
	for _, refuse := range []string{"a second connection", "the snapshot export"} {
		if refuse == "the snapshot export" {
			db.Exec(t, "ALTER ROLE "+role+" CONNECTION LIMIT -1; REVOKE EXECUTE ON FUNCTION pg_export_snapshot() FROM PUBLIC")
		}
		r, err := src.Read(ctx, extract.ReadRequest{Entity: ent, BatchRows: 1000})
		if err != nil {
			t.Fatalf("%s refused: %v", refuse, err)
		}
		if rr := r.(*reader); len(rr.conns) != 1 || len(rr.spans) != 2*partsPerConnection {
			t.Fatalf("%s refused: read on %d connections in %d parts; want %d parts on 1 connection", refuse, len(rr.conns), len(rr.spans), 2*partsPerConnection)
		}
		rows, _ := drain(t, r)
		r.Close()
		if rows != total {
			t.Fatalf("%s refused: read %d rows, want %d", refuse, rows, total)
		}
	}
}

// TestCountLargeReadFromSample: the progress ETA of a large read comes from
// a sample of the table's pages, near the true count (a wrong scale would be
// far off); a small read is counted exactly.
func TestCountLargeReadFromSample(t *testing.T) {
	const total = 150_000 // about 2000 pages: more than the sample takes
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, total, "now() - interval '1 day' + g * interval '1 millisecond'")
	if pages, _ := strconv.Atoi(pgStrings(t, db, "SELECT pg_relation_size('order_lines') / 8192")[0]); pages <= samplePages {
		t.Fatalf("the table has %d pages; the test needs more than %d", pages, samplePages)
	}
	src := openSource(t, "erp", sourceYAML(db, "safety_lag: 0s\n", ordersEntity)).(*Source)
	ent, _ := extract.LookupEntity("orders")
	for _, c := range []struct {
		minRows  int64
		lo, high int64
	}{{1000, total * 8 / 10, total * 12 / 10}, {1_000_000, total, total}} {
		splitSmall(t, c.minRows)
		n, err := src.Count(context.Background(), extract.ReadRequest{Entity: ent})
		if err != nil {
			t.Fatal(err)
		}
		if n < c.lo || n > c.high {
			t.Errorf("with splitMinRows %d: count %d, want %d..%d", c.minRows, n, c.lo, c.high)
		}
	}
}

// TestReadPlannerSettings: every connection of a read of a table streams
// from the index (no sort, no parallel workers); a query: keeps the server's
// defaults.
func TestReadPlannerSettings(t *testing.T) {
	db := splitTable(t, 20_000)
	ent, _ := extract.LookupEntity("orders")
	ctx := context.Background()
	for _, c := range []struct {
		from, want string
	}{
		{"table: public.order_lines", "off 0"},
		{"query: SELECT * FROM order_lines", "on 2"},
	} {
		src := openSource(t, "erp", sourceYAML(db, "safety_lag: 0s\n", strings.Replace(ordersEntity, "table: public.order_lines", c.from, 1)))
		r, err := src.Read(ctx, extract.ReadRequest{Entity: ent})
		if err != nil {
			t.Fatal(err)
		}
		for i, conn := range r.(*reader).conns { // the workers have not started: the connections are idle
			var got string
			if err := conn.QueryRow(ctx, "SELECT current_setting('enable_sort') || ' ' || current_setting('max_parallel_workers_per_gather')").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("%s, connection %d: enable_sort and max_parallel_workers_per_gather are %q, want %q", c.from, i+1, got, c.want)
			}
		}
		r.Close()
	}
}
