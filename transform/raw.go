package transform

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/cdwhq/cdw/internal/duck"
)

// The raw layer: the views models read extracted rows through. pipelines
// describes what extract has committed in the neutral values below; the
// DuckDB SQL of the views is written here, beside the models that read them.

// RawColumn is a canonical column of an entity.
type RawColumn struct {
	Name string
	Type string // DuckDB type
	// Cast: the column is cast to Type whatever the files hold (money:
	// a source's numeric(12,2), float8 or an old DOUBLE file becomes
	// DECIMAL(18,4), so the union of the sources stays exact).
	Cast bool
}

// RawExpr is a column a source's mapping computes ({sql: "price * qty"})
// from the columns it landed.
type RawExpr struct{ Column, Type, SQL string }

// RawFile is a committed Parquet file of one source's entity.
type RawFile struct {
	Path string // absolute
	// Old: written before money was DECIMAL; read apart and cast, since
	// one read_parquet over both would take DOUBLE for both.
	Old bool
}

// RawSource is one source's entity as extract committed it.
type RawSource struct {
	Source, Entity string
	// Columns are the entity's canonical columns; nil for a raw table (an
	// entity of no canonical name, e.g. order_items), whose view has the
	// columns its files have.
	Columns []RawColumn
	Exprs   []RawExpr
	Files   []RawFile
}

// RawEntity is a canonical entity: raw.<entity> is the union of every
// source's rows of it, with its columns even before any data arrives.
type RawEntity struct {
	Name    string
	Columns []RawColumn
}

// RawLayer is every raw relation of a run.
type RawLayer struct {
	Entities []RawEntity
	Sources  []RawSource
}

// Relations lists the raw relations models may read: raw.<entity> and
// raw.<source>_<entity>.
func (l RawLayer) Relations() []string {
	var out []string
	for _, e := range l.Entities {
		out = append(out, "raw."+e.Name)
	}
	for _, s := range l.Sources {
		out = append(out, "raw."+s.Source+"_"+s.Entity)
	}
	sort.Strings(out)
	return out
}

// CreateRawViews points the raw schema at the committed files only: a file
// that state does not list (left by a crash) is never read. It returns what
// each view reads, so a run can tell which models are up to date and which
// files an incremental model has not read yet.
func CreateRawViews(ctx context.Context, db *sql.DB, l RawLayer) (map[string]RawInput, error) {
	for _, s := range l.Sources {
		for _, e := range s.Exprs {
			if err := checkExpr(ctx, db, s, e); err != nil {
				return nil, err
			}
		}
	}
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS raw"); err != nil {
		return nil, fmt.Errorf("creating raw schema: %w", err)
	}
	views, inputs := l.views()
	for _, v := range views {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE VIEW raw.%s AS %s", duck.Ident(v.name), v.body)); err != nil {
			if strings.Contains(v.body, "REPLACE (CAST((") {
				return nil, fmt.Errorf("creating view raw.%s (check the {sql: …} expressions of its mapping: they read the columns raw.%s lands): %w", v.name, v.name, err)
			}
			return nil, fmt.Errorf("creating view raw.%s: %w", v.name, err)
		}
	}
	return inputs, nil
}

// Inputs describes each raw relation as CreateRawViews would make it,
// without touching a database (cdw models --status).
func (l RawLayer) Inputs() map[string]RawInput {
	_, inputs := l.views()
	return inputs
}

type rawView struct{ name, body string }

// views defines the raw views in the order they must be created, and
// describes each.
func (l RawLayer) views() ([]rawView, map[string]RawInput) {
	var views []rawView
	inputs := map[string]RawInput{}
	for _, ent := range l.Entities {
		empty := emptySelect(ent.Columns)
		var parts []string
		all := RawInput{Shape: empty}
		for _, s := range l.Sources {
			if s.Entity != ent.Name || s.Columns == nil {
				continue
			}
			view := s.Source + "_" + s.Entity
			body, in := canonicalView(s, empty)
			views = append(views, rawView{view, body})
			inputs["raw."+view] = in
			all.Shape += "\n" + in.Shape
			all.Files = append(all.Files, in.Files...)
			parts = append(parts, "SELECT * FROM raw."+duck.Ident(view))
		}
		body := empty
		if len(parts) > 0 {
			body = strings.Join(parts, "\nUNION ALL BY NAME\n")
		}
		views = append(views, rawView{ent.Name, body})
		inputs["raw."+ent.Name] = all
	}
	// Raw tables (entities of no canonical name: order_items, reviews) are
	// readable as raw.<source>_<name>, with the columns their files have.
	for _, s := range l.Sources {
		if s.Columns != nil {
			continue
		}
		read := func(list string) string {
			return fmt.Sprintf("SELECT *, %s AS _source FROM read_parquet([%s], union_by_name = true, filename = '_file')",
				duck.Literal(s.Source), list)
		}
		body := "SELECT NULL::VARCHAR AS _source, NULL::VARCHAR AS _file WHERE false"
		var paths, quoted []string
		for _, f := range s.Files {
			paths, quoted = append(paths, f.Path), append(quoted, duck.Literal(f.Path))
		}
		if len(quoted) > 0 {
			body = read(strings.Join(quoted, ", "))
		}
		view := s.Source + "_" + s.Entity
		views = append(views, rawView{view, body})
		inputs["raw."+view] = RawInput{Shape: read("…"), Files: paths}
	}
	return views, inputs
}

