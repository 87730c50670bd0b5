package transform

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2" // DuckDB driver
)

// Loading follows the flow of the files: discover (this file) walks the
// roots and reads properties files; template.go renders each model; deps.go
// finds what it reads and orders the graph (transform/dag); materialize.go
// builds; run.go schedules a run.

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
	d := &discovered{tpls: &Templates{Target: opts.Target}, testFiles: map[string]*DataTest{}, docBlocks: docs{}}
	for ri, root := range roots {
		if err := d.walk(root, ri == 0 && !opts.NoBuiltins); err != nil {
			return nil, fmt.Errorf("loading models from %s: %w", root.Name, err)
		}
	}
	props, err := d.properties()
	if err != nil {
		return nil, err
	}
	// Render each model once for its config(...) calls: they may rename it
	// (alias), disable it or mark it as replacing a built-in.
	rendered := map[*Model]string{}
	for _, m := range d.models {
		body, err := m.load(opts.Vars)
		if err != nil {
			return nil, err
		}
		rendered[m] = body
	}
	if err := props.describe(d.models, d.docBlocks); err != nil {
		return nil, err
	}
	byName, err := d.name(opts.Vars, rendered)
	if err != nil {
		return nil, err
	}
	if !opts.NoBuiltins {
		if err := addGoModels(byName); err != nil {
			return nil, err
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
	if err := resolveDeps(ctx, parser, byName, raw, rendered); err != nil {
		return nil, err
	}
	order, err := topoSort(byName)
	if err != nil {
		return nil, err
	}
	exists := func(rel string) bool { return raw[rel] || byName[rel] != nil }
	p := &Project{Models: order, byName: byName, Sources: props.sources, Vars: opts.Vars}
	for _, m := range order {
		ts, err := headerTests(m, exists)
		if err != nil {
			return nil, err
		}
		p.Tests = append(p.Tests, ts...)
	}
	tests, err := d.tests(ctx, parser, opts.Vars, exists)
	if err != nil {
		return nil, err
	}
	p.Tests = append(p.Tests, tests...)
	return p, nil
}

// discovered is what walking the roots found, before any rendering.
type discovered struct {
	tpls      *Templates
	models    []*Model
	schemas   []*schemaFile
	testFiles map[string]*DataTest // later roots replace by name, like models
	docBlocks docs                 // dbt's {% docs name %} blocks in .md files
}

// walk reads one root's files: models, seeds, macros, tests, properties
// and docs.
func (d *discovered) walk(root Root, builtin bool) error {
	inRoot := map[string]string{}
	return fs.WalkDir(root.FS, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		return d.file(root, builtin, inRoot, p)
	})
}

func under(dir, folder string) bool { return dir == folder || strings.HasPrefix(dir, folder+"/") }

// file reads one file of a root; inRoot holds the root's model names so far.
func (d *discovered) file(root Root, builtin bool, inRoot map[string]string, p string) error {
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
		return d.tpls.AddMacros(file, string(data))
	case kind == TestsRoot:
		sev, tags, err := parseTestFile(file, string(data))
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(path.Base(p), ".sql")
		d.testFiles[name] = &DataTest{Name: name, File: file, Severity: sev, SQL: string(data), Tags: tags}
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
		d.models = append(d.models, m)
		return nil
	case ext == ".md":
		return d.docBlocks.add(file, string(data))
	case ext != ".sql":
		sf, err := parseSchemaFile(file, data)
		if err != nil {
			return err
		}
		d.schemas = append(d.schemas, sf)
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
		Builtin: builtin, DBT: root.DBT, templates: d.tpls}
	if cfg := folderConfig(root.folders, dir); len(cfg) > 0 {
		m.defaults = cfg
	}
	d.models = append(d.models, m)
	return nil
}

// properties are the models and seeds the properties files describe.
type properties struct {
	entry   map[string]*schemaModel
	file    map[string]string
	sources []SourceFreshness
}

