package transform

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/nikolalohinski/gonja/v2"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/parser"

	"github.com/cdwhq/cdw/internal/duck"
)

// Templating is Jinja (gonja v2) with dbt's context: ref, source, var,
// env_var, config, this, is_incremental, target, log, run_query, execute,
// macros from the project's macros folders, plus cdw's new_rows.

// Templates is what every model of a project renders with: the macro files
// and dbt's target. The zero value has no macros.
type Templates struct {
	macros []*exec.Template
	// macroThis: some macro mentions this, so any model may read itself.
	macroThis bool
	// aliases maps model file names to their config(alias=…) table names.
	aliases map[string]string
	// Target is dbt's target (name, schema, type 'duckdb').
	Target Target
}

// Target is what {{ target.name }} and friends render.
type Target struct{ Name, Schema string }

// tplConfig: undefined names are errors (a typo must not render as
// nothing), whitespace as Jinja's defaults, which dbt keeps.
var tplConfig = func() *config.Config {
	c := config.New()
	c.StrictUndefined = true
	c.KeepTrailingNewline = true
	return c
}()

// tplEnv is gonja's environment without the tags that read other files
// ({% include %}, {% import %}, {% from %}, {% extends %}, {% block %}):
// a model is one file, and gonja's include of a name its loader lacks
// crashes instead of failing. A model using one gets gonja's parse error
// for an unknown tag, naming the file and line.
var tplEnv = func() *exec.Environment {
	tags := map[string]parser.ControlStructureParser{}
	for _, name := range []string{"autoescape", "filter", "for", "if", "macro", "raw", "set", "with", "do", "break", "continue", "trans", "call"} {
		if p, ok := gonja.DefaultEnvironment.ControlStructures.Get(name); ok {
			tags[name] = p
		}
	}
	env := *gonja.DefaultEnvironment
	env.ControlStructures = exec.NewControlStructureSet(tags)
	return &env
}()

// parseTemplate parses one file; file names the errors.
func parseTemplate(file, src string) (*exec.Template, error) {
	id := "/" + strings.TrimPrefix(file, "/")
	loader, err := loaders.NewMemoryLoader(map[string]string{id: src})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	t, err := exec.NewTemplate(id, tplConfig, loader, tplEnv)
	if err != nil {
		return nil, templateError(file, src, err)
	}
	return t, nil
}

// AddMacros parses a file of {% macro %} definitions; every model and test
// may call them.
func (t *Templates) AddMacros(file, src string) error {
	tpl, err := parseTemplate(file, src)
	if err != nil {
		return err
	}
	t.macros = append(t.macros, tpl)
	t.macroThis = t.macroThis || thisRe.MatchString(src)
	return nil
}

// gonjaLine finds the line gonja's messages name: "(Line: 3 Col: 4" for
// parse errors, "at line 3" for execution errors.
var gonjaLine = regexp.MustCompile(`(?:\(Line[:=] ?(\d+) Col[:=] ?\d+[^)]*\)|at line (\d+))`)

// gonjaNoise is gonja's trail of where it was, already said by file:line.
var gonjaNoise = regexp.MustCompile(`(?s)failed to parse template '.*?': |unable to execute template: |Unable to execute controlStructure at line \d+: \w+\(Line=\d+ Col=\d+\): |Unable to render expression at line \d+: `)

// templateError turns gonja's message into "file:line: template error: …".
func templateError(file, src string, err error) error {
	msg := err.Error()
	line := 0
	if g := gonjaLine.FindAllStringSubmatch(msg, -1); g != nil {
		last := g[len(g)-1] // the innermost position
		line, _ = strconv.Atoi(last[1] + last[2])
	}
	msg = gonjaNoise.ReplaceAllString(msg, "")
	msg = strings.Join(strings.Fields(msg), " ")
	if line > 0 {
		return fmt.Errorf("%s:%d: template error: %s", file, line, msg)
	}
	return fmt.Errorf("%s: template error: %s", file, msg)
}

// rendering is one render of one model: its inputs and what the template
// told us on the way (config(...) calls, env_var values to keep out of logs).
type rendering struct {
	m    *Model
	vars Vars
	inc  *increment
	// conn runs run_query; nil while loading (dbt's execute is false).
	conn    *sql.Conn
	ctx     context.Context
	config  map[string]any
	secrets []string
	queried bool  // run_query was called: the model reads more than its SQL shows
	err     error // the first error a context function hit
}

// thisRe finds {{ this }} (and this.name, … inside an expression).
var thisRe = regexp.MustCompile(`\{[{%][^}]*\bthis\b`)

// readThis reports whether the model's template may read its own table.
func (r *rendering) readThis() bool {
	return thisRe.MatchString(r.m.SQL) || r.m.templates != nil && r.m.templates.macroThis
}

