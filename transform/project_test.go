package transform

import (
	"strings"
	"testing"
)

func TestDependencies(t *testing.T) {
	p := load(t, files("sql", map[string]string{
		"staging/stg.sql": "SELECT * FROM raw.orders",
		"core/a.sql":      "SELECT customer_id, sum(amount) AS total FROM stg GROUP BY 1",
		"core/b.sql":      "SELECT * FROM {{ ref('a') }}",
		// CTE names are not dependencies, even when they shadow nothing.
		"core/cte.sql": "WITH x AS (SELECT * FROM a), y AS (SELECT * FROM x JOIN b USING (customer_id)) SELECT * FROM y",
		// Subqueries in FROM, WHERE and SELECT, and joins.
		"core/sub.sql": `SELECT s.customer_id, (SELECT max(total) FROM b) AS m
			FROM (SELECT * FROM stg) s LEFT JOIN a ON a.customer_id = s.customer_id
			WHERE s.customer_id IN (SELECT customer_id FROM cte) AND EXISTS (SELECT 1 FROM raw.shop_orders)`,
		"core/src.sql":  "SELECT * FROM {{ source('shop', 'orders') }}",
		"core/rec.sql":  "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r, a",
		"core/func.sql": "SELECT * FROM range(3) t(i), read_parquet([]::VARCHAR[]) p WHERE false",
	}))
	want := map[string]string{
		"stg": "raw.orders", "a": "stg", "b": "a", "cte": "a b", "sub": "a b cte raw.shop_orders stg",
		"src": "raw.shop_orders", "rec": "a",
	}
	for name, deps := range want {
		m, ok := p.Model(name)
		if !ok {
			t.Fatalf("model %s not loaded", name)
		}
		if got := strings.Join(m.Deps, " "); got != deps {
			t.Errorf("%s deps = %q, want %q", name, got, deps)
		}
	}
	pos := map[string]int{}
	for i, m := range p.Models {
		pos[m.Name] = i
	}
	for _, m := range p.Models {
		for _, d := range m.Deps {
			if j, ok := pos[d]; ok && j > pos[m.Name] {
				t.Errorf("%s comes before its dependency %s", m.Name, d)
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name  string
		roots []Root
		want  []string
	}{
		{"unknown relation", []Root{files("sql", map[string]string{"m.sql": "SELECT * FROM nope"})},
			[]string{"sql/m.sql", `"nope"`, "neither a model nor a raw relation"}},
		{"unknown raw", []Root{files("sql", map[string]string{"m.sql": "SELECT * FROM raw.nope"})},
			[]string{"sql/m.sql", "raw.nope", "raw.orders"}},
		{"cycle", []Root{files("sql", map[string]string{"a.sql": "SELECT * FROM b", "b.sql": "SELECT * FROM c", "c.sql": "SELECT * FROM a"})},
			[]string{"cycle", "a (sql/a.sql)", "b (sql/b.sql)", "c (sql/c.sql)"}},
		{"self", []Root{files("sql", map[string]string{"a.sql": "SELECT * FROM a"})}, []string{"sql/a.sql", "reads itself"}},
		{"duplicate in one root", []Root{files("sql", map[string]string{"x/a.sql": "SELECT 1", "y/a.sql": "SELECT 2"})},
			[]string{"two models are named a", "sql/x/a.sql", "sql/y/a.sql"}},
		{"duplicate in two user roots", []Root{files("sql", nil), files("team1", map[string]string{"a.sql": "SELECT 1"}), files("team2", map[string]string{"a.sql": "SELECT 2"})},
			[]string{"two models are named a", "team1/a.sql", "team2/a.sql"}},
		{"header typo", []Root{files("sql", map[string]string{"a.sql": "-- materialised: table\nSELECT 1"})},
			[]string{"sql/a.sql:1", `unknown header key "materialised"`}},
		{"bad materialization", []Root{files("sql", map[string]string{"a.sql": "-- materialized: tabel\nSELECT 1"})},
			[]string{"sql/a.sql:1", "tabel"}},
		{"incremental without key", []Root{files("sql", map[string]string{"a.sql": "-- materialized: incremental\nSELECT 1"})},
			[]string{"sql/a.sql", "unique_key"}},
		{"rebuild_on on a table", []Root{files("sql", map[string]string{"b.sql": "SELECT 1 AS x", "a.sql": "-- materialized: table\n-- rebuild_on: b\nSELECT * FROM b"})},
			[]string{"sql/a.sql", "rebuild_on is for incremental models"}},
		{"rebuild_on an input it does not read", []Root{files("sql", map[string]string{"b.sql": "SELECT 1 AS x", "c.sql": "SELECT 2 AS x",
			"a.sql": "-- materialized: incremental\n-- unique_key: x\n-- rebuild_on: c\nSELECT * FROM b"})},
			[]string{"sql/a.sql", "rebuild_on names c, which the model does not read (it reads b)"}},
		{"syntax error", []Root{files("sql", map[string]string{"a.sql": "-- x\nSELECT 1\nFROM WHERE"})},
			[]string{"sql/a.sql", "line 3", "syntax error"}},
		{"two statements", []Root{files("sql", map[string]string{"a.sql": "SELECT 1; SELECT 2"})},
			[]string{"sql/a.sql", "exactly one SELECT"}},
		{"unknown test", []Root{files("sql", map[string]string{"a.sql": "-- tests: uniq(id)\nSELECT 1 AS id"})},
			[]string{"sql/a.sql:1", `unknown test "uniq"`}},
		{"unquoted accepted value", []Root{files("sql", map[string]string{"a.sql": "-- tests: accepted_values(s, champions)\nSELECT 'x' AS s"})},
			[]string{"sql/a.sql:1", "champions must be a 'quoted' string"}},
		{"relationship to nothing", []Root{files("sql", map[string]string{"a.sql": "-- tests: relationships(id, nope.id)\nSELECT 1 AS id"})},
			[]string{"sql/a.sql", "nope is neither a model"}},
		{"test file typo", []Root{files("sql", map[string]string{"a.sql": "SELECT 1 AS id", "tests/t.sql": "-- severty: warn\nSELECT * FROM a"})},
			[]string{"sql/tests/t.sql:1", "severty"}},
		{"unknown var", []Root{files("sql", map[string]string{"a.sql": "SELECT {{ var('x') }}"})},
			[]string{"sql/a.sql", `no value for var "x"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := loadErr(t, c.roots...)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
}

func TestUserModelReplacesBuiltin(t *testing.T) {
	p := load(t,
		files("sql", map[string]string{"marts/a.sql": "SELECT 1 AS x", "marts/b.sql": "SELECT * FROM a"}),
		files("models", map[string]string{"a.sql": "-- materialized: table\n-- replaces: builtin\nSELECT * FROM raw.orders", "c.sql": "SELECT * FROM b"}))
	a, _ := p.Model("a")
	if a.File != "models/a.sql" || a.Header.Materialized != Table || strings.Join(a.Deps, ",") != "raw.orders" {
		t.Errorf("a = %s %s %v; want the user's file", a.File, a.Header.Materialized, a.Deps)
	}
	if got := names(p.Models); got != "a b c" {
		t.Errorf("order = %q", got)
	}
}

func TestSelect(t *testing.T) {
	p := load(t, files("sql", map[string]string{
		"staging/s1.sql": "-- tags: daily\nSELECT * FROM raw.orders",
		"staging/s2.sql": "SELECT * FROM raw.orders",
		"core/c.sql":     "-- tags: daily, finance\nSELECT * FROM s1 JOIN s2 USING (order_id)",
		"marts/m1.sql":   "SELECT * FROM c",
		"marts/m2.sql":   "SELECT * FROM m1",
		"marts/x.sql":    "SELECT * FROM s2",
	}))
	cases := map[string]string{
		"":                  "s1 s2 c m1 m2 x",
		"c":                 "c",
		"c+":                "c m1 m2",
		"+c":                "s1 s2 c",
		"+m1+":              "s1 s2 c m1 m2",
		"path:sql/marts":    "m1 m2 x",
		"path:marts":        "m1 m2 x",
		"path:sql/staging/": "s1 s2",
		"tag:daily":         "s1 c",
		"tag:finance,x":     "c x",
		"s1 x, m2":          "s1 m2 x",
		"s2+ tag:daily":     "s1 s2 c m1 m2 x",
		"C":                 "c",
	}
	for sel, want := range cases {
		got, err := p.Select(sel)
		if err != nil {
			t.Errorf("Select(%q): %v", sel, err)
			continue
		}
		// Results come in topological order, so compare as sets plus order check.
		if a, b := sortedWords(names(got)), sortedWords(want); a != b {
			t.Errorf("Select(%q) = %q, want %q", sel, names(got), want)
		}
	}
	for sel, want := range map[string]string{"cc": "no model cc (did you mean c?)", "tag:weekly": "no model has tag weekly", "path:sql/nope": "no model file is under sql/nope"} {
		if _, err := p.Select(sel); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Select(%q) error = %v, want %q", sel, err, want)
		}
	}
}

func sortedWords(s string) string {
	w := strings.Fields(s)
	for i := range w {
		for j := i + 1; j < len(w); j++ {
			if w[j] < w[i] {
				w[i], w[j] = w[j], w[i]
			}
		}
	}
	return strings.Join(w, " ")
}
