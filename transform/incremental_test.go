package transform

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawLake is a raw.orders view over Parquet files, like the pipeline's raw
// views: files are immutable and the _file column names them.
type rawLake struct {
	t     *testing.T
	db    *sql.DB
	dir   string
	files []string
}

// newLake opens a new warehouse with an empty lake.
func newLake(t *testing.T) (*sql.DB, *rawLake) {
	db := emptyWarehouse(t)
	return db, &rawLake{t: t, db: db, dir: t.TempDir()}
}

func emptyWarehouse(t *testing.T) *sql.DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "warehouse.duckdb"), Settings{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mustExec(t, db, `CREATE SCHEMA raw`)
	return db
}

// add commits one file of order-line versions: "key,customer,amount,updated_hour[,deleted]".
func (l *rawLake) add(rows ...string) {
	l.t.Helper()
	var vals []string
	for _, r := range rows {
		f := strings.Split(r, ",")
		del := "false"
		if len(f) == 5 {
			del = f[4]
		}
		vals = append(vals, fmt.Sprintf("(%s, '%s', %s, TIMESTAMP '2024-01-01' + to_hours(%s), %s)", f[0], f[1], f[2], f[3], del))
	}
	path := filepath.Join(l.dir, fmt.Sprintf("%04d.parquet", len(l.files)+1))
	mustExec(l.t, l.db, fmt.Sprintf(`COPY (SELECT * FROM (VALUES %s) v(order_id, customer_id, amount, updated_at, deleted))
		TO '%s' (FORMAT parquet)`, strings.Join(vals, ", "), path))
	l.files = append(l.files, path)
	l.view()
}

// drop forgets the files (an extract full refresh replaced them) and adds one.
func (l *rawLake) replace(rows ...string) {
	l.files = nil
	l.add(rows...)
}

func (l *rawLake) view() {
	quoted := make([]string, len(l.files))
	for i, f := range l.files {
		quoted[i] = "'" + f + "'"
	}
	mustExec(l.t, l.db, fmt.Sprintf(`CREATE OR REPLACE VIEW raw.orders AS
		SELECT * FROM read_parquet([%s], filename = '_file')`, strings.Join(quoted, ", ")))
}

func (l *rawLake) inputs() map[string]RawInput {
	return map[string]RawInput{"raw.orders": {Shape: "orders", Files: append([]string(nil), l.files...)}}
}

// latestSQL is a staging model in the stg_orders pattern: the latest
// version of each line, recomputed from all versions of the lines touched
// by new files; a deleted latest version removes the line.
const latestSQL = `-- materialized: incremental
-- unique_key: order_id
WITH ranked AS (
    SELECT r.*, row_number() OVER (PARTITION BY r.order_id ORDER BY r.updated_at DESC, r._file DESC) AS rn
    FROM raw.orders r
{% if is_incremental() %}
    SEMI JOIN (SELECT DISTINCT order_id FROM {{ new_rows('raw.orders') }}) n ON r.order_id = n.order_id
{% endif %}
)
SELECT order_id, customer_id, amount, updated_at, deleted AS _cdw_deleted
FROM ranked WHERE rn = 1
`

