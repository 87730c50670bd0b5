// Package transform builds the warehouse from plain DuckDB SQL model files.
// A model is one .sql file named after the relation it creates; its
// dependencies are read from the SQL itself by DuckDB's parser, and optional
// header comments configure it. Go code can join the graph as Go models and
// as scalar functions callable from SQL.
package transform

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
)

// Materialization says how a model's result is kept.
type Materialization string

// Materializations a model can declare with "-- materialized: …".
const (
	View        Materialization = "view"
	Table       Materialization = "table"
	Incremental Materialization = "incremental"
)

// Valid reports whether m is known.
func (m Materialization) Valid() bool {
	return m == View || m == Table || m == Incremental
}

// Model is one node of the transform graph.
type Model struct {
	Name string
	// File is where the model came from, as shown to users (e.g.
	// "sql/marts/customer_segments.sql" or a user directory path).
	File string
	// Dir is the model's folder relative to its root ("staging", "marts"…),
	// used by path: selection and to decide what is published.
	Dir    string
	SQL    string // the file as written
	Header Header
	Deps   []string // relations this model reads: models and raw.* views
	Go     *GoModel // non-nil for models implemented in Go
	Seed   *Seed    // non-nil for seeds (CSV files loaded as tables)
	// Builtin: the model comes from cdw's own package (the first root).
	Builtin bool
	// DBT: the model comes from a dbt project, so var() renders values as
	// they are (dbt's semantics) rather than as SQL literals.
	DBT bool
	// volatile lists the functions the SQL calls that make it read more
	// than its inputs (now(), read_csv…): such a model always rebuilds.
	volatile []string

	templates *Templates // macros and target; nil: none
	modelTemplate
	disabled  bool           // config(enabled=false)
	alias     string         // config(alias=…): the table's name when not the file's
	defaults  map[string]any // dbt_project.yml +config for the model's folder
	props     map[string]any // its properties file's config:
	queries   bool           // calls run_query: reads more than its SQL shows
	full      *fullRender    // Load's render for a full build, reused by the run
	readsThis bool           // its template names this: reading its own table is fine
}

// Header is the configuration read from a model's leading comments.
type Header struct {
	Materialized Materialization
	UniqueKey    []string
	PartitionBy  string
	Tests        []TestSpec
	Description  string
	Tags         []string
	Columns      []ColumnDoc
	Publish      *bool // nil: publish when the model lives under a marts folder
	// AlwaysRebuild: the model reads something besides its declared inputs
	// (the clock, a file, the network), so a run never counts it as up to
	// date.
	AlwaysRebuild bool
	// EarlyCutoff: after a rebuild, compare the table's content with the
	// last build's; when equal, the model keeps its version and models that
	// read it count as up to date. Worth it for a small table that sits
	// between a changing input and expensive models.
	EarlyCutoff bool
	// RebuildOn: inputs of an incremental model whose new version makes it
	// build in full, because its merge only reprocesses what raw rows
	// touched and a change there reaches rows they did not (a new identity
	// map moves orders between customers).
	RebuildOn []string
	// Replaces is "builtin" when a user model deliberately overrides the
	// built-in model of the same name.
	Replaces string
}

// ColumnDoc documents one output column.
type ColumnDoc struct{ Name, Description string }

// TestSpec is a data test declared in a header, e.g. unique(customer_id).
type TestSpec struct {
	Kind     string   // unique, not_null, accepted_values, relationships
	Args     []string // column first, then kind-specific arguments
	Severity string   // error (default) or warn
	Where    string   // dbt's where config: test only the rows matching it
}

// Published reports whether the model is a mart for BI readers.
func (m *Model) Published() bool {
	if m.Header.Publish != nil {
		return *m.Header.Publish
	}
	return m.Dir == "marts" || strings.HasPrefix(m.Dir, "marts/")
}

var headerLine = regexp.MustCompile(`^--\s*([A-Za-z_][A-Za-z0-9_ ]*?)\s*:\s?(.*)$`)

