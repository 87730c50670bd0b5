package transform

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cdwhq/cdw/transform/dag"
)

// resolveDeps sets each SQL model's Deps from the relations its rendered
// SQL reads (DuckDB's parser), and the volatile functions it calls; every
// relation must be a model or a known raw relation.
func resolveDeps(ctx context.Context, parser *sql.DB, byName map[string]*Model, raw map[string]bool, rendered map[*Model]string) error {
	for _, m := range byName {
		if m.Go != nil || m.Seed != nil {
			continue // a seed reads only its file, whose hash is in its SQL
		}
		refs, volatile, err := relations(ctx, parser, rendered[m])
		if err != nil {
			return fmt.Errorf("%s: %w", m.File, err)
		}
		if m.queries {
			volatile = append(volatile, "run_query")
		}
		m.volatile = volatile
		for _, r := range refs {
			switch {
			case r == m.Name && m.readsThis:
				// {{ this }}: an incremental model reading its own table
			case strings.HasPrefix(r, "raw."):
				if !raw[r] {
					return fmt.Errorf("%s: reads %s, which is not a raw relation (known: %s)", m.File, r, strings.Join(slices.Sorted(maps.Keys(raw)), ", "))
				}
				m.Deps = append(m.Deps, r)
			case byName[r] != nil:
				if r == m.Name {
					return fmt.Errorf("%s: model %s reads itself", m.File, r)
				}
				m.Deps = append(m.Deps, r)
			default:
				return fmt.Errorf("%s: reads %q, which is neither a model nor a raw relation", m.File, r)
			}
		}
		sort.Strings(m.Deps)
	}
	for _, m := range byName {
		for _, d := range m.Deps {
			if !strings.HasPrefix(d, "raw.") && byName[d] == nil {
				return fmt.Errorf("%s: depends on %s, which does not exist", m.File, d)
			}
		}
		for _, d := range m.Header.RebuildOn {
			if !slices.Contains(m.Deps, d) {
				return fmt.Errorf("%s: rebuild_on names %s, which the model does not read (it reads %s)", m.File, d, strings.Join(m.Deps, ", "))
			}
		}
	}
	return nil
}

// topoSort orders models so each comes after what it reads; ties break by
// name so the order is stable. A cycle is an error naming every file in it.
func topoSort(byName map[string]*Model) ([]*Model, error) {
	names, err := dag.Sort(slices.Sorted(maps.Keys(byName)), func(n string) []string { return byName[n].Deps })
	var cycle *dag.CycleError
	if errors.As(err, &cycle) {
		parts := make([]string, len(cycle.Path))
		for j, c := range cycle.Path {
			parts[j] = fmt.Sprintf("%s (%s)", c, byName[c].File)
		}
		return nil, fmt.Errorf("models depend on each other in a cycle: %s", strings.Join(parts, " → "))
	}
	if err != nil {
		return nil, err
	}
	order := make([]*Model, len(names))
	for i, n := range names {
		order[i] = byName[n]
	}
	return order, nil
}

// volatileFunctions give a different answer on every call or read outside
// the warehouse: a model calling one is never up to date.
var volatileFunctions = map[string]bool{
	"now": true, "get_current_timestamp": true, "get_current_time": true, "current_timestamp": true,
	"current_date": true, "current_time": true, "today": true, "transaction_timestamp": true,
	"localtimestamp": true, "localtime": true, "random": true, "setseed": true, "uuid": true,
	"gen_random_uuid": true, "uuidv4": true, "uuidv7": true, "nextval": true, "currval": true, "getenv": true,
}

// deterministicTableFunctions are the table functions that read nothing
// outside the query; any other (read_csv, glob, …) makes a model volatile.
var deterministicTableFunctions = map[string]bool{"range": true, "generate_series": true, "unnest": true}

// relations asks DuckDB's parser which tables a query reads, minus its own
// CTEs, and which volatile functions it calls (see volatileFunctions).
func relations(ctx context.Context, db *sql.DB, query string) (tables []string, volatile []string, err error) {
	var js string
	if err := db.QueryRowContext(ctx, `SELECT json_serialize_sql(?::VARCHAR)::VARCHAR`, stripSemicolon(query)).Scan(&js); err != nil {
		return nil, nil, fmt.Errorf("parsing SQL: %w", err)
	}
	var doc any
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		return nil, nil, fmt.Errorf("reading DuckDB's parse tree: %w", err)
	}
	top, _ := doc.(map[string]any)
	if e, _ := top["error"].(bool); e {
		msg, _ := top["error_message"].(string)
		pos, _ := strconv.Atoi(fmt.Sprint(top["position"]))
		return nil, nil, fmt.Errorf("line %d: %s", lineOf(query, pos), msg)
	}
	if st, _ := top["statements"].([]any); len(st) != 1 {
		return nil, nil, fmt.Errorf("a model must be exactly one SELECT statement, found %d statements", len(st))
	}
	ctes := map[string]bool{}
	found := map[string]bool{}
	qualified := map[string]bool{}
	calls := map[string]bool{}
	var walk func(any)
	walk = func(x any) {
		switch v := x.(type) {
		case map[string]any:
			if cm, ok := v["cte_map"].(map[string]any); ok {
				if entries, ok := cm["map"].([]any); ok {
					for _, e := range entries {
						if em, ok := e.(map[string]any); ok {
							if k, ok := em["key"].(string); ok {
								ctes[strings.ToLower(k)] = true
							}
						}
					}
				}
			}
			switch v["type"] {
			case "FUNCTION":
				if name, _ := v["function_name"].(string); volatileFunctions[strings.ToLower(name)] {
					calls[strings.ToLower(name)] = true
				}
			case "COLUMN_REF": // current_date and friends parse as column names
				if cols, _ := v["column_names"].([]any); len(cols) == 1 {
					if name, _ := cols[0].(string); volatileFunctions[strings.ToLower(name)] {
						calls[strings.ToLower(name)] = true
					}
				}
			case "TABLE_FUNCTION":
				if f, ok := v["function"].(map[string]any); ok {
					if name, _ := f["function_name"].(string); !deterministicTableFunctions[strings.ToLower(name)] {
						calls[strings.ToLower(name)] = true
					}
				}
			}
			if v["type"] == "BASE_TABLE" {
				name, _ := v["table_name"].(string)
				schema, _ := v["schema_name"].(string)
				name, schema = strings.ToLower(name), strings.ToLower(schema)
				if schema == "main" {
					qualified[name] = true // never a CTE
				} else if schema == "" {
					found[name] = true
				} else {
					found[schema+"."+name] = true
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(top["statements"])
	for t := range found {
		// "recurring.x" is the recurring table of a USING KEY recursive CTE x.
		if !ctes[t] && !(strings.HasPrefix(t, "recurring.") && ctes[strings.TrimPrefix(t, "recurring.")]) {
			tables = append(tables, t)
		}
	}
	for t := range qualified {
		if !found[t] || ctes[t] {
			tables = append(tables, t)
		}
	}
	sort.Strings(tables)
	return tables, slices.Sorted(maps.Keys(calls)), nil
}

func stripSemicolon(s string) string {
	s = strings.TrimRight(s, " \t\r\n")
	return strings.TrimSuffix(s, ";")
}

func lineOf(s string, pos int) int {
	if pos > len(s) {
		pos = len(s)
	}
	return strings.Count(s[:pos], "\n") + 1
}
