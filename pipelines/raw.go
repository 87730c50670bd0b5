package pipelines

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/load"
	"github.com/cdwhq/cdw/transform"
)

// rawRelations lists the raw views models may read: raw.<entity> (every
// source's rows of that entity) and raw.<source>_<entity>.
func rawRelations(cfg *Config) []string {
	var out []string
	for _, e := range extract.EntityNames() {
		out = append(out, "raw."+e)
	}
	for _, s := range cfg.Sources {
		for _, e := range s.Options.Get("entities").Keys() {
			out = append(out, "raw."+s.Name+"_"+e)
		}
	}
	sort.Strings(out)
	return out
}

// createRawViews points the raw schema at the committed Parquet files only:
// a file that state does not list (left by a crash) is never read. It
// returns what each view reads, so the transform can tell which models are
// up to date and which files an incremental model has not read yet.
func createRawViews(ctx context.Context, db *sql.DB, cfg *Config) (map[string]transform.RawInput, error) {
	views, inputs, err := rawViews(cfg)
	if err != nil {
		return nil, err
	}
	for _, s := range cfg.Sources {
		for _, name := range s.Options.Get("entities").Keys() {
			ent, err := extract.LookupEntity(name)
			if err != nil {
				continue
			}
			for _, e := range mappingExprs(ent, s.Options.Get("entities").Get(name)) {
				if err := checkExpr(ctx, db, s.Name, name, e); err != nil {
					return nil, err
				}
			}
		}
	}
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS raw"); err != nil {
		return nil, fmt.Errorf("creating raw schema: %w", err)
	}
	for _, v := range views {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("CREATE OR REPLACE VIEW raw.%s AS %s", load.QuoteIdent(v.name), v.body)); err != nil {
			if strings.Contains(v.body, "REPLACE (CAST((") {
				return nil, fmt.Errorf("creating view raw.%s (check the {sql: …} expressions of its mapping: they read the columns raw.%s lands): %w", v.name, v.name, err)
			}
			return nil, fmt.Errorf("creating view raw.%s: %w", v.name, err)
		}
	}
	return inputs, nil
}

type rawView struct{ name, body string }

// rawViews defines the raw views from the committed extract state, in the
// order they must be created, and describes each for the transform.
func rawViews(cfg *Config) ([]rawView, map[string]transform.RawInput, error) {
	states, err := extract.StateStore{Dir: cfg.Warehouse}.All()
	if err != nil {
		return nil, nil, err
	}
	files := map[string][]string{} // source_entity → absolute paths
	// and of those, the files written before money was DECIMAL (RawFormat
	// 2): read apart and cast, since one read_parquet over both would take
	// DOUBLE for both.
	oldFiles := map[string]bool{}
	for _, st := range states {
		for _, f := range st.Files {
			key := st.Source + "_" + st.Entity
			p := filepath.Join(cfg.Warehouse, filepath.FromSlash(f.Path))
			files[key] = append(files[key], p)
			if f.Format < extract.RawFormat {
				oldFiles[p] = true
			}
		}
	}
	var views []rawView
	inputs := map[string]transform.RawInput{}
	for _, name := range extract.EntityNames() {
		ent, _ := extract.LookupEntity(name)
		empty := emptySelect(ent)
		var parts []string
		all := transform.RawInput{Shape: empty}
		for _, s := range cfg.Sources {
			if !contains(s.Options.Get("entities").Keys(), name) {
				continue
			}
			view := s.Name + "_" + name
			exprs := mappingExprs(ent, s.Options.Get("entities").Get(name))
			// The shape is the view without its file list: sources and
			// columns. Whether there are files at all does not count, so
			// a first file extends the relation rather than reshaping it.
			read := func(list string) string {
				return canonicalTypes(ent, computed(exprs, fmt.Sprintf("%s\nUNION ALL BY NAME\nSELECT *, %s AS _source FROM read_parquet([%s], union_by_name = true, filename = '_file')",
					empty, load.QuoteString(s.Name), list)))
			}
			shape := read("…")
			body := empty
			var current, old []string
			for _, f := range files[view] {
				if oldFiles[f] {
					old = append(old, load.QuoteString(f))
				} else {
					current = append(current, load.QuoteString(f))
				}
			}
			switch {
			case len(current) > 0 && len(old) > 0:
				body = read(strings.Join(current, ", ")) + "\nUNION ALL BY NAME\n" + read(strings.Join(old, ", "))
			case len(current) > 0:
				body = read(strings.Join(current, ", "))
			case len(old) > 0:
				body = read(strings.Join(old, ", "))
			}
			if len(old) > 0 {
				shape += "\n-- and files of raw format 0"
			}
			views = append(views, rawView{view, body})
			inputs["raw."+view] = transform.RawInput{Shape: shape, Files: files[view]}
			all.Shape += "\n" + shape
			all.Files = append(all.Files, files[view]...)
			parts = append(parts, "SELECT * FROM raw."+load.QuoteIdent(view))
		}
		body := empty
		if len(parts) > 0 {
			body = strings.Join(parts, "\nUNION ALL BY NAME\n")
		}
		views = append(views, rawView{name, body})
		inputs["raw."+name] = all
	}
	// Raw tables (entities of no canonical name: order_items, reviews) are
	// readable as raw.<source>_<name>, with the columns their files have.
	for _, s := range cfg.Sources {
		for _, name := range s.Options.Get("entities").Keys() {
			if ent, err := extract.ResolveEntity(name); err != nil || !ent.Raw {
				continue
			}
			view := s.Name + "_" + name
			empty := "SELECT NULL::VARCHAR AS _source, NULL::VARCHAR AS _file WHERE false"
			read := func(list string) string {
				return fmt.Sprintf("SELECT *, %s AS _source FROM read_parquet([%s], union_by_name = true, filename = '_file')",
					load.QuoteString(s.Name), list)
			}
			body := empty
			if fs := files[view]; len(fs) > 0 {
				quoted := make([]string, len(fs))
				for i, f := range fs {
					quoted[i] = load.QuoteString(f)
				}
				body = read(strings.Join(quoted, ", "))
			}
			views = append(views, rawView{view, body})
			inputs["raw."+view] = transform.RawInput{Shape: read("…"), Files: files[view]}
		}
	}
	return views, inputs, nil
}

