package transform

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestTemplateJinja(t *testing.T) {
	tpls := &Templates{Target: Target{Name: "prod"}}
	if err := tpls.AddMacros("models/macros/money.sql", `{% macro cents_to_dollars(col, scale=2) -%}
round({{ col }} / 100.0, {{ scale }})
{%- endmacro %}
{% macro me() %}{{ this }}{% endmacro %}`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, sql, want string }{
		{"comment", "SELECT 1 {# a comment #}AS x", "SELECT 1 AS x"},
		{"set and for", `{% set methods = ['card', 'cash'] %}SELECT
{%- for m in methods %}
  sum(CASE WHEN method = '{{ m }}' THEN amount END) AS {{ m }}_amount{% if not loop.last %},{% endif %}
{%- endfor %}
FROM {{ ref('payments') }}`, "SELECT\n  sum(CASE WHEN method = 'card' THEN amount END) AS card_amount,\n  sum(CASE WHEN method = 'cash' THEN amount END) AS cash_amount\nFROM main.payments"},
		{"filters", "SELECT '{{ 'abc' | upper }}' AS u, {{ ['a','b'] | join(', ') }} AS j", "SELECT 'ABC' AS u, a, b AS j"},
		{"macro", "SELECT {{ cents_to_dollars('amount') }} AS usd, {{ cents_to_dollars('x', scale=0) }} AS u0", "SELECT round(amount / 100.0, 2) AS usd, round(x / 100.0, 0) AS u0"},
		{"macro sees the model", "SELECT * FROM {{ me() }}", `SELECT * FROM "m"`},
		{"ref two args", "SELECT * FROM {{ ref('cdw', 'Customers') }}", "SELECT * FROM main.customers"},
		{"source", "SELECT * FROM {{ source('shop', 'orders') }}", "SELECT * FROM raw.shop_orders"},
		{"target", "SELECT '{{ target.name }}', '{{ target.type }}', '{{ target.schema }}'", "SELECT 'prod', 'duckdb', 'main'"},
		{"this attributes", "SELECT '{{ this.name }}' AS t", "SELECT 'm' AS t"},
		{"config renders nothing", "{{ config(materialized='table') }}SELECT 1", "SELECT 1"},
		{"if else", "SELECT {% if target.name == 'prod' %}1{% else %}2{% endif %}", "SELECT 1"},
		{"whitespace control", "SELECT\n  {%- if true %} 1 {%- endif %}\n", "SELECT 1\n"},
		{"cdw var: string default is a SQL string", "SELECT {{ var('level', 'category') }}, {{ var('n', 3) }}", "SELECT 'category', 3"},
		{"raw block", "SELECT '{% raw %}{{ x }}{% endraw %}'", "SELECT '{{ x }}'"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Render(&Model{Name: "m", File: "models/m.sql", SQL: c.sql, templates: tpls}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("rendered\n%q\nwant\n%q", got, c.want)
			}
		})
	}
	// dbt models get dbt's var(): the value as it is.
	got, err := Render(&Model{Name: "m", File: "m.sql", DBT: true, SQL: "SELECT '{{ var(\"start\") }}'::DATE, {{ var('n', 3) }}"}, Vars{"start": "2024-01-01"})
	if err != nil || got != "SELECT '2024-01-01'::DATE, 3" {
		t.Errorf("dbt var: %q, %v", got, err)
	}
}

func TestTemplateErrorsNameFileAndLine(t *testing.T) {
	for sqlText, want := range map[string]string{
		"SELECT 1\n\n{% frob %}":                           "m.sql:3: template error: ControlStructure 'frob' not found",
		"SELECT 1\n{{ 1 + }}":                              "m.sql:2: template error:",
		"SELECT\n{{ nope(1) }}":                            "m.sql:2: template error:",
		"SELECT {{ undefined_name }}":                      `Unable to evaluate name "undefined_name"`,
		"SELECT {{ var('missing') }}":                      `no value for var "missing"`,
		"SELECT {{ env_var('CDW_TEST_UNSET_VAR') }}":       `env_var("CDW_TEST_UNSET_VAR"): not set and no default`,
		"{{ config(schema='x') }}SELECT 1":                 "m.sql: config(schema=x): cdw builds every model in the warehouse's main schema",
		"{{ config(materialised='table') }}SELECT 1":       `m.sql: unknown config key "materialised"`,
		"{{ config(materialized='incremental') }}SELECT 1": "m.sql: an incremental model needs unique_key",
	} {
		m := &Model{Name: "m", File: "m.sql", SQL: sqlText}
		_, err := m.load(nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", sqlText, err, want)
		}
	}
}

