package transform

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestDataTests(t *testing.T) {
	db := warehouse(t)
	p := load(t, files("sql", map[string]string{
		"core/cust.sql": "-- materialized: table\n" +
			"-- tests: unique(customer_id), not_null(customer_id), accepted_values(tier, 'gold', 'silver')\n" +
			"SELECT DISTINCT customer_id, CASE WHEN customer_id < 'c3' THEN 'gold' ELSE 'silver' END AS tier FROM raw.orders",
		"core/bad.sql": "-- materialized: table\n" +
			"-- tests: unique(k), not_null(k, v) warn, accepted_values(v, 'a', 'b'), relationships(customer_id, cust.customer_id),\n" +
			"--   unique(k, v)\n" +
			"SELECT * FROM (VALUES (1, 'a', 'c1'), (1, 'z', 'c1'), (NULL, NULL, 'c99'), (2, 'b', NULL)) t(k, v, customer_id)",
		"marts/good.sql":                "-- tests: relationships(customer_id, cust.customer_id), unique(order_id)\nSELECT * FROM raw.orders",
		"tests/no_negative_amounts.sql": "-- description: amounts are never negative\nSELECT * FROM good WHERE amount < 0",
		"tests/big_orders.sql":          "-- severity: warn\nSELECT * FROM {{ ref('good') }} WHERE amount > 140",
	}))
	if res, err := (&Runner{DB: db}).Run(context.Background(), "r", p.Models); err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	results, err := (&TestRunner{DB: db}).Run(context.Background(), "r", p.Tests)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]TestResult{}
	for _, r := range results {
		got[r.Name] = r
	}
	want := map[string]struct {
		status TestStatus
		fails  int64
	}{
		"cust: unique(customer_id)":                          {TestPass, 0},
		"cust: not_null(customer_id)":                        {TestPass, 0},
		"cust: accepted_values(tier, 'gold', 'silver')":      {TestPass, 0},
		"bad: unique(k)":                                     {TestFail, 1}, // k=1 twice; NULL ignored
		"bad: not_null(k, v)":                                {TestWarn, 1},
		"bad: accepted_values(v, 'a', 'b')":                  {TestFail, 1}, // 'z'
		"bad: relationships(customer_id, cust.customer_id)":  {TestFail, 1}, // c99
		"bad: unique(k, v)":                                  {TestPass, 0},
		"good: relationships(customer_id, cust.customer_id)": {TestPass, 0},
		"good: unique(order_id)":                             {TestPass, 0},
		"no_negative_amounts":                                {TestPass, 0},
		"big_orders":                                         {TestWarn, 7}, // amount = 1.5 i > 140 → i ≥ 94
	}
	if len(got) != len(want) {
		t.Errorf("ran %d tests, want %d: %v", len(got), len(want), results)
	}
	for name, w := range want {
		r, ok := got[name]
		if !ok {
			t.Errorf("test %q did not run", name)
			continue
		}
		if r.Status != w.status || r.Failures != w.fails {
			t.Errorf("%s: %s with %d failing rows (%v), want %s with %d", name, r.Status, r.Failures, r.Err, w.status, w.fails)
		}
	}
	if s := got["bad: accepted_values(v, 'a', 'b')"].Sample; !strings.Contains(s, "value=z") {
		t.Errorf("sample = %q, want the bad value", s)
	}
	err = TestsErr(results)
	if err == nil || !strings.Contains(err.Error(), "bad: unique(k) (sql/core/bad.sql): 1 failing rows") || strings.Contains(err.Error(), "big_orders") {
		t.Errorf("TestsErr = %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM cdw_test_runs WHERE status = 'fail'").Scan(&n); err != nil || n != 3 {
		t.Errorf("cdw_test_runs fail rows = %d (%v)", n, err)
	}
	// Selecting a model selects its header tests and the test files reading it.
	sel, _ := p.Select("good")
	var ts []string
	for _, t := range p.TestsFor(sel) {
		ts = append(ts, t.Name)
	}
	if got := strings.Join(ts, "; "); got != "good: relationships(customer_id, cust.customer_id); good: unique(order_id); big_orders; no_negative_amounts" {
		t.Errorf("TestsFor(good) = %s", got)
	}
}

func TestDataTestOnMissingModel(t *testing.T) {
	db := warehouse(t)
	p := load(t, files("sql", map[string]string{"a.sql": "-- tests: unique(order_id)\nSELECT * FROM raw.orders"}))
	results, err := (&TestRunner{DB: db}).Run(context.Background(), "r", p.Tests)
	if err != nil {
		t.Fatal(err)
	}
	if r := results[0]; r.Status != TestError || !strings.Contains(r.Err.Error(), "Table with name a does not exist") || !r.Blocking() {
		t.Errorf("result = %+v", r)
	}
}

func TestFreshness(t *testing.T) {
	db := warehouse(t) // newest raw.orders updated_at: 2024-01-01 + 100h = 2024-01-05 04:00 UTC
	mustExec(t, db, "CREATE TABLE raw.tickets (ticket_id VARCHAR, created_at TIMESTAMP, updated_at TIMESTAMP)")
	newest := time.Date(2024, 1, 5, 4, 0, 0, 0, time.UTC)
	rules := map[string]Freshness{
		"orders":  {WarnAfter: 24 * time.Hour, ErrorAfter: 72 * time.Hour},
		"tickets": {WarnAfter: time.Hour},
	}
	for _, c := range []struct {
		age     time.Duration
		orders  TestStatus
		tickets TestStatus
	}{{time.Hour, TestPass, TestWarn}, {30 * time.Hour, TestWarn, TestWarn}, {80 * time.Hour, TestFail, TestWarn}} {
		res, err := CheckFreshness(context.Background(), db, rules, newest.Add(c.age))
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Name != "freshness(raw.orders)" || res[0].Status != c.orders || res[1].Status != c.tickets {
			t.Errorf("age %s: %s=%s %s=%s, want %s and %s (%s)", c.age, res[0].Name, res[0].Status, res[1].Name, res[1].Status, c.orders, c.tickets, res[0].Sample)
		}
	}
	res, _ := CheckFreshness(context.Background(), db, map[string]Freshness{"contacts": {ErrorAfter: time.Hour}}, newest)
	if res[0].Status != TestError || !strings.Contains(res[0].Err.Error(), "raw.contacts does not exist") {
		t.Errorf("missing entity: %+v", res[0])
	}
}

func TestSelectionRunsOnlyTestsOfSelectedModels(t *testing.T) {
	p := load(t, files("sql", map[string]string{
		"a.sql":          "-- tests: not_null(x)\nSELECT 1 AS x",
		"b.sql":          "SELECT 1 AS x",
		"tests/a_b.sql":  "SELECT * FROM a JOIN b USING (x) WHERE false",
		"tests/raw.sql":  "SELECT * FROM a JOIN raw.orders ON false",
		"tests/only.sql": "SELECT * FROM b WHERE false",
	}))
	names := func(ms ...string) string {
		var sel []*Model
		for _, n := range ms {
			m, _ := p.Model(n)
			sel = append(sel, m)
		}
		var out []string
		for _, t := range p.TestsFor(sel) {
			out = append(out, t.Name)
		}
		return strings.Join(out, ", ")
	}
	if got := names("a"); got != "a: not_null(x), raw" {
		t.Errorf("tests for a = %q; a_b reads b, which was not selected", got)
	}
	if got := names("a", "b"); got != "a: not_null(x), a_b, only, raw" {
		t.Errorf("tests for a, b = %q", got)
	}
}