// properties reads the properties files: config and seeds' column_types
// before rendering (describe takes descriptions and tests after).
func (d *discovered) properties() (*properties, error) {
	ps := &properties{entry: map[string]*schemaModel{}, file: map[string]string{}}
	for _, sf := range d.schemas {
		for i := range sf.Models {
			sm := &sf.Models[i]
			n := strings.ToLower(sm.Name)
			if prev, dup := ps.file[n]; dup {
				return nil, fmt.Errorf("%s: model %s is described twice (also in %s)", sf.file, sm.Name, prev)
			}
			ps.entry[n], ps.file[n] = sm, sf.file
		}
		for i := range sf.Seeds {
			sm := &sf.Seeds[i]
			n := strings.ToLower(sm.Name)
			ps.entry[n], ps.file[n] = sm, sf.file
		}
		fr, err := sf.sourceFreshness()
		if err != nil {
			return nil, err
		}
		ps.sources = append(ps.sources, fr...)
		for name, types := range sf.seedTypes() {
			for _, m := range d.models {
				if m.Seed != nil && m.Name == name {
					if m.Seed.Types == nil {
						m.Seed.Types = map[string]string{}
					}
					maps.Copy(m.Seed.Types, types)
					m.SQL = m.Seed.sql()
				}
			}
		}
	}
	for _, m := range d.models {
		if sm := ps.entry[m.Name]; sm != nil && m.Seed == nil && !m.Builtin {
			m.props = sm.Config
		}
	}
	return ps, nil
}

// describe applies the properties files' descriptions and tests; an entry
// naming no model or seed is an error.
func (ps *properties) describe(models []*Model, docBlocks docs) error {
	described := map[string]bool{}
	for _, m := range models {
		if sm := ps.entry[m.Name]; sm != nil && !m.Builtin && !m.disabled {
			if err := sm.apply(ps.file[m.Name], m, docBlocks); err != nil {
				return err
			}
			described[m.Name] = true
		}
	}
	for _, n := range slices.Sorted(maps.Keys(ps.entry)) {
		if !described[n] {
			return fmt.Errorf("%s: describes %s, which is no model or seed of the project", ps.file[n], n)
		}
	}
	return nil
}

// name gives every enabled model its table name (an alias wins) and checks
// names are unique, but for a user model replacing a built-in one. ref()
// of an aliased model renders its table name, so aliases render again.
func (d *discovered) name(vars Vars, rendered map[*Model]string) (map[string]*Model, error) {
	byName := map[string]*Model{}
	aliases := map[string]string{}
	for _, m := range d.models {
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
	if len(aliases) == 0 {
		return byName, nil
	}
	d.tpls.aliases = aliases
	for _, m := range byName {
		r := &rendering{m: m, vars: vars}
		body, err := r.render()
		if err != nil {
			return nil, err
		}
		rendered[m] = body
		m.full = &fullRender{vars: maps.Clone(vars), body: body, secrets: r.secrets}
	}
	return byName, nil
}

// addGoModels adds the registered Go models to the project's models.
func addGoModels(byName map[string]*Model) error {
	for _, g := range registeredGoModels() {
		if m, dup := byName[g.Name]; dup {
			return fmt.Errorf("%s: a Go model is already named %s", m.File, g.Name)
		}
		byName[g.Name] = &Model{Name: g.Name, File: "(go) " + g.Name, Dir: "core", Go: &g, Deps: g.Deps, Builtin: true,
			Header: Header{Materialized: Table, Description: g.Description, Columns: g.Columns, Tags: g.Tags}}
	}
	return nil
}

// tests renders the test files and checks that what they read exists.
func (d *discovered) tests(ctx context.Context, parser *sql.DB, vars Vars, exists func(string) bool) ([]*DataTest, error) {
	var out []*DataTest
	for _, name := range slices.Sorted(maps.Keys(d.testFiles)) {
		t := d.testFiles[name]
		rendered, err := Render(&Model{Name: name, File: t.File, SQL: t.SQL, templates: d.tpls}, vars)
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
		out = append(out, t)
	}
	return out, nil
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