func TestConfigSetsHeader(t *testing.T) {
	p := load(t, files("models", map[string]string{
		"a.sql":   "{{ config(materialized='incremental', unique_key=['id', 'line'], tags='daily', alias='orders_a') }}\nSELECT 1 AS id, 2 AS line FROM raw.orders",
		"b.sql":   "SELECT * FROM {{ ref('a') }}",
		"off.sql": "{{ config(enabled=false) }}SELECT * FROM nothing_here",
		"p.sql":   "{{ config(materialized='table', partition_by={'field': 'd', 'data_type': 'date'}) }}-- materialized: view\nSELECT 1",
	}))
	a, ok := p.Model("orders_a")
	if !ok || a.Header.Materialized != Incremental || strings.Join(a.Header.UniqueKey, ",") != "id,line" || strings.Join(a.Header.Tags, ",") != "daily" {
		t.Fatalf("orders_a = %+v (found %v)", a, ok)
	}
	if b, _ := p.Model("b"); strings.Join(b.Deps, ",") != "orders_a" {
		t.Errorf("b reads %v, want the alias orders_a", b.Deps)
	}
	if _, ok := p.Model("off"); ok {
		t.Error("a model with config(enabled=false) was loaded")
	}
	// config(...) wins over the header: it runs after the header is read.
	if m, _ := p.Model("p"); m.Header.Materialized != Table || m.Header.PartitionBy != "d" {
		t.Errorf("p header = %+v", m.Header)
	}
}

func TestBuiltinNamespace(t *testing.T) {
	builtin := files("sql", map[string]string{"core/customers.sql": "SELECT 1 AS id"})
	msg := loadErr(t, builtin, files("models", map[string]string{"customers.sql": "SELECT 2 AS id"}))
	for _, w := range []string{"models/customers.sql", "sql/core/customers.sql", "replaces: builtin"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not name %q", msg, w)
		}
	}
	// config(replaces='builtin') is the same as the header.
	p := load(t, builtin, files("models", map[string]string{"customers.sql": "{{ config(replaces='builtin') }}SELECT 2 AS id"}))
	if m, _ := p.Model("customers"); m.File != "models/customers.sql" || m.Builtin {
		t.Errorf("customers = %s (builtin %v)", m.File, m.Builtin)
	}
	if msg := loadErr(t, builtin, files("models", map[string]string{"orders.sql": "-- replaces: builtin\nSELECT 1"})); !strings.Contains(msg, "no built-in model is named orders") {
		t.Errorf("replacing nothing: %q", msg)
	}
	// builtins: false — the first root is a user root like any other.
	p, err := Load(context.Background(), []Root{files("models", map[string]string{"customers.sql": "SELECT 2 AS id"})}, LoadOptions{NoBuiltins: true})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := p.Model("customers"); m.Builtin || len(p.Models) != 1 {
		t.Errorf("NoBuiltins: %d models, customers builtin %v", len(p.Models), m.Builtin)
	}
}

func TestTemplatedErrorPointsIntoTheFile(t *testing.T) {
	db := warehouse(t)
	t.Setenv("CDW_TEST_SECRET", "s3cr3t-value")
	p := load(t, files("sql", map[string]string{
		// Line 6 is wrong; the for loop and the comment change the line count.
		"bad.sql": "{# three\nline\ncomment #}{% set cols = ['a', 'b'] %}\nSELECT {% for c in cols %}1 AS {{ c }}, {% endfor %}\n  '{{ env_var('CDW_TEST_SECRET') }}' AS k,\n  amount_typo AS x\nFROM range(3)",
	}))
	res, err := (&Runner{DB: db}).Run(context.Background(), "r", p.Models)
	if err != nil {
		t.Fatal(err)
	}
	e := res.Models[0].Err
	var me *ModelError
	if !errors.As(e, &me) || me.Line != 6 || me.Compiled {
		t.Fatalf("want a ModelError at line 6 of the file, got %v", e)
	}
	if msg := e.Error(); !strings.Contains(msg, "sql/bad.sql:6:") || !strings.Contains(msg, "6 | amount_typo AS x") {
		t.Errorf("error = %q", msg)
	}
	// env_var values never reach a message.
	p = load(t, files("sql", map[string]string{"leak.sql": "-- materialized: table\nSELECT '{{ env_var('CDW_TEST_SECRET') }}'::INTEGER AS k"}))
	res, err = (&Runner{DB: db}).Run(context.Background(), "r2", p.Models)
	if err != nil {
		t.Fatal(err)
	}
	if msg := res.Models[0].Err.Error(); strings.Contains(msg, "s3cr3t") || !strings.Contains(msg, "***") {
		t.Errorf("env_var value in the error: %q", msg)
	}
}

