package transform

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/duckdb/duckdb-go/v2"
)

func TestRunFailureStopsDescendantsOnly(t *testing.T) {
	db := warehouse(t)
	p := load(t, files("sql", map[string]string{
		"staging/stg.sql": "-- materialized: table\nSELECT * FROM raw.orders",
		// Line 4 names a column that does not exist.
		"core/bad.sql":  "-- materialized: table\n-- description: broken on purpose\nSELECT customer_id,\n       amount_typo * 2 AS x\nFROM stg",
		"core/good.sql": "-- materialized: table\nSELECT customer_id, count(*) AS n FROM stg GROUP BY 1",
		"marts/m.sql":   "SELECT * FROM bad",
		"marts/m2.sql":  "SELECT * FROM m JOIN good USING (customer_id)",
		"marts/ok.sql":  "SELECT * FROM good",
	}))
	res, err := (&Runner{DB: db, Workers: 2}).Run(context.Background(), "r1", p.Models)
	if err != nil {
		t.Fatal(err)
	}
	got := byModel(res)
	for name, want := range map[string]Status{"stg": Success, "good": Success, "ok": Success, "bad": Failed, "m": Skipped, "m2": Skipped} {
		if got[name].Status != want {
			t.Errorf("%s: status %s, want %s (%v)", name, got[name].Status, want, got[name].Err)
		}
	}
	if got["good"].Rows != 7 || got["ok"].Rows != -1 {
		t.Errorf("rows: good=%d ok=%d, want 7 and -1 (view)", got["good"].Rows, got["ok"].Rows)
	}
	msg := got["bad"].Err.Error()
	for _, w := range []string{"sql/core/bad.sql:4:", `"amount_typo"`, "4 | amount_typo * 2 AS x"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
	var me *ModelError
	if !errors.As(got["bad"].Err, &me) || me.Line != 4 {
		t.Errorf("want a ModelError at line 4, got %#v", got["bad"].Err)
	}
	if !strings.Contains(got["m2"].Err.Error(), "skipped because bad failed") {
		t.Errorf("m2 error = %v", got["m2"].Err)
	}
	if res.Err() == nil {
		t.Error("RunResult.Err() = nil with a failed model")
	}
	// The run is recorded and queryable.
	var n int
	var sel sql.NullString
	if err := db.QueryRow(`SELECT count(*), any_value(selection) FROM cdw_model_runs WHERE run_id = 'r1' AND status = 'skipped'`).Scan(&n, &sel); err != nil || n != 2 {
		t.Errorf("cdw_model_runs skipped rows = %d (%v)", n, err)
	}
}

func TestRunSelectionIsRecorded(t *testing.T) {
	db := warehouse(t)
	p := load(t, files("sql", map[string]string{"a.sql": "SELECT * FROM raw.orders", "b.sql": "SELECT * FROM a"}))
	sel, _ := p.Select("b")
	// b alone reads a, which does not exist yet: a partial selection relies on the warehouse.
	res, _ := (&Runner{DB: db, Selection: "b"}).Run(context.Background(), "r1", sel)
	if res.Models[0].Status != Failed {
		t.Fatalf("b without a: %s", res.Models[0].Status)
	}
	sel, _ = p.Select("+b")
	if _, err := (&Runner{DB: db, Selection: "+b"}).Run(context.Background(), "r2", sel); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.QueryRow(`SELECT string_agg(model || ':' || status || ':' || selection, ' ' ORDER BY recorded_at, model) FROM cdw_model_runs`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "b:error:b a:success:+b b:success:+b" {
		t.Errorf("cdw_model_runs = %q", got)
	}
}

// A wide DAG built by several workers must give the same tables as one worker.
func TestRunConcurrentMatchesSequential(t *testing.T) {
	m := map[string]string{"base.sql": "-- materialized: table\nSELECT * FROM raw.orders"}
	for i := 0; i < 12; i++ {
		m[fmt.Sprintf("w%02d.sql", i)] = fmt.Sprintf("-- materialized: table\nSELECT customer_id, sum(amount) * %d AS v FROM base GROUP BY 1", i+1)
		m[fmt.Sprintf("v%02d.sql", i)] = fmt.Sprintf("SELECT * FROM w%02d", i)
	}
	m["top.sql"] = "-- materialized: table\nSELECT " + func() string {
		var s []string
		for i := 0; i < 12; i++ {
			s = append(s, fmt.Sprintf("(SELECT sum(v) FROM v%02d)", i))
		}
		return strings.Join(s, " + ")
	}() + " AS total"
	p := load(t, files("sql", m))
	var totals []float64
	for _, workers := range []int{1, 4} {
		db := warehouse(t)
		res, err := (&Runner{DB: db, Workers: workers}).Run(context.Background(), "r", p.Models)
		if err != nil || res.Err() != nil {
			t.Fatalf("workers=%d: %v %v", workers, err, res.Err())
		}
		var total float64
		if err := db.QueryRow("SELECT total FROM top").Scan(&total); err != nil {
			t.Fatal(err)
		}
		totals = append(totals, total)
	}
	// sum(amount) = 1.5 * 5050; times 1+…+12 = 78.
	if want := 1.5 * 5050 * 78; totals[0] != want || totals[1] != want {
		t.Errorf("totals = %v, want %v", totals, want)
	}
}

func TestIncrementalMerge(t *testing.T) {
	db := warehouse(t)
	p := load(t, files("sql", map[string]string{"inc.sql": "-- materialized: incremental\n-- unique_key: order_id\n" +
		"SELECT order_id, amount, updated_at FROM raw.orders WHERE updated_at >= (SELECT max(updated_at) FROM raw.orders) - INTERVAL 10 HOUR"}))
	r := &Runner{DB: db}
	run := func() string {
		t.Helper()
		res, err := r.Run(context.Background(), "r", p.Models)
		if err != nil || res.Err() != nil {
			t.Fatalf("run: %v %v", err, res.Err())
		}
		var s string
		if err := db.QueryRow("SELECT count(*) || '/' || count(DISTINCT order_id) || '/' || sum(amount) FROM inc").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := run()
	if first != "11/11/1567.5" { // orders 90..100: 1.5 × 1045
		t.Errorf("first build = %s", first)
	}
	if again := run(); again != first {
		t.Errorf("rerun changed the table: %s then %s", first, again)
	}
	// New rows and an update to an existing key: merged, not duplicated.
	mustExec(t, db, "UPDATE raw.orders SET amount = 0, updated_at = TIMESTAMP '2024-02-01' WHERE order_id = 100",
		"INSERT INTO raw.orders SELECT 101, 'c1', 1000, DATE '2024-01-01', TIMESTAMP '2024-02-01'")
	// The new window holds only 100 and 101: 90..99 stay (1417.5), 100 is replaced by 0, 101 added.
	if got := run(); got != "12/12/2417.5" {
		t.Errorf("after merge = %s, want 12/12/2417.5", got)
	}
	var amt float64
	if err := db.QueryRow("SELECT amount FROM inc WHERE order_id = 100").Scan(&amt); err != nil || amt != 0 {
		t.Errorf("order 100 amount = %v (%v), want the updated 0", amt, err)
	}
}

func TestIncrementalPartitionOverwrite(t *testing.T) {
	db := warehouse(t)
	p := load(t, files("sql", map[string]string{"daily.sql": "-- materialized: incremental\n-- partition_by: order_date\n" +
		"SELECT order_date, count(*) AS orders, sum(amount) AS revenue FROM raw.orders\n" +
		"WHERE order_date >= (SELECT max(order_date) FROM raw.orders) - 1 GROUP BY 1"}))
	r := &Runner{DB: db}
	state := func() string {
		var s string
		if err := db.QueryRow("SELECT string_agg(order_date || '=' || orders, ' ' ORDER BY order_date) FROM daily").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for i := 0; i < 2; i++ {
		if res, err := r.Run(context.Background(), "r", p.Models); err != nil || res.Err() != nil {
			t.Fatal(err, res.Err())
		}
	}
	if got := state(); got != "2024-01-02=34 2024-01-03=33" {
		t.Errorf("after two runs = %s", got)
	}
	// A new day arrives: the window moves to 01-03..01-04; 01-02 stays as built.
	mustExec(t, db, "INSERT INTO raw.orders SELECT 200 + i, 'c', 1, DATE '2024-01-04', now() FROM range(5) t(i)")
	if res, err := r.Run(context.Background(), "r", p.Models); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	if got := state(); got != "2024-01-02=34 2024-01-03=33 2024-01-04=5" {
		t.Errorf("after a new day = %s", got)
	}
}

// double is a Go function that SQL models call as go_double(x).
type double struct{}

func (double) Config() duckdb.ScalarFuncConfig {
	ti, _ := duckdb.NewTypeInfo(duckdb.TYPE_DOUBLE)
	return duckdb.ScalarFuncConfig{InputTypeInfos: []duckdb.TypeInfo{ti}, ResultTypeInfo: ti}
}

func (double) Executor() duckdb.ScalarFuncExecutor {
	return duckdb.ScalarFuncExecutor{RowExecutor: func(v []driver.Value) (any, error) { return v[0].(float64) * 2, nil }}
}

func TestGoFunctionInModels(t *testing.T) {
	RegisterFunctions("test_double", func(conn *sql.Conn) error {
		return duckdb.RegisterScalarUDF(conn, "go_double", double{})
	})
	t.Cleanup(func() { goMu.Lock(); delete(functions, "test_double"); goMu.Unlock() })
	m := map[string]string{}
	for i := 0; i < 6; i++ { // several independent models, so several workers call it
		m[fmt.Sprintf("u%d.sql", i)] = fmt.Sprintf("-- materialized: table\nSELECT sum(go_double(amount + %d)) AS v FROM raw.orders", i)
	}
	p := load(t, files("sql", m))
	db := warehouse(t)
	res, err := (&Runner{DB: db, Workers: 3}).Run(context.Background(), "r", p.Models)
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	for i := 0; i < 6; i++ {
		var v float64
		if err := db.QueryRow(fmt.Sprintf("SELECT v FROM u%d", i)).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if want := 2 * (1.5*5050 + float64(100*i)); v != want {
			t.Errorf("u%d = %v, want %v", i, v, want)
		}
	}
}

func TestPartitionOverwriteReplacesTheNullPartition(t *testing.T) {
	db := warehouse(t)
	mustExec(t, db, "CREATE TABLE raw.shop_orders AS SELECT * FROM (VALUES ('north', 1), (NULL, 2), (NULL, 3)) v(region, amount)")
	p := load(t, files("sql", map[string]string{"by_region.sql": "-- materialized: incremental\n-- partition_by: region\n" +
		"SELECT region, count(*) AS orders, sum(amount) AS revenue FROM raw.shop_orders GROUP BY 1"}))
	r := &Runner{DB: db}
	for i := 0; i < 3; i++ { // raw.shop_orders is not described: every run merges
		res, err := r.Run(context.Background(), "r", p.Models)
		if err != nil || res.Err() != nil {
			t.Fatal(err, res.Err())
		}
		if i > 0 && !strings.Contains(res.Models[0].Notes, "merged") {
			t.Fatalf("run %d did not merge: %+v", i, res.Models[0])
		}
	}
	var rows, nulls int
	if err := db.QueryRow("SELECT count(*), count(*) FILTER (WHERE region IS NULL) FROM by_region").Scan(&rows, &nulls); err != nil {
		t.Fatal(err)
	}
	if rows != 2 || nulls != 1 {
		t.Errorf("after three merges: %d rows, %d in the NULL partition; want 2 and 1", rows, nulls)
	}
}

func TestMaterializationChangesJustWork(t *testing.T) {
	db := warehouse(t)
	kind := func() string {
		var k string
		if err := db.QueryRow("SELECT table_type FROM information_schema.tables WHERE table_name = 'm'").Scan(&k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	for i, c := range []struct {
		header string
		full   bool
		want   string
	}{
		{"-- materialized: view", false, "VIEW"},
		{"-- materialized: table", false, "BASE TABLE"},
		{"-- materialized: view", false, "VIEW"},
		{"-- materialized: incremental\n-- unique_key: order_id", false, "BASE TABLE"},
		{"-- materialized: view", true, "VIEW"},
		{"{{ config(materialized='incremental', unique_key='order_id') }}", true, "BASE TABLE"},
		{"-- materialized: view", false, "VIEW"},
	} {
		p := load(t, files("sql", map[string]string{"m.sql": c.header + "\nSELECT order_id, amount FROM raw.orders",
			"after.sql": "-- materialized: table\nSELECT count(*) AS n FROM m"}))
		res, err := (&Runner{DB: db, FullRefresh: c.full}).Run(context.Background(), fmt.Sprint(i), p.Models)
		if err != nil || res.Err() != nil {
			t.Fatalf("step %d (%s, full refresh %v): %v %v", i, c.header, c.full, err, res.Err())
		}
		if got := kind(); got != c.want {
			t.Errorf("step %d: m is a %s, want %s", i, got, c.want)
		}
		var n int
		if err := db.QueryRow("SELECT n FROM after").Scan(&n); err != nil || n != 100 {
			t.Errorf("step %d: after = %d (%v)", i, n, err)
		}
	}
}
