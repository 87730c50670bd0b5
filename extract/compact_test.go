package extract_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/extract/extracttest"
	"github.com/cdwhq/cdw/internal/duck"
)

// rawRelation reads the committed raw files of st as the raw views do,
// _file the file's path.
func rawRelation(wh string, st *extract.EntityState) string {
	var ps []string
	for _, f := range st.Files {
		ps = append(ps, duck.Literal(filepath.Join(wh, filepath.FromSlash(f.Path))))
	}
	return "read_parquet([" + strings.Join(ps, ", ") + "], union_by_name = true, filename = '_file')"
}

func count(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestCompactKeepsRowsAndVersions merges 120 small order files (every 4th
// one new versions of the previous file's lines, with the same updated_at,
// so the later file decides) and checks: the rows are the same (EXCEPT ALL
// both ways), staging's winning version of every line is the same (no
// superseded version comes back), every output is sorted by key, the
// inputs are gone, the quarantine file is untouched, and a second
// compaction finds nothing to do.
func TestCompactKeepsRowsAndVersions(t *testing.T) {
	wh := t.TempDir()
	st := extracttest.SmallOrderFiles(t, wh, "api", 120, 25, 4)
	q := "quarantine/api/orders/20240701T000000.000000000Z-0000.parquet"
	if err := os.MkdirAll(filepath.Join(wh, filepath.Dir(q)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wh, q), []byte("PAR1 kept as is"), 0o644); err != nil {
		t.Fatal(err)
	}
	st.Quarantine = []extract.RawFile{{Path: q, Rows: 1}}
	if err := (extract.StateStore{Dir: wh}).Commit(st); err != nil {
		t.Fatal(err)
	}
	db, err := duck.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const winners = `SELECT * EXCLUDE (_file, _rn) FROM (SELECT *, row_number() OVER (PARTITION BY order_id, line_no
		ORDER BY updated_at DESC NULLS LAST, _file DESC) AS _rn FROM %s) WHERE _rn = 1`
	for _, s := range []string{
		"CREATE TABLE before AS SELECT * EXCLUDE (_file) FROM " + rawRelation(wh, st),
		"CREATE TABLE won_before AS " + strings.Replace(winners, "%s", rawRelation(wh, st), 1),
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	x := &extract.Extractor{Dir: wh}
	res, err := x.Compact(context.Background(), "api", "orders", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	after, err := extract.StateStore{Dir: wh}.Load("api", "orders")
	if err != nil {
		t.Fatal(err)
	}
	// 12 days of 10 files; a file of repeats starts a new output, so a
	// few files stay alone.
	if res.Inputs < 100 || res.Outputs < 24 || res.Outputs >= 60 || len(after.Files) != 120-res.Inputs+res.Outputs || after.Rows != 3000 {
		t.Fatalf("compacted %+v into %d state files (%d rows)", res, len(after.Files), after.Rows)
	}
	rel := rawRelation(wh, after)
	checks := map[string]string{
		"rows lost":                     "SELECT count(*) FROM (SELECT * FROM before EXCEPT ALL SELECT * EXCLUDE (_file) FROM " + rel + ")",
		"rows added":                    "SELECT count(*) FROM (SELECT * EXCLUDE (_file) FROM " + rel + " EXCEPT ALL SELECT * FROM before)",
		"winning versions changed":      "SELECT count(*) FROM (SELECT * FROM won_before EXCEPT ALL (" + strings.Replace(winners, "%s", rel, 1) + "))",
		"rows out of key order":         "SELECT count(*) FROM (SELECT order_id, line_no, lag(order_id) OVER w AS po, lag(line_no) OVER w AS pl FROM " + strings.Replace(rel, "filename = '_file'", "filename = '_file', file_row_number = true", 1) + " WINDOW w AS (PARTITION BY _file ORDER BY file_row_number)) WHERE po IS NOT NULL AND (order_id, line_no) < (po, pl)",
		"rows of another day in a file": "SELECT count(*) FROM (SELECT _file FROM " + rel + " GROUP BY _file HAVING count(DISTINCT order_ts::DATE) > 1)",
	}
	for what, q := range checks {
		if n := count(t, db, q); n != 0 {
			t.Errorf("%s: %d", what, n)

		}
	}
	kept := map[string]bool{}
	for _, f := range after.Files {
		kept[f.Path] = true
	}
	for _, f := range st.Files {
		if kept[f.Path] {
			continue
		}
		if _, err := os.Stat(filepath.Join(wh, f.Path)); !os.IsNotExist(err) {
			t.Errorf("input %s still on disk (%v)", f.Path, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(wh, q)); err != nil || string(b) != "PAR1 kept as is" || len(after.Quarantine) != 1 || after.Quarantine[0].Path != q {
		t.Errorf("quarantine changed: %v %q %v", err, b, after.Quarantine)
	}
	again, err := x.Compact(context.Background(), "api", "orders", 1<<20)
	if err != nil || again.Outputs != 0 {
		t.Errorf("second compaction: %+v, %v", again, err)
	}
}
