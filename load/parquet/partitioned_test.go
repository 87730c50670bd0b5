package parquet

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cdwhq/cdw/load"
	"github.com/cdwhq/cdw/load/loadtest"
)

// readerDiff counts rows a BI reader of the partitioned dataset at glob sees
// that table want lacks, and the other way round (EXCEPT ALL both ways).
func readerDiff(t *testing.T, db *sql.DB, glob, want string) (int, int) {
	t.Helper()
	var extra, missing int
	q := `SELECT (SELECT count(*) FROM (SELECT * EXCLUDE (bucket) FROM read_parquet(?, hive_partitioning = true) EXCEPT ALL SELECT * FROM ` + want + `)),
		(SELECT count(*) FROM (SELECT * FROM ` + want + ` EXCEPT ALL SELECT * EXCLUDE (bucket) FROM read_parquet(?, hive_partitioning = true)))`
	if err := db.QueryRow(q, glob, glob).Scan(&extra, &missing); err != nil {
		t.Fatalf("reading %s: %v", glob, err)
	}
	return extra, missing
}

func exec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func inode(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// TestPartitionedPublishRewritesOnlyChangedPartitions publishes a customer
// mart (business_unit, customer_key; a NULL unit and one needing escaping)
// and an unpartitioned mart, applies a sequence of deltas, and after each
// checks: a hive reader of marts/<mart>/**/*.parquet sees exactly the
// warehouse rows and exactly what a full publish into a fresh directory
// gives; only changed partitions were written, the others are hard links
// (same inode) into the previous version; rollback goes back to the
// previous rows.
func TestPartitionedPublishRewritesOnlyChangedPartitions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wh := loadtest.Warehouse(t)
	p := openTest(t, "layout: partitioned\nbuckets: 4\nkeep: 5", dir)
	exec(t, wh, `CREATE TABLE c AS SELECT i AS customer_key,
		CASE WHEN i % 7 = 0 THEN NULL WHEN i % 2 = 0 THEN 'u/even' ELSE 'odd unit' END AS business_unit,
		i * 10 AS clv FROM range(2000) r(i)`)
	exec(t, wh, `CREATE TABLE s AS SELECT 1 AS n`)
	names := []string{"c", "s"}
	glob := filepath.Join(dir, "marts", "c", "**", "*.parquet")
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: names, Version: "000001-20261202T000000Z"}); err != nil {
		t.Fatal(err)
	}
	all := p.last.Written
	if all != 12 || p.last.Linked != 0 { // 3 units (one NULL) × 4 buckets
		t.Fatalf("first publish wrote %d and linked %d partitions, want 12 and 0", all, p.last.Linked)
	}
	if _, err := os.Stat(filepath.Join(dir, "marts", "s.parquet")); err != nil {
		t.Fatalf("the mart without partition columns is not a single file: %v", err)
	}
	deltas := []string{
		`UPDATE c SET clv = clv + 1 WHERE customer_key = 3`,           // one partition
		`INSERT INTO c VALUES (5000, 'new unit', 1), (5001, NULL, 2)`, // a new unit; a NULL-unit partition
		`DELETE FROM c WHERE business_unit = 'odd unit'`,              // a unit disappears
		`UPDATE c SET clv = 0 WHERE customer_key % 100 = 1`,           // several partitions
	}
	for i, d := range deltas {
		exec(t, wh, `CREATE OR REPLACE TABLE before AS SELECT * FROM c`)
		exec(t, wh, d)
		prev, _ := p.Current()
		v := []string{"000002-20261202T000001Z", "000003-20261202T000002Z", "000004-20261202T000003Z", "000005-20261202T000004Z"}[i]
		if err := p.Publish(ctx, load.Marts{DB: wh, Names: names, Version: v}); err != nil {
			t.Fatal(err)
		}
		if extra, missing := readerDiff(t, wh, glob, "c"); extra != 0 || missing != 0 {
			t.Fatalf("delta %d (%s): the reader sees %d rows too many and misses %d", i, d, extra, missing)
		}
		full := openTest(t, "layout: partitioned\nbuckets: 4", t.TempDir())
		if err := full.Publish(ctx, load.Marts{DB: wh, Names: names}); err != nil {
			t.Fatal(err)
		}
		fullGlob := filepath.Join(full.Dir(), "c", "**", "*.parquet")
		var diff int
		if err := wh.QueryRow(`SELECT count(*) FROM ((SELECT * FROM read_parquet(?, hive_partitioning = true) EXCEPT ALL SELECT * FROM read_parquet(?, hive_partitioning = true))
			UNION ALL (SELECT * FROM read_parquet(?, hive_partitioning = true) EXCEPT ALL SELECT * FROM read_parquet(?, hive_partitioning = true)))`,
			glob, fullGlob, fullGlob, glob).Scan(&diff); err != nil || diff != 0 {
			t.Fatalf("delta %d: %d rows differ from a full publish (%v)", i, diff, err)
		}
		if p.last.Written+p.last.Linked != full.last.Written || p.last.Written >= full.last.Written {
			t.Errorf("delta %d (%s) wrote %d and linked %d partitions; a full publish writes %d", i, d, p.last.Written, p.last.Linked, full.last.Written)
		}
		t.Logf("delta %d: wrote %d, linked %d of %d partitions", i, p.last.Written, p.last.Linked, full.last.Written)
		if i == 0 {
			if p.last.Written != 1 || p.last.Linked != 11 {
				t.Errorf("one changed row: wrote %d, linked %d partitions, want 1 and 11", p.last.Written, p.last.Linked)
			}
			// customer 4 is untouched: its partition file is the same inode.
			var f string
			if err := wh.QueryRow(`SELECT filename FROM read_parquet(?, filename = true) WHERE customer_key = 4`, glob).Scan(&f); err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(filepath.Join(dir, "marts", "c"), f)
			if !os.SameFile(inode(t, filepath.Join(p.versionPath(prev), "c", rel)), inode(t, filepath.Join(p.versionPath(v), "c", rel))) {
				t.Errorf("unchanged partition %s was rewritten, not hard-linked", rel)
			}
			if filepath.Base(rel) != "part.parquet" {
				t.Errorf("partition file %s, want part.parquet", rel)
			}
		}
	}
	if _, err := p.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if extra, missing := readerDiff(t, wh, glob, "before"); extra != 0 || missing != 0 {
		t.Fatalf("after rollback the reader sees %d rows too many and misses %d of the previous version", extra, missing)
	}
}

