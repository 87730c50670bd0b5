package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/pgtest"
)

// The losses of issue 21, each reproduced against a real server: a commit
// that the cursor has already moved past when it becomes visible. Every test
// runs without a safety lag, so nothing but the snapshot horizon can save
// the row, and checks that raw holds each row version exactly once.

// rawCounts returns "order_id×copies" for every order id in raw.
func rawCounts(t *testing.T, dir string) []string {
	t.Helper()
	d := rawDB(t, dir, "erp", "orders")
	return queryStrings(t, d, "SELECT order_id || '×' || count(*) FROM raw GROUP BY order_id ORDER BY order_id")
}

// lateCommit runs the scenario of the issue: a transaction writes a row
// (write), another commits a newer row, the entity is extracted while the
// first is still open, then the first commits and the entity is extracted
// twice more.
func lateCommit(t *testing.T, ddl, entity, write, newer string) []string {
	t.Helper()
	db := pgtest.NewDB(t)
	db.Exec(t, ddl)
	src := openSource(t, "erp", sourceYAML(db, "safety_lag: 0s\n", entity))
	dir := t.TempDir()
	ctx := context.Background()
	db.Exec(t, `INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at) VALUES ('EARLY', 1, now(), now() - interval '1 hour')`)
	extractOnce(t, dir, "erp", src, "orders", false)

	slow := db.Connect(t)
	if _, err := slow.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Exec(ctx, write); err != nil {
		t.Fatal(err)
	}
	db.Exec(t, newer)
	if res := extractOnce(t, dir, "erp", src, "orders", false); res.Rows != 1 {
		t.Fatalf("the read beside the open transaction: %d rows, want the newer one", res.Rows)
	}
	if _, err := slow.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	extractOnce(t, dir, "erp", src, "orders", false)
	if res := extractOnce(t, dir, "erp", src, "orders", false); res.Rows != 0 {
		t.Fatalf("a read with nothing new read %d rows again", res.Rows)
	}
	return rawCounts(t, dir)
}

func TestLongTransactionIsNotSkipped(t *testing.T) {
	// updated_at = now(): the open transaction's start, older than the row
	// committed beside it.
	got := lateCommit(t, ordersDDL, ordersEntity,
		`INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at) VALUES ('LATE', 1, now(), now())`,
		`INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at) VALUES ('FAST', 1, now(), clock_timestamp())`)
	if want := []string{"EARLY×1", "FAST×1", "LATE×1"}; !slices.Equal(got, want) {
		t.Fatalf("raw holds %q, want %q", got, want)
	}
}

func TestOlderCursorValueCommittedLater(t *testing.T) {
	// A transaction that began after the read and writes a cursor value from
	// before it (an application clock, a back-dated correction).
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	src := openSource(t, "erp", sourceYAML(db, "safety_lag: 0s\n", ordersEntity))
	dir := t.TempDir()
	db.Exec(t, `INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at) VALUES ('FIRST', 1, now(), now())`)
	extractOnce(t, dir, "erp", src, "orders", false)
	db.Exec(t, `INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at) VALUES ('OLDER', 1, now(), now() - interval '10 minutes')`)
	db.Exec(t, `UPDATE order_lines SET status = 'corrected', updated_at = updated_at - interval '1 day' WHERE order_no = 'FIRST'`)
	if res := extractOnce(t, dir, "erp", src, "orders", false); res.Rows != 2 {
		t.Fatalf("second read: %d rows, want the back-dated insert and update", res.Rows)
	}
	if res := extractOnce(t, dir, "erp", src, "orders", false); res.Rows != 0 {
		t.Fatalf("a read with nothing new read %d rows again", res.Rows)
	}
	d := rawDB(t, dir, "erp", "orders")
	got := queryStrings(t, d, "SELECT order_id || ':' || coalesce(status, '-') FROM raw ORDER BY order_id, status NULLS FIRST")
	if want := []string{"FIRST:-", "FIRST:corrected", "OLDER:-"}; !slices.Equal(got, want) {
		t.Fatalf("raw holds %q, want %q", got, want)
	}
}

// bigserialEntity reads order_lines by its bigserial id alone.
const bigserialEntity = `    orders:
      table: public.order_lines
      cursor: id
      columns: {order_id: order_no, order_ts: ordered_at}
`

func TestInterleavedBigserialIsNotSkipped(t *testing.T) {
	// The open transaction draws the lower id and commits second.
	got := lateCommit(t, ordersDDL, bigserialEntity,
		`INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at) VALUES ('LATE', 1, now(), now())`,
		`INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at) VALUES ('FAST', 1, now(), now())`)
	if want := []string{"EARLY×1", "FAST×1", "LATE×1"}; !slices.Equal(got, want) {
		t.Fatalf("raw holds %q, want %q", got, want)
	}
}

