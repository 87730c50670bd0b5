package transform

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdwhq/cdw/internal/duck"
)

// TestDBTProjectRunsUnchanged loads testdata/jaffle, a dbt project in dbt's
// layout using seeds (with column_types), a macro, {% set %} and {% for %},
// config(), folder config from dbt_project.yml, var, env_var, target, log,
// an incremental model with is_incremental() and this, schema.yml
// descriptions and generic tests (severity, where) and a singular test. Its
// tables must equal the same logic written directly in DuckDB, both ways
// (EXCEPT ALL), after a full build and after an incremental one.
func TestDBTProjectRunsUnchanged(t *testing.T) {
	t.Setenv("JAFFLE_REGION", "us") // read when the project loads, as dbt reads env_var at parse
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "jaffle"))); err != nil {
		t.Fatal(err)
	}
	proj, err := LoadDBTProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(context.Background(), proj.Roots(), LoadOptions{Vars: proj.Vars, NoBuiltins: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(p.Models); got != "raw_orders stg_orders raw_payments stg_payments orders raw_customers stg_customers customers order_days" {
		t.Errorf("models in order: %s", got)
	}
	for name, want := range map[string]Materialization{"stg_orders": View, "stg_payments": Table, "orders": Table, "order_days": Incremental, "raw_orders": Table} {
		if m, _ := p.Model(name); m.Header.Materialized != want {
			t.Errorf("%s is %s, want %s", name, m.Header.Materialized, want)
		}
	}
	if m, _ := p.Model("orders"); strings.Join(m.Header.Tags, ",") != "mart" || m.Header.Description != "One row per order, with its payments by method." {
		t.Errorf("orders: tags %v, description %q", m.Header.Tags, m.Header.Description)
	}
	if m, _ := p.Model("customers"); len(m.Header.Columns) != 2 || m.Header.Columns[0].Description != "The customer's id in the shop." {
		t.Errorf("customers columns = %+v", m.Header.Columns)
	}
	if m, _ := p.Model("orders"); len(m.Header.Columns) < 1 || m.Header.Columns[0].Name != "status" ||
		!strings.HasPrefix(m.Header.Columns[0].Description, "Orders can be one of: placed") {
		t.Errorf("orders.status: the {{ doc() }} block was not used: %+v", m.Header.Columns)
	}
	db := emptyWarehouse(t)
	r := &Runner{DB: db, Vars: proj.Vars}
	res, err := r.Run(context.Background(), "r1", p.Models)
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}

	seed := func(f string) string { return duck.Literal(filepath.Join(dir, "seeds", f)) }
	expected := map[string]string{
		"raw_orders": "SELECT id, user_id, order_date::DATE AS order_date, status FROM read_csv(" + seed("raw_orders.csv") + ", header = true)",
		"stg_payments": "SELECT id AS payment_id, order_id, payment_method, round(amount / 100.0, 2) AS amount FROM read_csv(" +
			seed("raw_payments.csv") + ", header = true) WHERE amount >= 0",
		"orders": `WITH p AS (SELECT order_id,
				sum(CASE WHEN payment_method = 'credit_card' THEN amount ELSE 0 END) AS cc,
				sum(CASE WHEN payment_method = 'coupon' THEN amount ELSE 0 END) AS co,
				sum(CASE WHEN payment_method = 'bank_transfer' THEN amount ELSE 0 END) AS bt,
				sum(CASE WHEN payment_method = 'gift_card' THEN amount ELSE 0 END) AS gc,
				sum(amount) AS total
			FROM (SELECT order_id, payment_method, round(amount / 100.0, 2) AS amount FROM read_csv(` + seed("raw_payments.csv") + `, header = true)) GROUP BY 1)
			SELECT o.id, o.user_id, o.order_date::DATE, o.status, coalesce(cc, 0), coalesce(co, 0), coalesce(bt, 0), coalesce(gc, 0),
				coalesce(total, 0), coalesce(total, 0) >= 30
			FROM read_csv(` + seed("raw_orders.csv") + `, header = true) o LEFT JOIN p ON p.order_id = o.id`,
		"customers": `SELECT c.id, c.first_name, c.last_name, min(o.order_date), max(o.order_date), count(o.order_id), sum(o.amount), 'US', 'duckdb'
			FROM read_csv(` + seed("raw_customers.csv") + `, header = true) c LEFT JOIN orders o ON o.customer_id = c.id
			GROUP BY ALL`,
		"order_days": "SELECT order_date, count(*), sum(amount) FROM orders GROUP BY 1",
	}
	same := func(step string) {
		t.Helper()
		for name, q := range expected {
			for _, dir := range []string{"SELECT * FROM " + name + " EXCEPT ALL (" + q + ")", "(" + q + ") EXCEPT ALL SELECT * FROM " + name} {
				var n int
				if err := db.QueryRow("SELECT count(*) FROM (" + dir + ")").Scan(&n); err != nil {
					t.Fatalf("%s: %s: %v", step, name, err)
				}
				if n != 0 {
					t.Errorf("%s: %s differs from direct DuckDB SQL in %d rows (%s)", step, name, n, dir)
				}
			}
		}
	}
	same("full build")

	tests, err := (&TestRunner{DB: db}).Run(context.Background(), "r1", p.TestsFor(p.Models))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]TestStatus{}
	for _, tr := range tests {
		got[tr.Name] = tr.Status
	}
	for name, want := range map[string]TestStatus{
		"customers: unique(customer_id)":                                                                       TestPass,
		"orders: relationships(customer_id, customers.customer_id)":                                            TestPass,
		"orders: not_null(amount) where status <> 'placed'":                                                    TestPass,
		"stg_payments: accepted_values(payment_method, 'credit_card', 'coupon', 'bank_transfer', 'gift_card')": TestWarn, // bitcoin
		"assert_order_amount_not_negative":                                                                     TestPass,
	} {
		if got[name] != want {
			t.Errorf("test %s: %s, want %s (all: %v)", name, got[name], want, got)
		}
	}
	if len(tests) != 10 {
		t.Errorf("%d tests ran, want 10: %v", len(tests), got)
	}

	// Nothing changed: everything is up to date. A new order arrives in the
	// seed: the seed, what reads it, and order_days (merged) rebuild.
	res, err = r.Run(context.Background(), "r2", p.Models)
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	for _, m := range res.Models {
		if m.Status != UpToDate {
			t.Errorf("second run: %s is %s", m.Model, m.Status)
		}
	}
	appendLine := func(f, line string) {
		t.Helper()
		fh, err := os.OpenFile(filepath.Join(dir, "seeds", f), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		if _, err := fh.WriteString(line + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	appendLine("raw_orders.csv", "12,2,2018-01-15,completed")
	appendLine("raw_payments.csv", "13,12,gift_card,4200")
	if p, err = Load(context.Background(), proj.Roots(), LoadOptions{Vars: proj.Vars, NoBuiltins: true}); err != nil {
		t.Fatal(err)
	}
	res, err = r.Run(context.Background(), "r3", p.Models)
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	status := map[string]string{}
	for _, m := range res.Models {
		status[m.Model] = string(m.Status) + " " + m.Notes
	}
	for name, want := range map[string]string{"raw_orders": "success definition changed", "raw_customers": "up-to-date",
		"order_days": "success incremental: 0 new raw file(s); merged 2 rows"} { // 01-14 and the new 01-15
		if strings.TrimSpace(status[name]) != want {
			t.Errorf("after new seed rows: %s is %q, want %q", name, status[name], want)
		}
	}
	same("after an incremental build")
}

func TestSourceFreshnessFromProperties(t *testing.T) {
	sf, err := parseSchemaFile("models/sources.yml", []byte(`version: 2
sources:
  - name: shop
    loaded_at_field: updated_at
    freshness:
      warn_after: {count: 12, period: hour}
    tables:
      - name: orders
        freshness:
          warn_after: {count: 1, period: hour}
          error_after: {count: 1, period: day}
      - name: tickets
        loaded_at_field: created_at
      - name: contacts
        freshness: null
`))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := sf.sourceFreshness()
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 || rules[0].Relation != "raw.shop_orders" || rules[0].Rule.ErrorAfter != 24*time.Hour ||
		rules[1].Column != "created_at" || rules[1].Rule.WarnAfter != 12*time.Hour {
		t.Fatalf("rules = %+v", rules)
	}
	db := warehouse(t)
	mustExec(t, db, "CREATE TABLE raw.shop_orders AS SELECT TIMESTAMPTZ '2024-01-01 10:00:00+00' AS updated_at",
		"CREATE TABLE raw.shop_tickets AS SELECT NULL::TIMESTAMPTZ AS created_at")
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC) // orders 2 h old: warn, not error
	got := CheckSourceFreshness(context.Background(), db, rules, now)
	if got[0].Name != "freshness(source shop.orders)" || got[0].Status != TestWarn || got[1].Status != TestWarn {
		t.Errorf("results = %+v", got)
	}
	if got := CheckSourceFreshness(context.Background(), db, rules, now.Add(48*time.Hour)); got[0].Status != TestFail {
		t.Errorf("two days later: %s, want fail", got[0].Status)
	}
	// A bad rule names the file.
	bad, _ := parseSchemaFile("models/sources.yml", []byte("sources: [{name: s, freshness: {warn_after: {count: 1, period: fortnight}}, loaded_at_field: x, tables: [{name: t}]}]"))
	if _, err := bad.sourceFreshness(); err == nil || !strings.Contains(err.Error(), "models/sources.yml: source s.t") {
		t.Errorf("bad period: %v", err)
	}
}

func TestPropertiesErrorsNameFileAndLine(t *testing.T) {
	for yml, want := range map[string]string{
		"models:\n  - name: a\n    columns:\n      - name: x\n        tests: [dbt_utils.at_least_one]": `models/schema.yml:5: model a, column x: unknown test "dbt_utils.at_least_one"`,
		"models:\n  - name: nope": "models/schema.yml: describes nope, which is no model or seed",
		"models:\n  - name: a\n    columns:\n      - name: x\n        tests:\n          - relationships: {field: id}": "relationships needs to: ref('model')",
	} {
		msg := loadErr(t, files("sql", nil), files("models", map[string]string{"a.sql": "SELECT 1 AS x", "schema.yml": yml}))
		if !strings.Contains(msg, want) {
			t.Errorf("error %q, want %q", msg, want)
		}
	}
}

// TestDBTProjectRefusesWhatCdwDoesNotRun: snapshots and on-run hooks are
// errors naming the file, not skipped in silence.
func TestDBTProjectRefusesWhatCdwDoesNotRun(t *testing.T) {
	for name, c := range map[string]struct{ project, file, want string }{
		"snapshot": {"name: p\n", "snapshots/orders_snapshot.sql", "dbt snapshots are not supported"},
		"hook":     {"name: p\non-run-end: [\"grant select on all tables in schema main to bi\"]\n", "", "on-run-end hooks are not supported"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "dbt_project.yml"), []byte(c.project), 0o644)
		if c.file != "" {
			os.MkdirAll(filepath.Join(dir, filepath.Dir(c.file)), 0o755)
			os.WriteFile(filepath.Join(dir, c.file), []byte("{% snapshot s %}select 1{% endsnapshot %}"), 0o644)
		}
		_, err := LoadDBTProject(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "dbt_project.yml") {
			t.Errorf("%s: %v, want %q naming dbt_project.yml", name, err, c.want)
		}
	}
}

func TestDocBlockErrors(t *testing.T) {
	for yml, want := range map[string]string{
		"models:\n  - name: a\n    description: '{{ doc(\"nope\") }}'": "models/schema.yml:2: model a: {{ doc('nope') }}: no {% docs nope %} block",
		"models:\n  - name: a\n    description: '{{ var(\"x\") }}'":    "a description may use only {{ doc('name') }}",
	} {
		msg := loadErr(t, files("sql", nil), files("models", map[string]string{"a.sql": "SELECT 1 AS x", "schema.yml": yml, "docs.md": "{% docs other %}x{% enddocs %}"}))
		if !strings.Contains(msg, want) {
			t.Errorf("error %q, want %q", msg, want)
		}
	}
}