// BenchmarkPartitionedDelta publishes a 1M-row customer mart in full, then
// after changing 1 % of its customers, and reports the delta/full ratio of
// one run (CDW_BENCH_ROWS sets the size).
func BenchmarkPartitionedDelta(b *testing.B) {
	ctx := context.Background()
	rows := "1000000"
	if s := os.Getenv("CDW_BENCH_ROWS"); s != "" {
		rows = s
	}
	for range b.N {
		dir := b.TempDir()
		wh := loadtest.Warehouse(b)
		if _, err := wh.Exec(`CREATE TABLE c AS SELECT i AS customer_key, 'unit' || (i % 4) AS business_unit,
			i * 1.5 AS clv, 'segment ' || (i % 11) AS segment, DATE '2020-01-01' + (i % 1000)::INT AS first_order FROM range(` + rows + `) r(i)`); err != nil {
			b.Fatal(err)
		}
		p := openTest(b, "layout: partitioned", dir)
		names := []string{"c"}
		start := time.Now()
		if err := p.Publish(ctx, load.Marts{DB: wh, Names: names, Version: "000001-20261202T000000Z"}); err != nil {
			b.Fatal(err)
		}
		full := time.Since(start)
		if _, err := wh.Exec(`UPDATE c SET clv = clv + 1 WHERE hash(customer_key) % 100 = 0`); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := p.Publish(ctx, load.Marts{DB: wh, Names: names, Version: "000002-20261202T000001Z"}); err != nil {
			b.Fatal(err)
		}
		spread, spreadW := time.Since(start), p.last.Written
		// The same share of rows, all in one unit's bucket.
		if _, err := wh.Exec(`UPDATE c SET clv = clv + 1 WHERE business_unit = 'unit0' AND hash(customer_key) % 16 = 0`); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := p.Publish(ctx, load.Marts{DB: wh, Names: names, Version: "000003-20261202T000002Z"}); err != nil {
			b.Fatal(err)
		}
		one := time.Since(start)
		b.ReportMetric(spread.Seconds()/full.Seconds(), "spread/full")
		b.ReportMetric(one.Seconds()/full.Seconds(), "onepart/full")
		b.Logf("%s rows: full %s; 1%% of customers spread: %s (wrote %d partitions); ~1.6%% in one partition: %s (wrote %d, linked %d)",
			rows, full.Round(time.Millisecond), spread.Round(time.Millisecond), spreadW, one.Round(time.Millisecond), p.last.Written, p.last.Linked)
	}
}
