package transform

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2" // DuckDB driver
)

// Root is a tree of model files: the built-in sql/ tree or a user directory.
type Root struct {
	Name string // shown in file names, e.g. "sql" or "./models"
	FS   fs.FS
}

// Vars are values models read with {{ var('name', default) }}.
type Vars map[string]string

// Project is a loaded, checked set of models in dependency order.
type Project struct {
	Models []*Model    // topological order
	Tests  []*DataTest // header tests of every model, then test files by name
	byName map[string]*Model
}

// Model returns the named model.
func (p *Project) Model(name string) (*Model, bool) {
	m, ok := p.byName[strings.ToLower(name)]
	return m, ok
}

// LoadOptions configure Load.
type LoadOptions struct {
	Vars Vars
	// Raw lists the raw relations models may read, e.g. "raw.orders",
	// "raw.shop_orders".
	Raw []string
}

// Load discovers models in roots. The first root is the built-in tree; a
// model in a later (user) root replaces the built-in model of the same name,
// which is how a team customises one; two user roots defining the same name
// is an error. Load parses headers and
// dependencies, adds registered Go models, and orders them.
func Load(ctx context.Context, roots []Root, opts LoadOptions) (*Project, error) {
	byName := map[string]*Model{}
	testFiles := map[string]*DataTest{} // later roots replace by name, like models
	userFiles := map[string]string{}    // model → its file in a user directory
	for ri, root := range roots {
		inRoot := map[string]string{}
		err := fs.WalkDir(root.FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || path.Ext(p) != ".sql" {
				return nil
			}
			dir := path.Dir(p)
			file := root.Name + "/" + p
			if dir == "tests" || strings.HasPrefix(dir, "tests/") {
				data, err := fs.ReadFile(root.FS, p)
				if err != nil {
					return fmt.Errorf("reading %s: %w", file, err)
				}
				sev, tags, err := parseTestFile(file, string(data))
				if err != nil {
					return err
				}
				name := strings.TrimSuffix(path.Base(p), ".sql")
				testFiles[name] = &DataTest{Name: name, File: file, Severity: sev, SQL: string(data), Tags: tags}
				return nil
			}
			name := strings.ToLower(strings.TrimSuffix(path.Base(p), ".sql"))
			if prev, dup := inRoot[name]; dup {
				return fmt.Errorf("two models are named %s: %s and %s", name, prev, file)
			}
			inRoot[name] = file
			data, err := fs.ReadFile(root.FS, p)
			if err != nil {
				return fmt.Errorf("reading %s: %w", file, err)
			}
			if !validModelName(name) {
				return fmt.Errorf("%s: model names must be letters, digits and _ (the file name is the table name)", file)
			}
			h, err := ParseHeader(file, string(data))
			if err != nil {
				return err
			}
			if dir == "." {
				dir = ""
			}
			// A user directory may replace a model of the first root (the
			// built-in tree); two user directories may not both define it.
			if ri > 0 {
				if other, ok := userFiles[name]; ok {
					return fmt.Errorf("two models are named %s: %s and %s", name, other, file)
				}
				userFiles[name] = file
			}
			byName[name] = &Model{Name: name, File: file, Dir: dir, SQL: string(data), Header: h}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("loading models from %s: %w", root.Name, err)
		}
	}
	for _, g := range registeredGoModels() {
		g := g
		if m, dup := byName[g.Name]; dup {
			return nil, fmt.Errorf("%s: a Go model is already named %s", m.File, g.Name)
		}
		byName[g.Name] = &Model{Name: g.Name, File: "(go) " + g.Name, Dir: "core", Go: &g, Deps: g.Deps,
			Header: Header{Materialized: Table, Description: g.Description, Columns: g.Columns, Tags: g.Tags}}
	}
	raw := map[string]bool{}
	for _, r := range opts.Raw {
		raw[strings.ToLower(r)] = true
	}
	parser, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("opening DuckDB to parse models: %w", err)
	}
	defer parser.Close()
	for _, m := range byName {
		if m.Go != nil {
			continue
		}
		rendered, err := Render(m, opts.Vars)
		if err != nil {
			return nil, err
		}
		refs, volatile, err := relations(ctx, parser, rendered)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.File, err)
		}
		m.volatile = volatile
		for _, r := range refs {
			switch {
			case r == m.Name && thisRe.MatchString(m.SQL):
				// {{ this }}: an incremental model reading its own table
			case strings.HasPrefix(r, "raw."):
				if !raw[r] {
					return nil, fmt.Errorf("%s: reads %s, which is not a raw relation (known: %s)", m.File, r, strings.Join(sortedKeys(raw), ", "))
				}
				m.Deps = append(m.Deps, r)
			case byName[r] != nil:
				if r == m.Name {
					return nil, fmt.Errorf("%s: model %s reads itself", m.File, r)
				}
				m.Deps = append(m.Deps, r)
			default:
				return nil, fmt.Errorf("%s: reads %q, which is neither a model nor a raw relation", m.File, r)
			}
		}
		sort.Strings(m.Deps)
	}
	for _, m := range byName {
		for _, d := range m.Deps {
			if !strings.HasPrefix(d, "raw.") && byName[d] == nil {
				return nil, fmt.Errorf("%s: depends on %s, which does not exist", m.File, d)
			}
		}
		for _, d := range m.Header.RebuildOn {
			if !slices.Contains(m.Deps, d) {
				return nil, fmt.Errorf("%s: rebuild_on names %s, which the model does not read (it reads %s)", m.File, d, strings.Join(m.Deps, ", "))
			}
		}
	}
	order, err := topoSort(byName)
	if err != nil {
		return nil, err
	}
	exists := func(rel string) bool { return raw[rel] || byName[rel] != nil }
	p := &Project{Models: order, byName: byName}
	for _, m := range order {
		ts, err := headerTests(m, exists)
		if err != nil {
			return nil, err
		}
		p.Tests = append(p.Tests, ts...)
	}
	for _, name := range sortedKeys(testFiles) {
		t := testFiles[name]
		rendered, err := Render(&Model{Name: name, File: t.File, SQL: t.SQL}, opts.Vars)
		if err != nil {
			return nil, err
		}
		refs, _, err := relations(ctx, parser, rendered)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.File, err)
		}
		for _, r := range refs {
			if !exists(r) {
				return nil, fmt.Errorf("%s: reads %q, which is neither a model nor a raw relation", t.File, r)
			}
		}
		t.SQL, t.Deps = rendered, refs
		p.Tests = append(p.Tests, t)
	}
	return p, nil
}

