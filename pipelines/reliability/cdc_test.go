package reliability

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/internal/crashtest"
	"github.com/cdwhq/cdw/internal/pgtest"
)

// orderChanges changes the orders table as an OLTP system would between two
// runs: a batch update of many lines in one transaction, single updates,
// hard deletes of whole orders and new lines.
const orderChanges = `
UPDATE orders SET status = 'cancelled', updated_at = updated_at + interval '1 day' WHERE order_no % 3 = 0;
UPDATE orders SET qty = qty + 1, updated_at = updated_at + interval '2 days' WHERE (order_no, line) IN (SELECT order_no, line FROM orders ORDER BY order_no DESC LIMIT 5);
DELETE FROM orders WHERE order_no % 23 = 0;
INSERT INTO orders SELECT order_no + 10000000, line, customer, ordered_at + interval '1 day', status, sku, product, category, qty, unit_price, cost, business_unit, channel, updated_at + interval '1 day'
FROM orders WHERE order_no % 29 = 0;`

// TestCDCCrashThenRerun reads the shop's orders by logical replication
// (mode: cdc) through the real binary: a first run loads the table from the
// slot's snapshot, the table changes (updates, hard deletes, inserts), and a
// second run is killed with SIGKILL at each failpoint of the stream and the
// extract, then rerun. Every committed row version must be in raw exactly
// once, and the marts must equal those of a clean run over a copy of the
// changed table read whole.
func TestCDCCrashThenRerun(t *testing.T) {
	f := newFixture(t)
	srv := pgtest.Start(t)

	// The reference: the changed table, read in full by a clean run.
	ref := *f
	ref.db = srv.NewDB(t)
	loadOrders(t, ref.db, f.files.Orders)
	ref.db.Exec(t, orderChanges)
	refDir := t.TempDir()
	ref.mustRun(t, ref.writeConfig(t, refDir, cfgOptions{}))
	want := ref.outcome(t, refDir, "")

	for _, fp := range []string{
		"postgres.cdc.mid-transaction:1",
		"postgres.cdc.before-confirm:1",
		"postgres.cdc.after-confirm:1",
		"extract.mid-write:2",
		"extract.before-commit:1",
		"extract.after-commit:1",
	} {
		t.Run(strings.NewReplacer(".", "_", ":", "_").Replace(fp), func(t *testing.T) {
			c := *f
			c.db = srv.NewDB(t) // slots are the cluster's: one case at a time
			loadOrders(t, c.db, f.files.Orders)
			dir := t.TempDir()
			cfg := c.writeConfig(t, dir, cfgOptions{cdc: true})
			c.mustRun(t, cfg)
			wantVersions := changedLines(t, &c)
			c.db.Exec(t, orderChanges)
			res := c.run(t, cfg, crashtest.Run{Failpoint: fp})
			if !res.Killed {
				t.Fatalf("the run was not killed at %s: %s", fp, res)
			}
			c.mustRun(t, cfg)
			if left := crashtest.Leftovers(filepath.Join(dir, "wh")); len(left) > 0 {
				t.Errorf("temporary files left after the rerun: %v", left)
			}
			got := c.outcome(t, dir, "")
			got.raw, want.raw = nil, nil // raw holds versions here, the latest only there
			// clv_model records when its fit ran (fitted_at): it differs
			// between any two runs, so it is left out of the comparison.
			for _, m := range []map[string]crashtest.Summary{got.parquet, got.duck} {
				delete(m, "clv_model")
			}
			w := want
			w.parquet, w.duck = without(want.parquet, "clv_model"), without(want.duck, "clv_model")
			got.compare(t, w)
			// Every version once: the snapshot's lines, then one version per
			// change (updates and deletes of lines, inserts).
			d := duck(t)
			files := filepath.Join(dir, "wh", "raw", "shop", "orders", "*", "*.parquet")
			var snap, versions, distinct int64
			err := d.QueryRow(`SELECT count(*) FILTER (WHERE _cdw_op IS NULL), count(*) FILTER (WHERE _cdw_op IS NOT NULL),
				count(DISTINCT (order_id, line_no, _cdw_lsn, _cdw_op, status, quantity)) FILTER (WHERE _cdw_op IS NOT NULL)
				FROM read_parquet('`+files+`', union_by_name = true)`).Scan(&snap, &versions, &distinct)
			if err != nil {
				t.Fatal(err)
			}
			if snap != int64(f.orders) || versions != wantVersions || distinct != wantVersions {
				t.Fatalf("raw holds %d snapshot lines and %d versions (%d distinct); want %d and %d", snap, versions, distinct, f.orders, wantVersions)
			}
		})
	}
}

// changedLines counts the row versions orderChanges will make (one
// transaction, over checkpoint_rows: 500): lines cancelled, the 5 updated, lines deleted, lines added.
func changedLines(t *testing.T, f *fixture) int64 {
	var n int64
	err := f.db.Connect(t).QueryRow(t.Context(), `SELECT
		(SELECT count(*) FROM orders WHERE order_no % 3 = 0) + 5
		+ (SELECT count(*) FROM orders WHERE order_no % 23 = 0)
		+ (SELECT count(*) FROM orders WHERE order_no % 29 = 0 AND order_no % 23 <> 0)`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func without(m map[string]crashtest.Summary, name string) map[string]crashtest.Summary {
	out := map[string]crashtest.Summary{}
	for k, v := range m {
		if k != name {
			out[k] = v
		}
	}
	return out
}
