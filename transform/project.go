package transform

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"path"
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
	// DBT: the root is a dbt project's folder; var() then renders values
	// as dbt does (as they are, not as SQL literals).
	DBT bool
	// Kind: models (with optional macros/, tests/ and seeds/ folders), or
	// only macros, tests or seeds (a dbt project's macro-paths …).
	Kind RootKind
	// Dir is the root on disk; seeds need it (DuckDB reads the CSV).
	Dir string

	folders   map[string]map[string]any    // dbt_project.yml models: +config per folder
	seedTypes map[string]map[string]string // dbt_project.yml seeds: +column_types
}

// Vars are values models read with {{ var('name', default) }}.
type Vars map[string]string

// Project is a loaded, checked set of models in dependency order.
type Project struct {
	Models []*Model    // topological order
	Tests  []*DataTest // header tests of every model, then test files by name
	// Sources are the freshness rules of dbt sources (properties files).
	Sources []SourceFreshness
	// Vars are the values the project was rendered with; builds render
	// with the same.
	Vars   Vars
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
	// NoBuiltins: every root is a user root and registered Go models stay
	// out (cdw.yaml's builtins: false).
	NoBuiltins bool
	// Target is dbt's target for {{ target.name }} (default "default").
	Target Target
}

// builtinPackage names cdw's own models in messages and in ref('cdw', …).
const builtinPackage = "cdw"