func (r *rendering) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// relation is what {{ this }} is: it prints as the quoted table name and
// has dbt's attributes.
// Fields are lower case because templates name them so (this.name).
type relation struct {
	name, identifier, schema, database string
}

func (r relation) String() string { return duck.Ident(r.identifier) }

// sqlNull is NULL in a cdw model's template.
type sqlNull struct{}

func (sqlNull) String() string { return "NULL" }

// hasTemplate reports whether s needs the template engine at all; plain
// SQL skips it (most models, and the per-model overhead matters).
func hasTemplate(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "{%") || strings.Contains(s, "{#")
}

// render expands the templating of m; inc is nil for a full build.
func (r *rendering) render() (string, error) {
	m := r.m
	if !hasTemplate(m.SQL) {
		return m.SQL, nil
	}
	tpl, err := m.template()
	if err != nil {
		return "", err
	}
	env := &exec.Environment{
		Context:           gonja.DefaultContext.Inherit(),
		Filters:           gonja.DefaultEnvironment.Filters,
		Tests:             gonja.DefaultEnvironment.Tests,
		ControlStructures: tplEnv.ControlStructures,
		Methods:           gonja.DefaultEnvironment.Methods,
	}
	r.globals(env.Context)
	if m.templates != nil {
		// Each model defines the macros in its own context, so a macro's
		// ref(), this and is_incremental() are the calling model's.
		for _, mt := range m.templates.macros {
			mr := exec.NewRenderer(env, io.Discard, tplConfig, nil, mt)
			if err := mr.Execute(); err != nil {
				return "", templateError(m.File, m.SQL, err)
			}
		}
	}
	var out strings.Builder
	if err := exec.NewRenderer(env, &out, tplConfig, nil, tpl).Execute(); err != nil {
		if r.err != nil {
			return "", r.err
		}
		return "", templateError(m.File, m.SQL, err)
	}
	if r.err != nil {
		return "", r.err
	}
	return out.String(), nil
}

// template parses the model's SQL once; later renders reuse it.
func (m *Model) template() (*exec.Template, error) {
	m.tplOnce.Do(func() { m.tpl, m.tplErr = parseTemplate(m.File, m.SQL) })
	return m.tpl, m.tplErr
}

// globals installs dbt's context functions.
func (r *rendering) globals(c *exec.Context) {
	m := r.m
	str := func(v *exec.Value) string { return v.String() }
	c.Set("ref", func(a *exec.VarArgs) (any, error) {
		if len(a.Args) < 1 || len(a.Args) > 2 || len(a.KwArgs) > 0 && a.KwArgs["v"] == nil && a.KwArgs["version"] == nil {
			return nil, fmt.Errorf("ref takes a model name, or a package and a model name")
		}
		name := strings.ToLower(str(a.Args[len(a.Args)-1]))
		if alias, ok := r.aliases()[name]; ok {
			name = alias
		}
		// Qualified, as dbt's relations are: a CTE of the same name (WITH
		// orders AS (… FROM {{ ref('orders') }})) must not capture it.
		return "main." + name, nil
	})
	c.Set("source", func(a *exec.VarArgs) (any, error) {
		if len(a.Args) != 2 {
			return nil, fmt.Errorf("source takes a source name and a table name")
		}
		return "raw." + strings.ToLower(str(a.Args[0])) + "_" + strings.ToLower(str(a.Args[1])), nil
	})
	c.Set("var", func(a *exec.VarArgs) (any, error) {
		if len(a.Args) < 1 || len(a.Args) > 2 {
			return nil, fmt.Errorf("var takes a name and an optional default")
		}
		name := str(a.Args[0])
		if v, ok := r.vars[name]; ok {
			if m.DBT {
				return v, nil
			}
			return sqlLiteral(v), nil
		}
		if len(a.Args) == 2 {
			d := a.Args[1]
			if m.DBT || !d.IsString() {
				return d.Interface(), nil
			}
			// cdw models: a string default is a SQL string, like a value from cdw.yaml.
			return sqlLiteral(d.String()), nil
		}
		return nil, fmt.Errorf("no value for var %q in config and no default", name)
	})
	if !m.DBT {
		// cdw models write SQL defaults, as in var('as_of', NULL).
		c.Set("NULL", sqlNull{})
	}
	c.Set("env_var", func(a *exec.VarArgs) (any, error) {
		if len(a.Args) < 1 || len(a.Args) > 2 {
			return nil, fmt.Errorf("env_var takes a name and an optional default")
		}
		name := str(a.Args[0])
		v, ok := os.LookupEnv(name)
		if !ok {
			if len(a.Args) < 2 {
				return nil, fmt.Errorf("env_var(%q): not set and no default", name)
			}
			return str(a.Args[1]), nil
		}
		// Values this short are no secret, and hiding them would garble
		// every message ("us" in "customers").
		if len(v) >= minSecret {
			r.secrets = append(r.secrets, v)
		}
		return v, nil
	})
	c.Set("config", func(a *exec.VarArgs) (any, error) {
		if len(a.Args) > 0 {
			return nil, fmt.Errorf("config takes keyword arguments, e.g. config(materialized='table')")
		}
		if r.config == nil {
			r.config = map[string]any{}
		}
		for k, v := range a.KwArgs {
			r.config[k] = v.ToGoSimpleType(false)
		}
		return "", nil
	})
	c.Set("this", relation{name: m.Name, identifier: m.Name, schema: "main", database: "warehouse"})
	c.Set("is_incremental", func() bool { return r.inc != nil })
	c.Set("execute", r.conn != nil)
	c.Set("target", map[string]any{"name": r.targetName(), "schema": r.targetSchema(), "type": "duckdb",
		"database": "warehouse", "threads": 1})
	c.Set("log", func(a *exec.VarArgs) (any, error) {
		if len(a.Args) != 1 {
			return nil, fmt.Errorf("log takes one message")
		}
		slog.Info("model log", "model", m.Name, "msg", r.redact(str(a.Args[0])))
		return "", nil
	})
	c.Set("run_query", func(a *exec.VarArgs) (any, error) {
		if len(a.Args) != 1 {
			return nil, fmt.Errorf("run_query takes one SQL string")
		}
		r.queried = true
		if r.conn == nil {
			return nil, nil // parsing: dbt's execute is false, run_query returns none
		}
		return runQuery(r.ctx, r.conn, str(a.Args[0]))
	})
	c.Set("new_rows", func(a *exec.VarArgs) (any, error) {
		if len(a.Args) != 1 {
			return nil, fmt.Errorf("new_rows takes one raw relation")
		}
		return newRows(r.inc, strings.ToLower(str(a.Args[0])))
	})
}