// canonicalView is the view of one source's canonical entity: its files
// over the entity's empty, typed relation, the mapping's expressions
// applied, money cast to its canonical type.
func canonicalView(s RawSource, empty string) (string, RawInput) {
	// The shape is the view without its file list: sources and columns.
	// Whether there are files at all does not count, so a first file
	// extends the relation rather than reshaping it.
	read := func(list string) string {
		return canonicalTypes(s.Columns, computed(s.Exprs, fmt.Sprintf("%s\nUNION ALL BY NAME\nSELECT *, %s AS _source FROM read_parquet([%s], union_by_name = true, filename = '_file')",
			empty, duck.Literal(s.Source), list)))
	}
	in := RawInput{Shape: read("…")}
	var current, old []string
	for _, f := range s.Files {
		in.Files = append(in.Files, f.Path)
		if f.Old {
			old = append(old, duck.Literal(f.Path))
		} else {
			current = append(current, duck.Literal(f.Path))
		}
	}
	body := empty
	switch {
	case len(current) > 0 && len(old) > 0:
		body = read(strings.Join(current, ", ")) + "\nUNION ALL BY NAME\n" + read(strings.Join(old, ", "))
	case len(current) > 0:
		body = read(strings.Join(current, ", "))
	case len(old) > 0:
		body = read(strings.Join(old, ", "))
	}
	if len(old) > 0 {
		in.Shape += "\n-- and files of raw format 0"
	}
	return body, in
}

// computed evaluates a mapping's expressions on every row of rel, which
// has all the canonical columns and whatever else the source landed.
func computed(exprs []RawExpr, rel string) string {
	if len(exprs) == 0 {
		return rel
	}
	var cols []string
	for _, e := range exprs {
		cols = append(cols, fmt.Sprintf("CAST((%s) AS %s) AS %s", e.SQL, e.Type, duck.Ident(e.Column)))
	}
	return "SELECT * REPLACE (" + strings.Join(cols, ", ") + ") FROM (" + rel + ")"
}

// checkExpr makes sure a mapping expression is one scalar expression of
// the row: DuckDB's own parser reads "SELECT (<expr>)", which must be one
// statement selecting one expression, from no table, with no subquery.
// Pasted into the view, anything else could read other tables or end the
// statement; the config's author can write models anyway, so this is about
// clear errors and a view that stays a view of the row.
func checkExpr(ctx context.Context, db *sql.DB, s RawSource, e RawExpr) error {
	var js string
	if err := db.QueryRowContext(ctx, "SELECT json_serialize_sql("+duck.Literal("SELECT ("+e.SQL+")")+")::VARCHAR").Scan(&js); err != nil {
		return fmt.Errorf("source %s entity %s column %s: expression %q: %w", s.Source, s.Entity, e.Column, e.SQL, err)
	}
	var parsed struct {
		Error      bool   `json:"error"`
		Message    string `json:"error_message"`
		Statements []struct {
			Node struct {
				SelectList []json.RawMessage `json:"select_list"`
				FromTable  struct {
					Type string `json:"type"`
				} `json:"from_table"`
			} `json:"node"`
		} `json:"statements"`
	}
	if err := json.Unmarshal([]byte(js), &parsed); err != nil {
		return fmt.Errorf("source %s entity %s column %s: expression %q: %w", s.Source, s.Entity, e.Column, e.SQL, err)
	}
	bad := ""
	switch {
	case parsed.Error:
		bad = parsed.Message
	case len(parsed.Statements) != 1 || len(parsed.Statements[0].Node.SelectList) != 1 || parsed.Statements[0].Node.FromTable.Type != "EMPTY":
		bad = "not one expression"
	case strings.Contains(js, `"SUBQUERY"`):
		bad = "a subquery reads other tables; write a model for that"
	}
	if bad != "" {
		return fmt.Errorf("source %s entity %s column %s: expression %q is no expression of the row's columns: %s", s.Source, s.Entity, e.Column, e.SQL, bad)
	}
	return nil
}

// canonicalTypes casts the columns marked Cast of a relation that has
// every canonical column to their canonical type.
func canonicalTypes(columns []RawColumn, rel string) string {
	var casts []string
	for _, c := range columns {
		if c.Cast {
			q := duck.Ident(c.Name)
			casts = append(casts, fmt.Sprintf("CAST(%s AS %s) AS %s", q, c.Type, q))
		}
	}
	if len(casts) == 0 {
		return rel
	}
	return "SELECT * REPLACE (" + strings.Join(casts, ", ") + ") FROM (" + rel + ")"
}

// emptySelect is a typed, empty relation with the entity's canonical columns,
// so models can rely on every column existing even before any data arrives.
func emptySelect(columns []RawColumn) string {
	cols := make([]string, 0, len(columns)+4)
	for _, c := range columns {
		cols = append(cols, fmt.Sprintf("NULL::%s AS %s", c.Type, duck.Ident(c.Name)))
	}
	// _source_file and _source_line (file sources write them) name where a
	// row came from; the line breaks ties between versions of a key within
	// one file: the later line wins
	cols = append(cols, "NULL::VARCHAR AS _source", "NULL::VARCHAR AS _file", "NULL::VARCHAR AS _source_file",
		"NULL::BIGINT AS _source_line")
	return "SELECT " + strings.Join(cols, ", ") + " WHERE false"
}