// headerKeys are the keys a model header may use; anything else is a typo.
var headerKeys = map[string]bool{
	"materialized": true, "unique_key": true, "partition_by": true, "tests": true,
	"description": true, "tags": true, "column": true, "publish": true,
	"always_rebuild": true, "early_cutoff": true, "rebuild_on": true, "replaces": true,
}

// ParseHeader reads the leading "-- key: value" comment lines of a model.
// Lines indented after a key continue its value. A comment line without a
// key is prose and ignored; an unknown key is an error naming the line.
func ParseHeader(file, sql string) (Header, error) {
	h := Header{Materialized: View}
	var last string
	lines := strings.Split(sql, "\n")
	for i, raw := range lines {
		line := strings.TrimRight(raw, "\r \t")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			last = ""
			continue
		}
		if !strings.HasPrefix(trimmed, "--") {
			break
		}
		body := strings.TrimPrefix(trimmed, "--")
		if last != "" && (strings.HasPrefix(body, "   ") || strings.HasPrefix(body, "\t")) {
			if err := h.add(last, strings.TrimSpace(body), true); err != nil {
				return h, fmt.Errorf("%s:%d: %w", file, i+1, err)
			}
			continue
		}
		m := headerLine.FindStringSubmatch(trimmed)
		if m == nil || strings.Contains(m[1], " ") {
			last = ""
			continue
		}
		key := strings.ToLower(m[1])
		if !headerKeys[key] {
			return h, fmt.Errorf("%s:%d: unknown header key %q (known: materialized, unique_key, partition_by, tests, description, tags, column, publish, always_rebuild, early_cutoff, rebuild_on, replaces)", file, i+1, m[1])
		}
		if err := h.add(key, strings.TrimSpace(m[2]), false); err != nil {
			return h, fmt.Errorf("%s:%d: %w", file, i+1, err)
		}
		last = key
	}
	return h, h.check(file)
}

// check validates settings that depend on each other, after the header and
// any config(...) call are read.
func (h *Header) check(file string) error {
	if h.Materialized == Incremental && len(h.UniqueKey) == 0 && h.PartitionBy == "" {
		return fmt.Errorf("%s: an incremental model needs unique_key (merge) or partition_by (partition overwrite)", file)
	}
	if len(h.RebuildOn) > 0 && h.Materialized != Incremental {
		return fmt.Errorf("%s: rebuild_on is for incremental models; this one is %s", file, h.Materialized)
	}
	return nil
}

func (h *Header) add(key, val string, cont bool) error {
	switch key {
	case "materialized":
		m := Materialization(strings.ToLower(val))
		if !m.Valid() {
			return fmt.Errorf("materialized must be view, table or incremental, got %q", val)
		}
		h.Materialized = m
	case "unique_key":
		h.UniqueKey = append(h.UniqueKey, splitList(val)...)
	case "partition_by":
		h.PartitionBy = val
	case "replaces":
		if !strings.EqualFold(val, "builtin") {
			return fmt.Errorf("replaces must be builtin, got %q", val)
		}
		h.Replaces = "builtin"
	case "rebuild_on":
		for _, d := range splitList(val) {
			h.RebuildOn = append(h.RebuildOn, strings.ToLower(d))
		}
	case "tags":
		h.Tags = append(h.Tags, splitList(val)...)
	case "description":
		if cont && h.Description != "" {
			h.Description += " "
		}
		h.Description += val
	case "column":
		if cont && len(h.Columns) > 0 {
			h.Columns[len(h.Columns)-1].Description += " " + val
			return nil
		}
		name, desc, ok := strings.Cut(val, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("column needs \"name: description\", got %q", val)
		}
		h.Columns = append(h.Columns, ColumnDoc{Name: strings.TrimSpace(name), Description: strings.TrimSpace(desc)})
	case "publish":
		b, err := parseBool(key, val)
		if err != nil {
			return err
		}
		h.Publish = &b
	case "always_rebuild":
		b, err := parseBool(key, val)
		if err != nil {
			return err
		}
		h.AlwaysRebuild = b
	case "early_cutoff":
		b, err := parseBool(key, val)
		if err != nil {
			return err
		}
		h.EarlyCutoff = b
	case "tests":
		ts, err := parseTests(val)
		if err != nil {
			return err
		}
		h.Tests = append(h.Tests, ts...)
	}
	return nil
}