func validModelName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

var templateRe = regexp.MustCompile(`\{\{\s*(?:(ref|source|var|is_incremental|new_rows)\s*\(([^)]*)\)|(this))\s*\}\}`)

// Render expands {{ ref('m') }} → m, {{ source('src','entity') }} →
// raw.src_entity and {{ var('name', default) }} → the configured value, so
// models written for dbt port with little change. It renders a full build:
// {{ is_incremental() }} is false, {{ this }} the model's table and
// {{ new_rows('raw.x') }} all of raw.x.
func Render(m *Model, vars Vars) (string, error) {
	return render(m, vars, nil)
}

// increment is what an incremental build of a model renders with.
type increment struct {
	// newFiles are, per raw relation, the committed files the model has
	// not read yet (the _file values of the raw views); a relation missing
	// here is not tracked, and all its rows count as new.
	newFiles map[string][]string
}

// blockRe matches {% if is_incremental() %} … [{% else %} …] {% endif %}
// (also "if not is_incremental()"); blocks do not nest.
var blockRe = regexp.MustCompile(`(?s)\{%-?\s*if\s+(not\s+)?is_incremental\(\)\s*-?%\}(.*?)(?:\{%-?\s*else\s*-?%\}(.*?))?\{%-?\s*endif\s*-?%\}`)