func (r *rendering) aliases() map[string]string {
	if r.m.templates == nil {
		return nil
	}
	return r.m.templates.aliases
}

func (r *rendering) targetName() string {
	if r.m.templates != nil && r.m.templates.Target.Name != "" {
		return r.m.templates.Target.Name
	}
	return "default"
}

func (r *rendering) targetSchema() string {
	if r.m.templates != nil && r.m.templates.Target.Schema != "" {
		return r.m.templates.Target.Schema
	}
	return "main"
}

// minSecret is the shortest env_var value kept out of messages.
const minSecret = 4

// redact hides env_var values from what is logged or shown.
func (r *rendering) redact(s string) string { return redact(s, r.secrets) }

func redact(s string, secrets []string) string {
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, "***")
	}
	return s
}

// newRows renders new_rows('raw.x'): on a full build (inc nil) all of
// raw.x, else only the rows of the files the model has not read yet.
func newRows(inc *increment, rel string) (string, error) {
	if !strings.HasPrefix(rel, "raw.") {
		return "", fmt.Errorf("new_rows reads a raw relation (raw.<entity> or raw.<source>_<entity>), not %q", rel)
	}
	if inc == nil {
		return rel, nil
	}
	files, tracked := inc.newFiles[rel]
	if !tracked {
		return rel, nil
	}
	if len(files) == 0 {
		return "(SELECT * FROM " + rel + " WHERE false)", nil
	}
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = duck.Literal(f)
	}
	// DuckDB prunes the scan to these files: the filter on the filename
	// column reaches read_parquet through the views.
	return "(SELECT * FROM " + rel + " WHERE _file IN (" + strings.Join(quoted, ", ") + "))", nil
}

// runQuery answers run_query: the rows as lists, and .columns/.rows as in
// dbt's table (rows[i][j], columns[j].values()).
func runQuery(ctx context.Context, conn *sql.Conn, q string) (any, error) {
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("run_query: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("run_query: %w", err)
	}
	var out []any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("run_query: %w", err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("run_query: %w", err)
	}
	return out, nil
}

