package iceberg

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	models "github.com/cdwhq/cdw/sql"
	"github.com/cdwhq/cdw/transform"
	_ "github.com/cdwhq/cdw/transform/clv"      // clv_params and the CLV functions, which the built-in models read
	_ "github.com/cdwhq/cdw/transform/identity" // identity_components, which the built-in models read
)

var update = flag.Bool("update", false, "rewrite the generated section of SCALING.md")

// portable are the functions Spark SQL and Trino both have under the same
// name and meaning (ANSI aggregates, window and scalar functions), and the
// operators DuckDB's parser turns into function nodes.
var portable = map[string]bool{
	"count": true, "count_star": true, "sum": true, "min": true, "max": true, "avg": true, "coalesce": true,
	"nullif": true, "abs": true, "round": true, "floor": true, "ceil": true, "ceiling": true, "lower": true,
	"upper": true, "length": true, "substring": true, "trim": true, "concat": true, "row_number": true,
	"rank": true, "dense_rank": true, "lag": true, "lead": true, "first_value": true, "last_value": true,
	"ntile": true, "percent_rank": true, "cume_dist": true, "stddev": true, "stddev_samp": true,
	"stddev_pop": true, "variance": true, "var_samp": true, "var_pop": true, "greatest": true, "least": true,
	"exp": true, "ln": true, "sqrt": true, "power": true, "pow": true, "sign": true, "mod": true,
	"replace": true, "split_part": true, "regexp_replace": true, "regexp_like": true, "year": true, "month": true,
	"day": true, "date_trunc": true, "lpad": true, "rpad": true, "ltrim": true, "rtrim": true, "strpos": true,
	"corr": true, "covar_samp": true, "covar_pop": true, "bool_and": true, "bool_or": true, "every": true,
	"+": true, "-": true, "*": true, "/": true, "%": true, "||": true, "~~": true, "!~~": true,
	"~~*": true, "!~~*": true,
}

// nodeWalk collects, from DuckDB's JSON AST of one statement, the function
// names it calls and the DuckDB-only syntax it uses.
type nodeWalk struct {
	funcs  map[string]bool
	syntax map[string]bool
}

func (w *nodeWalk) walk(v any) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			w.walk(e)
		}
	case map[string]any:
		class, _ := x["class"].(string)
		typ, _ := x["type"].(string)
		switch {
		case class == "FUNCTION" || class == "AGGREGATE" || class == "WINDOW":
			if n, ok := x["function_name"].(string); ok {
				w.funcs[strings.ToLower(n)] = true
			}
		case class == "LAMBDA":
			w.syntax["lambda (x -> …)"] = true
		case class == "STAR" && (x["columns"] == true || typ == "COLUMNS"):
			w.syntax["COLUMNS(…)"] = true
		case class == "STAR":
			if ex, ok := x["exclude_list"].([]any); ok && len(ex) > 0 {
				w.syntax["SELECT * EXCLUDE"] = true
			}
			if rp, ok := x["replace_list"].([]any); ok && len(rp) > 0 {
				w.syntax["SELECT * REPLACE"] = true
			}
		}
		if typ == "SELECT_NODE" {
			if q, ok := x["qualify"]; ok && q != nil {
				w.syntax["QUALIFY"] = true
			}
			if ah, _ := x["aggregate_handling"].(string); ah == "FORCE_AGGREGATES" {
				w.syntax["GROUP BY ALL"] = true
			}
		}
		if typ == "TABLE_FUNCTION" {
			if f, ok := x["function"].(map[string]any); ok {
				if n, ok := f["function_name"].(string); ok {
					w.syntax["table function "+n+"()"] = true
				}
			}
		}
		for _, e := range x {
			w.walk(e)
		}
	}
}

// dialectReport lists, per built-in SQL model, the functions that are not
// in portable and the DuckDB-only syntax, as the markdown table SCALING.md
// holds.
func dialectReport(t *testing.T) string {
	ctx := context.Background()
	p, err := transform.Load(ctx, []transform.Root{{Name: "sql", FS: models.FS}},
		transform.LoadOptions{Raw: []string{"raw.orders", "raw.contacts", "raw.tickets", "raw.customers"}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	b.WriteString("| model | DuckDB-specific functions | DuckDB-specific syntax |\n|---|---|---|\n")
	all := map[string]bool{}
	n := 0
	for _, m := range p.Models {
		if m.Go != nil || m.Seed != nil {
			continue
		}
		q, err := transform.Render(m, p.Vars)
		if err != nil {
			t.Fatalf("%s: %v", m.File, err)
		}
		var js string
		if err := db.QueryRow("SELECT CAST(json_serialize_sql(?::VARCHAR) AS VARCHAR)", q).Scan(&js); err != nil {
			t.Fatalf("%s: %v", m.File, err)
		}
		var ast map[string]any
		if err := json.Unmarshal([]byte(js), &ast); err != nil {
			t.Fatal(err)
		}
		if e, _ := ast["error"].(bool); e {
			t.Fatalf("%s: DuckDB cannot parse the model: %v", m.File, ast["error_message"])
		}
		w := &nodeWalk{funcs: map[string]bool{}, syntax: map[string]bool{}}
		w.walk(ast["statements"])
		var fs []string
		for f := range w.funcs {
			if !portable[f] {
				fs = append(fs, "`"+f+"`")
				all[f] = true
			}
		}
		sort.Strings(fs)
		var ss []string
		for s := range w.syntax {
			ss = append(ss, s)
		}
		sort.Strings(ss)
		n++
		if len(fs) == 0 && len(ss) == 0 {
			fmt.Fprintf(&b, "| %s | — | — |\n", m.Name)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", m.Name, orDash(strings.Join(fs, ", ")), orDash(strings.Join(ss, ", ")))
	}
	if n == 0 {
		t.Fatal("no built-in SQL models found")
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for f := range all {
			if !yield(f) {
				return
			}
		}
	})
	fmt.Fprintf(&b, "\n%d models; %d distinct DuckDB-specific functions: %s\n", n, len(names), strings.Join(names, ", "))
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

const (
	beginMark = "<!-- begin: generated by go test ./iceberg -run TestDuckDBSpecificSQL -update -->\n"
	endMark   = "<!-- end: generated -->\n"
)

// TestDuckDBSpecificSQL parses every built-in model with DuckDB's own
// parser and lists what is specific to DuckDB; SCALING.md must show the
// current list (run with -update to rewrite it).
func TestDuckDBSpecificSQL(t *testing.T) {
	got := dialectReport(t)
	const path = "../SCALING.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated section markers", path)
	}
	cur := s[i+len(beginMark) : j]
	if cur == got {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(s[:i+len(beginMark)]+got+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("SCALING.md's list of DuckDB-specific SQL is out of date; run go test ./iceberg -run TestDuckDBSpecificSQL -update. Now:\n%s", got)
}