func TestLateCommitInsideSubtransaction(t *testing.T) {
	// Rows written inside a savepoint (or a PL/pgSQL exception block) carry
	// the subtransaction's id, which pg_current_snapshot does not list.
	got := lateCommit(t, ordersDDL, bigserialEntity,
		`SAVEPOINT s; INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at) VALUES ('LATE', 1, now(), now()); RELEASE s`,
		`INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at) VALUES ('FAST', 1, now(), now())`)
	if want := []string{"EARLY×1", "FAST×1", "LATE×1"}; !slices.Equal(got, want) {
		t.Fatalf("raw holds %q, want %q", got, want)
	}
}

// TestHorizonOfPartitionedTable: the late commit is found through the
// partitions of a partitioned table too.
func TestHorizonOfPartitionedTable(t *testing.T) {
	ddl := `CREATE TABLE order_lines (
	id bigserial, order_no text NOT NULL, line_no int NOT NULL, ordered_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
	PRIMARY KEY (id, ordered_at)) PARTITION BY RANGE (ordered_at);
CREATE TABLE order_lines_old PARTITION OF order_lines FOR VALUES FROM (MINVALUE) TO ('2000-01-01');
CREATE TABLE order_lines_new PARTITION OF order_lines FOR VALUES FROM ('2000-01-01') TO (MAXVALUE);`
	got := lateCommit(t, ddl, fmt.Sprintf(`    orders:
      table: order_lines
      cursor: id
      key: [ordered_at]
      columns: {order_id: order_no, order_ts: ordered_at}
`),
		`INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at) VALUES ('LATE', 1, '1999-01-01', now())`,
		`INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at) VALUES ('FAST', 1, now(), now())`)
	if want := []string{"EARLY×1", "FAST×1", "LATE×1"}; !slices.Equal(got, want) {
		t.Fatalf("raw holds %q, want %q", got, want)
	}
}

// TestSplitReadCutShortKeepsItsHorizon: a split read is cut short after a
// checkpoint, rows are committed (one behind every part's progress, one ahead
// of it), and the read is resumed. The rest of the read takes only what its
// first attempt saw; the next read takes both new rows: every row once.
func TestSplitReadCutShortKeepsItsHorizon(t *testing.T) {
	db := splitTable(t, 5000)
	src := openSource(t, "erp", sourceYAML(db, "safety_lag: 0s\ncheckpoint_rows: 1000\nparallel: 2\n", ordersEntity))
	ctx := context.Background()
	req := extract.ReadRequest{Entity: mustEntity(t, "orders"), BatchRows: 250}

	r, err := src.Read(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var first int64
	var cut []byte
	for cut == nil {
		ch, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Rows != nil {
			first += ch.Rows.NumRows()
			ch.Rows.Release()
		}
		cut = ch.Checkpoint
	}
	r.Close()
	pos, err := decodePosition(cut)
	if err != nil || len(pos.Spans) < 2 || pos.Horizon == "" {
		t.Fatalf("checkpoint of the cut read: %s (%v); want parts and a horizon", cut, err)
	}

	db.Exec(t, `INSERT INTO order_lines (order_no, line_no, ordered_at, updated_at) VALUES
		('BACK', 1, now(), now() - interval '2 days'),
		('MID', 1, now(), now() - interval '1 day' + interval '2500 milliseconds')`)
	req.Cursor = cut
	r, err = src.Read(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	rest, done := drain(t, r)
	r.Close()
	if first+rest != 5000 {
		t.Fatalf("the cut read and its rest handed over %d + %d rows, want the 5000 the first attempt saw", first, rest)
	}
	req.Cursor = done
	r, err = src.Read(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	late, _ := drain(t, r)
	r.Close()
	if late != 2 {
		t.Fatalf("the read after the resumed one took %d rows, want BACK and MID", late)
	}
}

// TestHorizonText: the committed horizon lists the subtransactions still in
// progress and ends at a listed transaction that ended before they were asked
// about.
func TestHorizonText(t *testing.T) {
	for _, tc := range []struct {
		xmin, xmax      uint64
		xip, sub, ended []uint64
		want            string
	}{
		{10, 10, nil, nil, nil, "10:10:"},
		{10, 20, []uint64{10, 15}, []uint64{11, 16}, nil, "10:20:10,11,15,16"},
		{10, 20, []uint64{10, 15}, []uint64{11, 16}, []uint64{15}, "10:15:10,11"},
		{10, 20, []uint64{10}, nil, []uint64{10}, "10:10:"},
	} {
		if got := makeHorizon(tc.xmin, tc.xmax, tc.xip, tc.sub, tc.ended).seen; got != tc.want {
			t.Errorf("makeHorizon(%d, %d, %v, %v, %v) = %s, want %s", tc.xmin, tc.xmax, tc.xip, tc.sub, tc.ended, got, tc.want)
		}
	}
}