// Load discovers models in roots. The first root is cdw's built-in package
// (unless NoBuiltins); a user model named like a built-in one is an error
// naming both files unless it says "-- replaces: builtin" (or
// config(replaces='builtin')); two user roots defining the same name is an
// error. Files under a macros/ folder are Jinja macros every model may
// call, files under tests/ are data tests. Load renders each model, reads
// config(...) calls into its header, parses dependencies from the rendered
// SQL, adds registered Go models, and orders them.
func Load(ctx context.Context, roots []Root, opts LoadOptions) (*Project, error) {
	tpls := &Templates{Target: opts.Target}
	var all []*Model
	var schemas []*schemaFile
	testFiles := map[string]*DataTest{} // later roots replace by name, like models
	docBlocks := docs{}                 // dbt's {% docs name %} blocks in .md files
	under := func(dir, folder string) bool { return dir == folder || strings.HasPrefix(dir, folder+"/") }
	for ri, root := range roots {
		builtin := ri == 0 && !opts.NoBuiltins
		inRoot := map[string]string{}
		err := fs.WalkDir(root.FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			ext := strings.ToLower(path.Ext(p))
			dir := path.Dir(p)
			file := root.Name + "/" + p
			kind := root.Kind
			if kind == ModelsRoot {
				switch {
				case under(dir, "macros"):
					kind = MacrosRoot
				case under(dir, "tests"):
					kind = TestsRoot
				case under(dir, "seeds"):
					kind = SeedsRoot
				}
			}
			switch {
			case kind == SeedsRoot && ext == ".csv":
			case kind == ModelsRoot && (ext == ".yml" || ext == ".yaml" || ext == ".md"):
			case ext == ".sql":
			default:
				return nil
			}
			data, err := fs.ReadFile(root.FS, p)
			if err != nil {
				return fmt.Errorf("reading %s: %w", file, err)
			}
			switch {
			case kind == MacrosRoot:
				return tpls.AddMacros(file, string(data))
			case kind == TestsRoot:
				sev, tags, err := parseTestFile(file, string(data))
				if err != nil {
					return err
				}
				name := strings.TrimSuffix(path.Base(p), ".sql")
				testFiles[name] = &DataTest{Name: name, File: file, Severity: sev, SQL: string(data), Tags: tags}
				return nil
			case kind == SeedsRoot:
				m, err := seedModel(root, p, data)
				if err != nil {
					return err
				}
				if prev, dup := inRoot[m.Name]; dup {
					return fmt.Errorf("two models are named %s: %s and %s", m.Name, prev, file)
				}
				inRoot[m.Name] = file
				all = append(all, m)
				return nil
			case ext == ".md":
				return docBlocks.add(file, string(data))
			case ext != ".sql":
				sf, err := parseSchemaFile(file, data)
				if err != nil {
					return err
				}
				schemas = append(schemas, sf)
				return nil
			}
			name := strings.ToLower(strings.TrimSuffix(path.Base(p), ".sql"))
			if prev, dup := inRoot[name]; dup {
				return fmt.Errorf("two models are named %s: %s and %s", name, prev, file)
			}
			inRoot[name] = file
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
			m := &Model{Name: name, File: file, Dir: dir, SQL: string(data), Header: h,
				Builtin: builtin, DBT: root.DBT, templates: tpls}
			if cfg := folderConfig(root.folders, dir); len(cfg) > 0 {
				m.defaults = cfg
			}
			all = append(all, m)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("loading models from %s: %w", root.Name, err)
		}
	}
	// Properties files: config and seeds' column_types before rendering,
	// descriptions and tests after.
	props := map[string]*schemaModel{}
	propsFile := map[string]string{}
	var sources []SourceFreshness
	for _, sf := range schemas {
		for i := range sf.Models {
			sm := &sf.Models[i]
			n := strings.ToLower(sm.Name)
			if prev, dup := propsFile[n]; dup {
				return nil, fmt.Errorf("%s: model %s is described twice (also in %s)", sf.file, sm.Name, prev)
			}
			props[n], propsFile[n] = sm, sf.file
		}
		for i := range sf.Seeds {
			sm := &sf.Seeds[i]
			n := strings.ToLower(sm.Name)
			props[n], propsFile[n] = sm, sf.file
		}
		fr, err := sf.sourceFreshness()
		if err != nil {
			return nil, err
		}
		sources = append(sources, fr...)
		for name, types := range sf.seedTypes() {
			for _, m := range all {
				if m.Seed != nil && m.Name == name {
					if m.Seed.Types == nil {
						m.Seed.Types = map[string]string{}
					}
					for c, t := range types {
						m.Seed.Types[c] = t
					}
					m.SQL = m.Seed.sql()
				}
			}
		}
	}
	for _, m := range all {
		if sm := props[m.Name]; sm != nil && m.Seed == nil && !m.Builtin {
			m.props = sm.Config
		}
	}
	// Render each model once for its config(...) calls: they may rename it
	// (alias), disable it or mark it as replacing a built-in.
	rendered := map[*Model]string{}
	for _, m := range all {
		body, err := m.load(opts.Vars)
		if err != nil {
			return nil, err
		}
		rendered[m] = body
	}
	described := map[string]bool{}
	for _, m := range all {
		if sm := props[m.Name]; sm != nil && !m.Builtin && !m.disabled {
			if err := sm.apply(propsFile[m.Name], m, docBlocks); err != nil {
				return nil, err
			}
			described[m.Name] = true
		}
	}
	for n := range props {
		if !described[n] {
			return nil, fmt.Errorf("%s: describes %s, which is no model or seed of the project", propsFile[n], n)
		}
	}
	byName := map[string]*Model{}
	aliases := map[string]string{}
	for _, m := range all {
		if m.disabled {
			continue
		}
		if m.alias != "" && m.alias != m.Name {
			aliases[m.Name] = m.alias
			m.Name = m.alias
		}
		prev, dup := byName[m.Name]
		switch {
		case !dup:
		case prev.Builtin && !m.Builtin && m.Header.Replaces == "builtin":
			// deliberate override of a built-in model
		case prev.Builtin && !m.Builtin:
			return nil, fmt.Errorf("%s: a built-in model is already named %s (%s); rename the model, or add \"-- replaces: builtin\" to override it", m.File, m.Name, prev.File)
		default:
			return nil, fmt.Errorf("two models are named %s: %s and %s", m.Name, prev.File, m.File)
		}
		if m.Header.Replaces == "builtin" && !dup {
			return nil, fmt.Errorf("%s: replaces: builtin, but no built-in model is named %s", m.File, m.Name)
		}
		byName[m.Name] = m
	}
	if len(aliases) > 0 {
		// ref() of an aliased model renders its table name: render again.
		tpls.aliases = aliases
		for _, m := range byName {
			r := &rendering{m: m, vars: opts.Vars}
			body, err := r.render()
			if err != nil {
				return nil, err
			}
			rendered[m] = body
			m.full = &fullRender{vars: maps.Clone(opts.Vars), body: body, secrets: r.secrets}
		}
	}
	if !opts.NoBuiltins {
		for _, g := range registeredGoModels() {
			g := g
			if m, dup := byName[g.Name]; dup {
				return nil, fmt.Errorf("%s: a Go model is already named %s", m.File, g.Name)
			}
			byName[g.Name] = &Model{Name: g.Name, File: "(go) " + g.Name, Dir: "core", Go: &g, Deps: g.Deps, Builtin: true,
				Header: Header{Materialized: Table, Description: g.Description, Columns: g.Columns, Tags: g.Tags}}
		}
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
		if m.Go != nil || m.Seed != nil {
			continue // a seed reads only its file, whose hash is in its SQL
		}
		refs, volatile, err := relations(ctx, parser, rendered[m])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.File, err)
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
	p := &Project{Models: order, byName: byName, Sources: sources, Vars: opts.Vars}
	for _, m := range order {
		ts, err := headerTests(m, exists)
		if err != nil {
			return nil, err
		}
		p.Tests = append(p.Tests, ts...)
	}
	for _, name := range sortedKeys(testFiles) {
		t := testFiles[name]
		rendered, err := Render(&Model{Name: name, File: t.File, SQL: t.SQL, templates: tpls}, opts.Vars)
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

// load renders a model as Load first sees it (a full build, dbt's execute
// false) and takes its config(...) calls into the header.
func (m *Model) load(vars Vars) (string, error) {
	if m.Seed != nil {
		return m.SQL, nil
	}
	// dbt's order: folder config (dbt_project.yml), then the properties
	// file's config, then config(...) in the model.
	for _, cfg := range []map[string]any{m.defaults, m.props} {
		if err := applyConfig(m, cfg); err != nil {
			return "", err
		}
	}
	r := &rendering{m: m, vars: vars}
	body, err := r.render()
	if err != nil {
		return "", err
	}
	m.full = &fullRender{vars: maps.Clone(vars), body: body, secrets: r.secrets}
	m.queries = r.queried
	m.readsThis = r.readThis()
	if err := applyConfig(m, r.config); err != nil {
		return "", err
	}
	return body, m.Header.check(m.File)
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

// Render expands a model's templating for a full build: {{ ref('m') }} → m,
// {{ source('src','entity') }} → raw.src_entity, {{ var('name', default) }}
// → the configured value, {{ is_incremental() }} false, {{ this }} the
// model's table and {{ new_rows('raw.x') }} all of raw.x (see template.go).
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

// render expands the templating; inc is nil for a full build.
func render(m *Model, vars Vars, inc *increment) (string, error) {
	r := &rendering{m: m, vars: vars, inc: inc}
	return r.render()
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

// Compiled renders a model as documentation shows it: for a full build,
// with env_var values as *** (they are never shown).
func Compiled(m *Model, vars Vars) (string, error) {
	if m.Go != nil {
		return "", nil
	}
	r := &rendering{m: m, vars: vars}
	body, err := r.render()
	if err != nil {
		return "", err
	}
	return r.redact(body), nil
}