// applyConfig merges config(...) into the header, as if written there.
func applyConfig(m *Model, cfg map[string]any) error {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := cfg[k]
		list := func() []string {
			switch x := v.(type) {
			case []any:
				out := make([]string, 0, len(x))
				for _, e := range x {
					out = append(out, fmt.Sprint(e))
				}
				return out
			default:
				return splitList(fmt.Sprint(x))
			}
		}
		var err error
		switch k {
		case "materialized", "publish", "always_rebuild", "early_cutoff", "replaces", "description":
			err = m.Header.add(k, fmt.Sprint(v), false)
		case "unique_key":
			m.Header.UniqueKey = list()
		case "partition_by":
			if d, ok := v.(map[string]any); ok { // dbt's {'field': 'order_date', …}
				v = d["field"]
			}
			m.Header.PartitionBy = fmt.Sprint(v)
		case "tags":
			m.Header.Tags = append(m.Header.Tags, list()...)
		case "rebuild_on":
			for _, d := range list() {
				m.Header.RebuildOn = append(m.Header.RebuildOn, strings.ToLower(d))
			}
		case "enabled":
			b, ok := v.(bool)
			if !ok {
				return fmt.Errorf("%s: config(enabled=…) must be true or false, got %v", m.File, v)
			}
			m.disabled = !b
		case "alias":
			a := strings.ToLower(fmt.Sprint(v))
			if !validModelName(a) {
				return fmt.Errorf("%s: config(alias=%q): a table name is letters, digits and _", m.File, a)
			}
			m.alias = a
		case "schema":
			return fmt.Errorf("%s: config(schema=%v): cdw builds every model in the warehouse's main schema; drop schema or publish the model to a schema instead", m.File, v)
		case "docs", "meta", "persist_docs", "grants", "contract":
			// documentation and access settings: nothing to build differently
		case "incremental_strategy", "on_schema_change", "full_refresh", "sql_header", "pre_hook", "post_hook", "pre-hook", "post-hook":
			return fmt.Errorf("%s: config(%s=…) is not supported by cdw (see transform/README.md)", m.File, k)
		default:
			return fmt.Errorf("%s: unknown config key %q (known: materialized, unique_key, partition_by, tags, enabled, alias, publish, always_rebuild, early_cutoff, rebuild_on, replaces, description)", m.File, k)
		}
		if err != nil {
			return fmt.Errorf("%s: config(%s=…): %w", m.File, k, err)
		}
	}
	return nil
}

// modelTemplate is the parse cache a Model carries.
type modelTemplate struct {
	tplOnce sync.Once
	tpl     *exec.Template
	tplErr  error
}

// Line markers let an error in the rendered SQL point into the model
// file: a diagnostic render with a marker at the start of every source line
// outside template tags says which source line each rendered line came from.
const lineMark, lineMarkEnd = "\x01", "\x02"

// markLines puts a marker before each line of src that starts outside a
// template tag.
func markLines(src string) string {
	var b strings.Builder
	inTag := "" // the closing delimiter we are inside, if any
	line := 1
	atStart := true
	for i := 0; i < len(src); i++ {
		if atStart && inTag == "" {
			b.WriteString(lineMark + strconv.Itoa(line) + lineMarkEnd)
		}
		atStart = false
		c := src[i]
		if inTag == "" && c == '{' && i+1 < len(src) {
			switch src[i+1] {
			case '{':
				inTag = "}}"
			case '%':
				inTag = "%}"
			case '#':
				inTag = "#}"
			}
		} else if inTag != "" && strings.HasPrefix(src[i:], inTag) {
			b.WriteString(inTag)
			i += len(inTag) - 1
			inTag = ""
			continue
		}
		b.WriteByte(c)
		if c == '\n' {
			line++
			atStart = true
		}
	}
	return b.String()
}

var markRe = regexp.MustCompile(lineMark + `(\d+)` + lineMarkEnd)

// sourceLine maps line n of the rendered SQL (whose text is text) to the
// line of the model file it came from; ok is false when no line matches.
func sourceLine(m *Model, vars Vars, inc *increment, n int, text string) (int, bool) {
	marked := &Model{Name: m.Name, File: m.File, SQL: markLines(m.SQL), DBT: m.DBT, templates: m.templates}
	out, err := render(marked, vars, inc)
	if err != nil {
		return 0, false
	}
	want := strings.Join(strings.Fields(text), " ")
	best, bestDist, last := 0, -1, 0
	for i, l := range strings.Split(out, "\n") {
		if g := markRe.FindAllStringSubmatch(l, -1); g != nil {
			last, _ = strconv.Atoi(g[len(g)-1][1])
			if strings.HasPrefix(l, lineMark) {
				// the line's own marker comes first: the line starts there
				last, _ = strconv.Atoi(g[0][1])
			}
		}
		plain := strings.Join(strings.Fields(markRe.ReplaceAllString(l, "")), " ")
		if plain != want || want == "" {
			continue
		}
		if d := abs(i + 1 - n); bestDist < 0 || d < bestDist {
			best, bestDist = last, d
		}
	}
	return best, bestDist >= 0 && best > 0
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
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
	return duck.Literal(v)
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