// TestTagsReadingOtherFilesAreErrors: {% include %} used to crash the
// process inside gonja (its loader has no other file); it and the other
// tags that read files are a template error naming the file and line.
func TestTagsReadingOtherFilesAreErrors(t *testing.T) {
	for sql, want := range map[string]string{
		"{% include 'x.sql' %}\nSELECT 1 AS x":       "models/a.sql:1: template error: ControlStructure 'include' not found",
		"SELECT 1 AS x\n{% import 'm.sql' as m %}":   "models/a.sql:2: template error: ControlStructure 'import' not found",
		"{% extends 'base.sql' %}":                   "models/a.sql:1: template error: ControlStructure 'extends' not found",
		"SELECT 1 AS x\n{% from 'm.sql' import y %}": "models/a.sql:2: template error: ControlStructure 'from' not found",
		"{% snapshot s %}select 1{% endsnapshot %}":  "models/a.sql:1: template error: ControlStructure 'snapshot' not found",
	} {
		if msg := loadErr(t, files("sql", nil), files("models", map[string]string{"a.sql": sql})); !strings.Contains(msg, want) {
			t.Errorf("%q: %s, want %q", sql, msg, want)
		}
	}
}

// countLogs counts the "model log" lines of {{ log() }} while f runs.
type countLogs struct{ n *int }

func (c countLogs) Enabled(context.Context, slog.Level) bool { return true }
func (c countLogs) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "model log" {
		*c.n++
	}
	return nil
}
func (c countLogs) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c countLogs) WithGroup(string) slog.Handler      { return c }

// TestRenderedOncePerRun (#23 item 2): loading a project and building its
// models renders each model once — the build and the definition hash reuse
// Load's render — unless the run's vars differ from Load's, and an
// incremental merge renders its own (is_incremental() is true there).
func TestRenderedOncePerRun(t *testing.T) {
	n := 0
	prev := slog.Default()
	slog.SetDefault(slog.New(countLogs{&n}))
	defer slog.SetDefault(prev)
	root := files("models", map[string]string{
		"a.sql": "-- materialized: table\n{{ log('a') }}SELECT {{ var('k', 1) }} AS x",
		"b.sql": "-- materialized: view\n{{ log('b') }}SELECT x FROM {{ ref('a') }}",
	})
	vars := Vars{"k": "2"}
	p, err := Load(context.Background(), []Root{files("sql", nil), root}, LoadOptions{Vars: vars})
	if err != nil {
		t.Fatal(err)
	}
	db := warehouse(t)
	res, err := (&Runner{DB: db, Vars: vars}).Run(context.Background(), "r1", p.Models)
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	if n != 2 {
		t.Errorf("loading and building 2 models rendered %d times, want 2", n)
	}
	var x int
	if err := db.QueryRow("SELECT x FROM b").Scan(&x); err != nil || x != 2 {
		t.Fatalf("b.x = %d (%v), want the var's 2", x, err)
	}
	// Other vars than Load's: the run renders with its own.
	n = 0
	res, err = (&Runner{DB: db, Vars: Vars{"k": "3"}}).Run(context.Background(), "r2", p.Models)
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	if err := db.QueryRow("SELECT x FROM b").Scan(&x); err != nil || x != 3 || n == 0 {
		t.Fatalf("with k=3: b.x = %d (%v), %d renders", x, err, n)
	}
}