func parseBool(key, val string) (bool, error) {
	b := strings.EqualFold(val, "true")
	if !b && !strings.EqualFold(val, "false") {
		return false, fmt.Errorf("%s must be true or false, got %q", key, val)
	}
	return b, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

var testKinds = map[string]int{"unique": 1, "not_null": 1, "accepted_values": 2, "relationships": 2}

// parseTests reads "unique(a), not_null(b) warn, accepted_values(c, 'x','y')".
func parseTests(s string) ([]TestSpec, error) {
	var out []TestSpec
	rest := strings.TrimSpace(s)
	for rest != "" {
		open := strings.IndexByte(rest, '(')
		if open < 0 {
			return nil, fmt.Errorf("test %q needs arguments in parentheses, e.g. not_null(customer_id)", rest)
		}
		kind := strings.TrimSpace(rest[:open])
		min, ok := testKinds[kind]
		if !ok {
			return nil, fmt.Errorf("unknown test %q (known: unique, not_null, accepted_values, relationships)", kind)
		}
		closeAt, err := matchParen(rest, open)
		if err != nil {
			return nil, err
		}
		args, err := splitArgs(rest[open+1 : closeAt])
		if err != nil {
			return nil, err
		}
		if len(args) < min {
			return nil, fmt.Errorf("%s needs at least %d argument(s)", kind, min)
		}
		if kind == "relationships" && (len(args) != 2 || !strings.Contains(args[1], ".")) {
			return nil, fmt.Errorf("relationships needs (column, model.column), got %v", args)
		}
		if kind == "accepted_values" {
			for _, v := range args[1:] {
				if !isLiteral(v) {
					return nil, fmt.Errorf("accepted_values(%s, …): %s must be a 'quoted' string or a number", args[0], v)
				}
			}
		}
		t := TestSpec{Kind: kind, Args: args, Severity: "error"}
		rest = strings.TrimSpace(rest[closeAt+1:])
		word, after, _ := strings.Cut(rest, ",")
		switch strings.TrimSpace(word) {
		case "warn", "error":
			t.Severity = strings.TrimSpace(word)
			rest = strings.TrimSpace(after)
		case "":
			rest = strings.TrimSpace(after)
		default:
			if !strings.HasPrefix(rest, ",") {
				return nil, fmt.Errorf("expected a comma or warn/error after %s(…), found %q", kind, rest)
			}
			rest = strings.TrimSpace(rest[1:])
		}
		out = append(out, t)
	}
	return out, nil
}

func matchParen(s string, open int) (int, error) {
	depth, inStr := 0, false
	for i := open; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			inStr = !inStr
		case inStr:
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("unbalanced parentheses in %q", s)
}

// splitArgs splits on commas outside quotes; quoted values keep their quotes
// so they can go into SQL as literals.
func splitArgs(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inStr := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\'' {
			inStr = !inStr
		}
		if c == ',' && !inStr {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	if inStr {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if t := strings.TrimSpace(cur.String()); t != "" {
		out = append(out, t)
	}
	return out, nil
}

// isLiteral reports whether s is a single-quoted SQL string or a number.
func isLiteral(s string) bool {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return true
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// fullRender is a model's SQL as rendered for a full build with vars (and
// the env_var values it holds, kept out of messages).
type fullRender struct {
	vars    Vars
	body    string
	secrets []string
}

// fullBody returns the SQL Load rendered for a full build when vars are
// the ones Load used, so a run renders each model once; ok is false when
// the model must render again (other vars, or run_query, which answers
// differently once connected).
func (m *Model) fullBody(vars Vars) (body string, secrets []string, ok bool) {
	if m.full == nil || m.queries || !maps.Equal(m.full.vars, vars) {
		return "", nil, false
	}
	return m.full.body, m.full.secrets, true
}