func incProject(t *testing.T, extra map[string]string) *Project {
	m := map[string]string{
		"staging/latest.sql":    latestSQL,
		"core/per_customer.sql": "-- materialized: table\nSELECT customer_id, sum(amount) AS total, count(*) AS n FROM latest GROUP BY 1",
		"marts/report.sql":      "-- materialized: table\nSELECT count(*) AS customers, sum(total) AS total FROM per_customer",
	}
	for k, v := range extra {
		m[k] = v
	}
	p, err := Load(context.Background(), []Root{files("sql", m)}, LoadOptions{Raw: []string{"raw.orders"}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runInc(t *testing.T, db *sql.DB, p *Project, lake *rawLake, runID string, full bool) map[string]ModelResult {
	t.Helper()
	res, err := (&Runner{DB: db, Raw: lake.inputs(), FullRefresh: full}).Run(context.Background(), runID, p.Models)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return byModel(res)
}

// rows returns a table's rows as text, sorted.
func rows(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var s sql.NullString
	if err := db.QueryRow(`SELECT string_agg(x::VARCHAR, '; ' ORDER BY x::VARCHAR) FROM (` + q + `) x`).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

// fromScratch builds the project on a new warehouse from the lake's files
// and returns each table's rows.
func fromScratch(t *testing.T, p *Project, lake *rawLake) map[string]string {
	t.Helper()
	db := emptyWarehouse(t)
	other := &rawLake{t: t, db: db, dir: lake.dir, files: lake.files}
	other.view()
	runInc(t, db, p, other, "scratch", false)
	out := map[string]string{}
	for _, m := range p.Models {
		out[m.Name] = rows(t, db, "SELECT * FROM "+m.Name)
	}
	return out
}

func sameAsScratch(t *testing.T, db *sql.DB, p *Project, lake *rawLake) {
	t.Helper()
	want := fromScratch(t, p, lake)
	for _, m := range p.Models {
		if got := rows(t, db, "SELECT * FROM "+m.Name); got != want[m.Name] {
			t.Errorf("%s after incremental runs:\n  %s\nfrom scratch:\n  %s", m.Name, got, want[m.Name])
		}
	}
}

func TestIncrementalMergeEqualsFullBuild(t *testing.T) {
	db, lake := newLake(t)
	p := incProject(t, nil)
	lake.add("1,a,10,1", "2,a,20,1", "3,b,30,1", "4,c,40,1")
	got := runInc(t, db, p, lake, "r1", false)
	if got["latest"].Status != Success || !strings.Contains(got["latest"].Notes, "full build") {
		t.Fatalf("first build: %+v", got["latest"])
	}
	v1 := got["per_customer"].Version

	// Nothing new: every model is up to date and keeps its version.
	got = runInc(t, db, p, lake, "r2", false)
	for _, m := range p.Models {
		if got[m.Name].Status != UpToDate {
			t.Errorf("rerun without new files: %s is %s (%s)", m.Name, got[m.Name].Status, got[m.Name].Notes)
		}
	}
	if got["per_customer"].Version != v1 {
		t.Errorf("an up-to-date model changed version: %s → %s", v1, got["per_customer"].Version)
	}

	// An update, a new line, a soft delete; then a late-arriving older
	// version of line 2 (must lose) and a delete of a line that returns.
	lake.add("2,a,25,5", "5,b,50,5", "3,b,30,6,true")
	got = runInc(t, db, p, lake, "r3", false)
	if n := got["latest"].Notes; !strings.Contains(n, "incremental: 1 new raw file(s); merged 3 rows") {
		t.Errorf("latest: notes %q, want an incremental merge of the 3 touched lines", n)
	}
	if got["per_customer"].Version == v1 {
		t.Error("per_customer kept its version although its input changed")
	}
	sameAsScratch(t, db, p, lake)
	lake.add("2,a,99,2", "3,b,31,3", "4,c,41,7,true")
	runInc(t, db, p, lake, "r4", false)
	if got := rows(t, db, "SELECT order_id, amount FROM latest"); got != "{'order_id': 1, 'amount': 10}; {'order_id': 2, 'amount': 25}; {'order_id': 5, 'amount': 50}" {
		t.Errorf("latest = %s; the older version of 2 or the deleted 3 came back", got)
	}
	sameAsScratch(t, db, p, lake)

	// An extract full refresh replaced the files: the next build is full.
	lake.replace("1,a,11,9", "7,d,70,9")
	got = runInc(t, db, p, lake, "r5", false)
	if n := got["latest"].Notes; !strings.Contains(n, "full build: raw.orders no longer has a file it read") {
		t.Errorf("after a refresh: notes %q", n)
	}
	sameAsScratch(t, db, p, lake)
}

func TestChangedDefinitionRebuildsItAndDescendants(t *testing.T) {
	db, lake := newLake(t)
	lake.add("1,a,10,1", "2,b,20,1")
	p := incProject(t, nil)
	runInc(t, db, p, lake, "r1", false)

	// A changed file rebuilds that model and what reads it, nothing else.
	p2 := incProject(t, map[string]string{
		"core/per_customer.sql": "-- materialized: table\nSELECT customer_id, sum(amount) AS total, count(*) AS n FROM latest WHERE amount > 0 GROUP BY 1",
	})
	got := runInc(t, db, p2, lake, "r2", false)
	for name, want := range map[string]Status{"latest": UpToDate, "per_customer": Success, "report": Success} {
		if got[name].Status != want {
			t.Errorf("after editing per_customer: %s is %s, want %s", name, got[name].Status, want)
		}
	}

	// --full-refresh rebuilds everything, the incremental model from scratch.
	got = runInc(t, db, p2, lake, "r3", true)
	for _, m := range p2.Models {
		if got[m.Name].Status != Success {
			t.Errorf("--full-refresh: %s is %s", m.Name, got[m.Name].Status)
		}
	}
	if !strings.Contains(got["latest"].Notes, "full build: --full-refresh") {
		t.Errorf("latest notes %q", got["latest"].Notes)
	}
	// Rebuilt from the same inputs, a model keeps its version: what reads
	// only it need not rebuild.
	again := runInc(t, db, p2, lake, "r4", false)
	if again["report"].Status != UpToDate || again["report"].Version != got["report"].Version {
		t.Errorf("after a full refresh: report %s version %s → %s", again["report"].Status, got["report"].Version, again["report"].Version)
	}
}

func TestChangedVarRebuildsModelsThatReadIt(t *testing.T) {
	db, lake := newLake(t)
	lake.add("1,a,10,1", "2,b,20,1")
	p := incProject(t, map[string]string{
		"marts/big.sql": "-- materialized: table\nSELECT * FROM per_customer WHERE total > {{ var('big', 15) }}",
	})
	run := func(id string, vars Vars) map[string]ModelResult {
		res, err := (&Runner{DB: db, Raw: lake.inputs(), Vars: vars}).Run(context.Background(), id, p.Models)
		if err != nil || res.Err() != nil {
			t.Fatal(err, res.Err())
		}
		return byModel(res)
	}
	run("r1", nil)
	got := run("r2", Vars{"big": "5"})
	for name, want := range map[string]Status{"latest": UpToDate, "per_customer": UpToDate, "report": UpToDate, "big": Success} {
		if got[name].Status != want {
			t.Errorf("after changing var big: %s is %s, want %s", name, got[name].Status, want)
		}
	}
	if n := rows(t, db, "SELECT count(*) FROM big"); n != "{'count_star()': 2}" {
		t.Errorf("big = %s", n)
	}
}

func TestEarlyCutoffKeepsVersionWhenContentIsUnchanged(t *testing.T) {
	db, lake := newLake(t)
	lake.add("1,a,10,1", "2,b,20,1")
	p := incProject(t, map[string]string{
		"core/customers_seen.sql": "-- materialized: table\n-- early_cutoff: true\nSELECT DISTINCT customer_id FROM latest",
		"marts/customer_list.sql": "-- materialized: table\nSELECT customer_id, 'known' AS status FROM customers_seen",
	})
	first := runInc(t, db, p, lake, "r1", false)
	lake.add("1,a,11,2") // same customers
	got := runInc(t, db, p, lake, "r2", false)
	if got["customers_seen"].Status != Success || got["customers_seen"].Version != first["customers_seen"].Version ||
		!strings.Contains(got["customers_seen"].Notes, "content unchanged") {
		t.Errorf("customers_seen: %s, version %s → %s, notes %q", got["customers_seen"].Status,
			first["customers_seen"].Version, got["customers_seen"].Version, got["customers_seen"].Notes)
	}
	if got["customer_list"].Status != UpToDate {
		t.Errorf("customer_list is %s; its only input kept its version", got["customer_list"].Status)
	}
	lake.add("9,z,1,3") // a new customer
	got = runInc(t, db, p, lake, "r3", false)
	if got["customers_seen"].Version == first["customers_seen"].Version || got["customer_list"].Status != Success {
		t.Errorf("a new customer: customers_seen version kept, customer_list %s", got["customer_list"].Status)
	}
	sameAsScratch(t, db, p, lake)
}

func TestVolatileModelsAlwaysRebuild(t *testing.T) {
	db, lake := newLake(t)
	lake.add("1,a,10,1")
	csv := filepath.Join(t.TempDir(), "targets.csv")
	if err := os.WriteFile(csv, []byte("customer_id,target\na,5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := incProject(t, map[string]string{
		"marts/stamped.sql":  "-- materialized: table\nSELECT *, current_date AS built_on FROM report",
		"marts/targets.sql":  "-- materialized: table\nSELECT * FROM read_csv('" + csv + "')",
		"marts/declared.sql": "-- materialized: table\n-- always_rebuild: true\nSELECT * FROM report",
		"marts/series.sql":   "-- materialized: table\nSELECT r.*, m FROM report r, range(1, 3) t(m)",
	})
	runInc(t, db, p, lake, "r1", false)
	got := runInc(t, db, p, lake, "r2", false)
	for name, want := range map[string]Status{"report": UpToDate, "series": UpToDate, "stamped": Success, "targets": Success, "declared": Success} {
		if got[name].Status != want {
			t.Errorf("rerun: %s is %s, want %s", name, got[name].Status, want)
		}
	}
}

func TestLostStateRowRebuildsTheModelAndWhatReadsIt(t *testing.T) {
	db, lake := newLake(t)
	lake.add("1,a,10,1", "2,b,20,1")
	p := incProject(t, nil)
	runInc(t, db, p, lake, "r1", false)
	// A run killed inside a Go model leaves its table rebuilt from new
	// inputs and its state row cleared (SQL models commit table and state
	// together). Here: new data, latest built, per_customer replaced and
	// its state gone, report not yet rebuilt.
	lake.add("3,c,30,2")
	sel, err := p.Select("latest")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := (&Runner{DB: db, Raw: lake.inputs()}).Run(context.Background(), "r2", sel); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	mustExec(t, db, `DELETE FROM cdw_model_state WHERE model = 'per_customer'`,
		`CREATE OR REPLACE TABLE per_customer AS SELECT customer_id, sum(amount) AS total, count(*) AS n FROM latest GROUP BY 1`)
	got := runInc(t, db, p, lake, "r3", false)
	for name, want := range map[string]Status{"latest": UpToDate, "per_customer": Success, "report": Success} {
		if got[name].Status != want {
			t.Errorf("after a lost state row: %s is %s, want %s", name, got[name].Status, want)
		}
	}
	sameAsScratch(t, db, p, lake)
}

func TestTestsOnUnchangedInputsAreNotRunAgain(t *testing.T) {
	db, lake := newLake(t)
	lake.add("1,a,10,1", "2,b,20,1")
	p := incProject(t, map[string]string{
		"core/per_customer.sql": "-- materialized: table\n-- tests: unique(customer_id), not_null(total)\nSELECT customer_id, sum(amount) AS total, count(*) AS n FROM latest GROUP BY 1",
		"marts/report.sql":      "-- materialized: table\n-- tests: accepted_values(customers, 1) warn\nSELECT count(*) AS customers, sum(total) AS total FROM per_customer",
	})
	tests := func(id string) map[string]TestStatus {
		t.Helper()
		res, err := (&Runner{DB: db, Raw: lake.inputs()}).Run(context.Background(), id, p.Models)
		if err != nil || res.Err() != nil {
			t.Fatal(err, res.Err())
		}
		out, err := (&TestRunner{DB: db, Versions: res.Versions}).Run(context.Background(), id, p.Tests)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]TestStatus{}
		for _, r := range out {
			m[r.Name] = r.Status
		}
		return m
	}
	uniq, warn := "per_customer: unique(customer_id)", "report: accepted_values(customers, 1)"
	if got := tests("r1"); got[uniq] != TestPass || got[warn] != TestWarn {
		t.Fatalf("first run: %v", got)
	}
	// Nothing changed: the pass is not repeated, the warning is.
	if got := tests("r2"); got[uniq] != TestUpToDate || got[warn] != TestWarn {
		t.Errorf("rerun: %v", got)
	}
	lake.add("3,c,5,2")
	if got := tests("r3"); got[uniq] != TestPass {
		t.Errorf("after new data: %v", got)
	}
	// Without versions (cdw test), everything runs.
	out, err := (&TestRunner{DB: db}).Run(context.Background(), "r4", p.Tests)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out {
		if r.Status == TestUpToDate {
			t.Errorf("cdw test skipped %s", r.Name)
		}
	}
}

func TestIncrementalTemplating(t *testing.T) {
	m := &Model{Name: "m", File: "m.sql", SQL: `SELECT 1
{% if is_incremental() %}
  , 'inc' AS mode,
  {{ this }} AS me
{% else %}
  , 'full' AS mode
{% endif %}
FROM {{ new_rows('raw.orders') }} WHERE {{ is_incremental() }} OR true
{% if not is_incremental() %}-- full only{% endif %}`}
	full, err := Render(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantFull := "SELECT 1\n\n  , 'full' AS mode\n\nFROM raw.orders WHERE False OR true\n-- full only"
	if full != wantFull {
		t.Errorf("full render:\n%q\nwant\n%q", full, wantFull)
	}
	inc, err := render(m, nil, &increment{newFiles: map[string][]string{"raw.orders": {"/w/a'1.parquet", "/w/b.parquet"}}})
	if err != nil {
		t.Fatal(err)
	}
	wantInc := "SELECT 1\n\n  , 'inc' AS mode,\n  \"m\" AS me\n\nFROM (SELECT * FROM raw.orders WHERE _file IN ('/w/a''1.parquet', '/w/b.parquet')) WHERE True OR true\n"
	if inc != wantInc {
		t.Errorf("incremental render:\n%q\nwant\n%q", inc, wantInc)
	}
	for sqlText, want := range map[string]string{
		"SELECT 1\n{% for x in y %}{% endfor %}":     `m.sql:2: template error: Unable to evaluate name "y"`,
		"SELECT * FROM {{ new_rows('stg_orders') }}": "new_rows reads a raw relation",
	} {
		if _, err := Render(&Model{Name: "m", File: "m.sql", SQL: sqlText}, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", sqlText, err, want)
		}
	}
}

func TestStatusesPredictTheNextRun(t *testing.T) {
	db, lake := newLake(t)
	lake.add("1,a,10,1", "2,b,20,1")
	p := incProject(t, map[string]string{
		"core/customers_seen.sql": "-- materialized: table\n-- early_cutoff: true\nSELECT DISTINCT customer_id FROM latest",
		"marts/customer_list.sql": "-- materialized: table\nSELECT customer_id FROM customers_seen",
	})
	status := func() map[string]ModelStatus {
		t.Helper()
		sts, err := Statuses(context.Background(), db, p.Models, nil, lake.inputs())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]ModelStatus{}
		for _, s := range sts {
			out[s.Model] = s
		}
		return out
	}
	if s := status()["report"]; s.UpToDate || s.Why != "no earlier build on record" {
		t.Errorf("before any run: %+v", s)
	}
	runInc(t, db, p, lake, "r1", false)
	for name, s := range status() {
		if !s.UpToDate || s.BuiltAt.IsZero() {
			t.Errorf("after a run: %s %+v", name, s)
		}
	}
	lake.add("1,a,11,2")
	got := status()
	for name, want := range map[string]string{
		"latest":        "inputs changed: raw.orders",
		"per_customer":  "inputs changed: latest",
		"report":        "inputs changed: per_customer",
		"customer_list": "only if the content of customers_seen changes",
	} {
		if got[name].UpToDate || got[name].Why != want {
			t.Errorf("after a new file: %s: %+v, want %q", name, got[name], want)
		}
	}
	if !got["customer_list"].Maybe {
		t.Errorf("customer_list: %+v, want Maybe", got["customer_list"])
	}
	// What the run then does matches.
	res := runInc(t, db, p, lake, "r2", false)
	if res["customer_list"].Status != UpToDate || res["report"].Status != Success {
		t.Errorf("run: customer_list %s, report %s", res["customer_list"].Status, res["report"].Status)
	}
}

// TestRebuildOnInputBuildsInFull: an incremental model merges only what
// new raw rows touch, unless an input named in rebuild_on has a new
// version; then it builds in full, so rows no raw file touched follow it.
func TestRebuildOnInputBuildsInFull(t *testing.T) {
	db, lake := newLake(t)
	p := incProject(t, map[string]string{
		"core/labels.sql": "-- materialized: table\nSELECT 'a' AS customer_id, {{ var('label', 'x') }} AS label",
		"core/labeled.sql": `-- materialized: incremental
-- unique_key: order_id
-- rebuild_on: labels
WITH touched AS (SELECT DISTINCT order_id FROM {{ new_rows('raw.orders') }})
SELECT l.order_id, coalesce(b.label, '-') AS label
FROM latest l
LEFT JOIN labels b USING (customer_id)
{% if is_incremental() %}
SEMI JOIN touched USING (order_id)
{% endif %}
`,
	})
	run := func(runID, label string) map[string]ModelResult {
		t.Helper()
		res, err := (&Runner{DB: db, Raw: lake.inputs(), Vars: Vars{"label": label}}).Run(context.Background(), runID, p.Models)
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		return byModel(res)
	}
	lake.add("1,a,10,1", "2,b,20,1")
	run("r1", "x")
	lake.add("3,a,30,2")
	if n := run("r2", "x")["labeled"].Notes; !strings.Contains(n, "incremental: 1 new raw file(s)") {
		t.Errorf("labels unchanged: labeled %q, want an incremental merge", n)
	}
	// No new raw rows, but the labels changed: only a full build relabels
	// orders 1 and 3.
	if n := run("r3", "y")["labeled"].Notes; !strings.Contains(n, "full build: labels (rebuild_on) changed") {
		t.Errorf("labels changed: labeled %q, want a full build", n)
	}
	if got, want := rows(t, db, "SELECT order_id, label FROM labeled"), "{'order_id': 1, 'label': y}; {'order_id': 2, 'label': -}; {'order_id': 3, 'label': y}"; got != want {
		t.Errorf("labeled = %s, want %s", got, want)
	}
}

// TestIncrementalInputBuiltInFull: when an incremental input is built in
// full (here its definition changed, with no new raw files), a model that
// merges only what new raw rows touch builds in full too.
func TestIncrementalInputBuiltInFull(t *testing.T) {
	db, lake := newLake(t)
	copySQL := `-- materialized: incremental
-- unique_key: order_id
WITH touched AS (SELECT DISTINCT order_id FROM {{ new_rows('raw.orders') }})
SELECT l.order_id, l.amount
FROM latest l
{% if is_incremental() %}
SEMI JOIN touched USING (order_id)
{% endif %}
`
	p := incProject(t, map[string]string{"core/copied.sql": copySQL})
	lake.add("1,a,10,1", "2,b,20,1")
	runInc(t, db, p, lake, "r1", false)
	lake.add("3,a,30,2")
	if n := runInc(t, db, p, lake, "r2", false)["copied"].Notes; !strings.Contains(n, "incremental: 1 new raw file(s)") {
		t.Errorf("copied after new rows: %q, want an incremental merge", n)
	}
	// latest's definition changes every amount; no raw file is new.
	p = incProject(t, map[string]string{"core/copied.sql": copySQL,
		"staging/latest.sql": strings.Replace(latestSQL, "SELECT order_id, customer_id, amount,", "SELECT order_id, customer_id, amount * 2 AS amount,", 1)})
	got := runInc(t, db, p, lake, "r3", false)
	if n := got["copied"].Notes; !strings.Contains(n, "full build: latest was built in full") {
		t.Errorf("copied after latest was rebuilt: %q, want a full build", n)
	}
	if got, want := rows(t, db, "SELECT order_id, amount FROM copied"), rows(t, db, "SELECT order_id, amount FROM latest"); got != want || !strings.Contains(got, "'amount': 60") {
		t.Errorf("copied = %s, latest = %s", got, want)
	}
}
