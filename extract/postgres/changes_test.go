package postgres

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cdwhq/cdw/internal/pgtest"
)

// snapshotEntity reads order_lines without a cursor: a snapshot each run.
const snapshotEntity = `    orders:
      table: public.order_lines
      key: [id]
      columns: {order_id: order_no, order_ts: ordered_at, quantity: qty, unit_price: price, amount: net_amount}
`

// change runs sql and makes its statistics count at once (they otherwise
// reach shared memory up to seconds after the commit, and the run after the
// next one would see the change).
func change(t *testing.T, db *pgtest.DB, sql string) {
	t.Helper()
	conn := db.Connect(t)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotTableAddsNothingUnchanged: the table without a cursor
// (25,000 rows) appended a full copy to raw on every run. Unchanged, a run
// adds nothing and keeps the files; changed (an update, a hard delete, a
// TRUNCATE and reload of as many rows, a new column), the new snapshot
// replaces the previous one.
func TestSnapshotTableAddsNothingUnchanged(t *testing.T) {
	db := pgtest.NewDB(t)
	db.Exec(t, ordersDDL)
	insertOrders(t, db, 25_000, "now() - interval '1 day'")
	waitCounted(t, db, 25_000)
	src := openSource(t, "erp", sourceYAML(db, "", snapshotEntity))
	dir := t.TempDir()
	res := extractOnce(t, dir, "erp", src, "orders", false)
	if res.Rows != 25_000 {
		t.Fatalf("first run: %+v", res)
	}
	files := committedFiles(t, dir, "erp", "orders")

	if res := extractOnce(t, dir, "erp", src, "orders", false); res.Rows != 0 || res.Files != 0 {
		t.Fatalf("a run over the unchanged table: %+v, want nothing added", res)
	}
	if got := committedFiles(t, dir, "erp", "orders"); !slices.Equal(got, files) {
		t.Fatalf("files after an unchanged run: %v, want %v", got, files)
	}

	for _, step := range []struct {
		sql  string
		rows int64  // rows in raw after the run
		want string // a check on raw, true when the change shows
	}{
		{"UPDATE order_lines SET status = 'returned' WHERE id = 7", 25_000, "SELECT count(*) = 1 FROM raw WHERE status = 'returned'"},
		{"DELETE FROM order_lines WHERE id = 8", 24_999, "SELECT count(*) = 0 FROM raw WHERE id = 8"},
		{"BEGIN; CREATE TEMP TABLE keep AS SELECT * FROM order_lines; TRUNCATE order_lines; INSERT INTO order_lines SELECT * FROM keep; " +
			"UPDATE order_lines SET status = 'reloaded' WHERE id = 9; DELETE FROM order_lines WHERE id = 10; COMMIT",
			24_998, "SELECT count(*) = 1 FROM raw WHERE status = 'reloaded'"},
		{"ALTER TABLE order_lines ADD COLUMN channel text DEFAULT 'web'", 24_998, "SELECT count(*) = 24998 FROM raw WHERE channel = 'web'"},
	} {
		change(t, db, step.sql)
		res := extractOnce(t, dir, "erp", src, "orders", false)
		if res.Rows != step.rows {
			t.Fatalf("after %q: read %d rows, want the new snapshot of %d", step.sql, res.Rows, step.rows)
		}
		d := rawDB(t, dir, "erp", "orders")
		if n := queryInt(t, d, "SELECT count(*) FROM raw"); n != step.rows {
			t.Fatalf("after %q: raw holds %d rows, want the %d of the new snapshot only", step.sql, n, step.rows)
		}
		if ok := queryStrings(t, d, step.want); !slices.Equal(ok, []string{"true"}) {
			t.Fatalf("after %q: %s is %v", step.sql, step.want, ok)
		}
		if res := extractOnce(t, dir, "erp", src, "orders", false); res.Rows != 0 {
			t.Fatalf("after %q: the next run read %d rows again", step.sql, res.Rows)
		}
	}
}

// waitCounted waits until the statistics count the inserts of the session
// that loaded order_lines (a session's counts reach shared memory as it
// exits, after the client has gone).
func waitCounted(t *testing.T, db *pgtest.DB, inserted int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := pgStrings(t, db, "SELECT n_tup_ins::text FROM pg_stat_all_tables WHERE relid = 'order_lines'::regclass")
		if len(n) == 1 && n[0] == strconv.Itoa(inserted) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the statistics count %v inserts into order_lines after 60s, want %d", n, inserted)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