// render expands the templating; inc is nil for a full build.
func render(m *Model, vars Vars, inc *increment) (string, error) {
	// Blocks first: the branch not taken becomes blank lines, so DuckDB's
	// line numbers still point into the model file.
	var b strings.Builder
	last := 0
	for _, ix := range blockRe.FindAllStringSubmatchIndex(m.SQL, -1) {
		// ix: whole block, "not ", then-branch, else-branch (-1 when absent)
		b.WriteString(m.SQL[last:ix[0]])
		from, to := ix[4], ix[5]
		if (inc != nil) == (ix[2] >= 0) {
			from, to = ix[6], ix[7]
		}
		if from < 0 { // no else branch
			from, to = ix[1], ix[1]
		}
		b.WriteString(strings.Repeat("\n", strings.Count(m.SQL[ix[0]:from], "\n")))
		b.WriteString(m.SQL[from:to])
		b.WriteString(strings.Repeat("\n", strings.Count(m.SQL[to:ix[1]], "\n")))
		last = ix[1]
	}
	b.WriteString(m.SQL[last:])
	sqlText := b.String()
	if loc := strings.Index(sqlText, "{%"); loc >= 0 {
		return "", fmt.Errorf("%s:%d: unsupported template block (only {%% if is_incremental() %%} … {%% else %%} … {%% endif %%})",
			m.File, lineOf(sqlText, loc))
	}
	var firstErr error
	out := templateRe.ReplaceAllStringFunc(sqlText, func(s string) string {
		g := templateRe.FindStringSubmatch(s)
		if g[3] == "this" {
			return quoteIdent(m.Name)
		}
		args, err := splitArgs(g[2])
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("%s: %s: %w", m.File, s, err)
		}
		unq := func(i int) string { return strings.Trim(strings.TrimSpace(args[i]), `'"`) }
		switch g[1] {
		case "ref":
			if len(args) != 1 {
				break
			}
			return unq(0)
		case "source":
			if len(args) != 2 {
				break
			}
			return "raw." + unq(0) + "_" + unq(1)
		case "var":
			if len(args) < 1 || len(args) > 2 {
				break
			}
			if v, ok := vars[unq(0)]; ok {
				return sqlLiteral(v)
			}
			if len(args) == 2 {
				return strings.TrimSpace(args[1])
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("%s: %s: no value for var %q in config and no default", m.File, s, unq(0))
			}
			return s
		case "is_incremental":
			if len(args) != 0 {
				break
			}
			return strconv.FormatBool(inc != nil)
		case "new_rows":
			if len(args) != 1 {
				break
			}
			rel := strings.ToLower(unq(0))
			if !strings.HasPrefix(rel, "raw.") {
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %s: new_rows reads a raw relation (raw.<entity> or raw.<source>_<entity>), not %q", m.File, s, rel)
				}
				return s
			}
			if inc == nil {
				return rel
			}
			files, tracked := inc.newFiles[rel]
			if !tracked {
				return rel
			}
			if len(files) == 0 {
				return "(SELECT * FROM " + rel + " WHERE false)"
			}
			quoted := make([]string, len(files))
			for i, f := range files {
				quoted[i] = sqlString(f)
			}
			// DuckDB prunes the scan to these files: the filter on the
			// filename column reaches read_parquet through the views.
			return "(SELECT * FROM " + rel + " WHERE _file IN (" + strings.Join(quoted, ", ") + "))"
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("%s: %s: wrong number of arguments", m.File, s)
		}
		return s
	})
	return out, firstErr
}

// sqlLiteral renders a config value: numbers and booleans as they are, anything
// else as a quoted string.
func sqlLiteral(v string) string {
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return v
	}
	if v == "true" || v == "false" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

var thisRe = regexp.MustCompile(`\{\{\s*this\s*\}\}`)

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
				if schema == "" || schema == "main" {
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
	sort.Strings(tables)
	return tables, sortedKeys(calls), nil
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

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// topoSort orders models so each comes after what it reads; ties break by
// name so the order is stable. A cycle is an error naming every file in it.
func topoSort(byName map[string]*Model) ([]*Model, error) {
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var order []*Model
	var stack []string
	var visit func(string) error
	visit = func(n string) error {
		switch state[n] {
		case done:
			return nil
		case visiting:
			i := len(stack) - 1
			for stack[i] != n {
				i--
			}
			cycle := append(append([]string{}, stack[i:]...), n)
			parts := make([]string, len(cycle))
			for j, c := range cycle {
				parts[j] = fmt.Sprintf("%s (%s)", c, byName[c].File)
			}
			return fmt.Errorf("models depend on each other in a cycle: %s", strings.Join(parts, " → "))
		}
		state[n] = visiting
		stack = append(stack, n)
		for _, d := range byName[n].Deps {
			if byName[d] != nil {
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		order = append(order, byName[n])
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}