// mappingExpr is a column a mapping computes ({sql: "price * qty"}).
type mappingExpr struct{ col, typ, sql string }

// mappingExprs lists the computed columns of a source entity's mapping
// (columns: for files, fields: for HTTP); the extracts have checked them.
func mappingExprs(ent extract.Entity, n config.Node) []mappingExpr {
	var out []mappingExpr
	for _, key := range []string{"columns", "fields"} {
		m := n.Get(key)
		for _, k := range m.Keys() {
			c, ok := ent.Column(k)
			if !ok {
				continue
			}
			if expr, ok, err := extract.MappingSQL(m.Get(k), c); ok && err == nil {
				out = append(out, mappingExpr{col: c.Name, typ: c.Type.DuckDB(), sql: expr})
			}
		}
	}
	return out
}

// computed evaluates a mapping's expressions on every row of rel, which
// has all the canonical columns and whatever else the source landed.
func computed(exprs []mappingExpr, rel string) string {
	if len(exprs) == 0 {
		return rel
	}
	var cols []string
	for _, e := range exprs {
		cols = append(cols, fmt.Sprintf("CAST((%s) AS %s) AS %s", e.sql, e.typ, load.QuoteIdent(e.col)))
	}
	return "SELECT * REPLACE (" + strings.Join(cols, ", ") + ") FROM (" + rel + ")"
}

// checkExpr makes sure a mapping expression is one scalar expression of
// the row: DuckDB's own parser reads "SELECT (<expr>)", which must be one
// statement selecting one expression, from no table, with no subquery.
// Pasted into the view, anything else could read other tables or end the
// statement; the config's author can write models anyway, so this is about
// clear errors and a view that stays a view of the row.
func checkExpr(ctx context.Context, db *sql.DB, source, entity string, e mappingExpr) error {
	var js string
	if err := db.QueryRowContext(ctx, "SELECT json_serialize_sql("+load.QuoteString("SELECT ("+e.sql+")")+")::VARCHAR").Scan(&js); err != nil {
		return fmt.Errorf("source %s entity %s column %s: expression %q: %w", source, entity, e.col, e.sql, err)
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
		return fmt.Errorf("source %s entity %s column %s: expression %q: %w", source, entity, e.col, e.sql, err)
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
		return fmt.Errorf("source %s entity %s column %s: expression %q is no expression of the row's columns: %s", source, entity, e.col, e.sql, bad)
	}
	return nil
}

// canonicalTypes casts the entity's Decimal columns of a relation that has
// every canonical column to DECIMAL(18,4): a source's own numeric type
// (PostgreSQL numeric(12,2), float8) or a file written as DOUBLE by an
// earlier version becomes the canonical type, and the union of the sources
// stays exact.
func canonicalTypes(e extract.Entity, rel string) string {
	var casts []string
	for _, c := range e.Columns {
		if c.Type == extract.Decimal {
			q := load.QuoteIdent(c.Name)
			casts = append(casts, fmt.Sprintf("CAST(%s AS %s) AS %s", q, c.Type.DuckDB(), q))
		}
	}
	if len(casts) == 0 {
		return rel
	}
	return "SELECT * REPLACE (" + strings.Join(casts, ", ") + ") FROM (" + rel + ")"
}

// emptySelect is a typed, empty relation with the entity's canonical columns,
// so models can rely on every column existing even before any data arrives.
func emptySelect(e extract.Entity) string {
	cols := make([]string, 0, len(e.Columns)+2)
	for _, c := range e.Columns {
		cols = append(cols, fmt.Sprintf("NULL::%s AS %s", c.Type.DuckDB(), load.QuoteIdent(c.Name)))
	}
	// _source_file and _source_line (file sources write them) name where a
	// row came from; the line breaks ties between versions of a key within
	// one file: the later line wins
	cols = append(cols, "NULL::VARCHAR AS _source", "NULL::VARCHAR AS _file", "NULL::VARCHAR AS _source_file",
		"NULL::BIGINT AS _source_line")
	return "SELECT " + strings.Join(cols, ", ") + " WHERE false"
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
