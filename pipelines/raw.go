package pipelines

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/transform"
)

// The raw seam: extract's state says which files are committed, each source
// kind says which entities its options configure (extract.Kind.Entities),
// and transform writes the views over them (transform.CreateRawViews).
// This file only translates between the two.

// rawRelations lists the raw views models may read: raw.<entity> (every
// source's rows of that entity) and raw.<source>_<entity>.
func rawRelations(cfg *Config) ([]string, error) {
	l, err := rawLayer(cfg, nil)
	if err != nil {
		return nil, err
	}
	return l.Relations(), nil
}

// rawInputs describes the raw relations as createRawViews would make them.
func rawInputs(cfg *Config) (map[string]transform.RawInput, error) {
	l, err := committedLayer(cfg)
	if err != nil {
		return nil, err
	}
	return l.Inputs(), nil
}

// committedLayer is the raw layer over the files extract state lists.
func committedLayer(cfg *Config) (transform.RawLayer, error) {
	states, err := extract.StateStore{Dir: cfg.Warehouse}.All()
	if err != nil {
		return transform.RawLayer{}, err
	}
	return rawLayer(cfg, states)
}

// createRawViews points the raw schema at the files extract state has
// committed and returns what each view reads.
func createRawViews(ctx context.Context, db *sql.DB, cfg *Config) (map[string]transform.RawInput, error) {
	l, err := committedLayer(cfg)
	if err != nil {
		return nil, err
	}
	return transform.CreateRawViews(ctx, db, l)
}

// rawLayer describes the raw relations of cfg's sources, with the files
// states list.
func rawLayer(cfg *Config, states []*extract.EntityState) (transform.RawLayer, error) {
	files := map[[2]string][]transform.RawFile{} // source, entity
	for _, st := range states {
		for _, f := range st.Files {
			k := [2]string{st.Source, st.Entity}
			files[k] = append(files[k], transform.RawFile{Path: filepath.Join(cfg.Warehouse, filepath.FromSlash(f.Path)),
				Old: f.Format < extract.RawFormat})
		}
	}
	var l transform.RawLayer
	for _, name := range extract.EntityNames() {
		ent, _ := extract.LookupEntity(name)
		l.Entities = append(l.Entities, transform.RawEntity{Name: name, Columns: rawColumns(ent)})
	}
	for _, s := range cfg.Sources {
		kind, err := extract.LookupKind(s.Kind)
		if err != nil {
			return l, fmt.Errorf("source %s: %w", s.Name, err)
		}
		for _, ec := range kind.Entities(s.Options) {
			ent, err := extract.ResolveEntity(ec.Name)
			if err != nil {
				continue // the extract names it: "neither an entity nor a raw table name"
			}
			rs := transform.RawSource{Source: s.Name, Entity: ec.Name, Files: files[[2]string{s.Name, ec.Name}]}
			if !ent.Raw {
				rs.Columns, rs.Exprs = rawColumns(ent), mappingExprs(ent, ec.Options)
			}
			l.Sources = append(l.Sources, rs)
		}
	}
	return l, nil
}

// rawColumns are an entity's canonical columns; money is cast to its
// canonical DECIMAL.
func rawColumns(e extract.Entity) []transform.RawColumn {
	out := make([]transform.RawColumn, len(e.Columns))
	for i, c := range e.Columns {
		out[i] = transform.RawColumn{Name: c.Name, Type: c.Type.DuckDB(), Cast: c.Type == extract.Decimal}
	}
	return out
}

// mappingExprs lists the computed columns of a source entity's mapping
// (columns: for files, fields: for HTTP); the extracts have checked them.
func mappingExprs(ent extract.Entity, n config.Node) []transform.RawExpr {
	var out []transform.RawExpr
	for _, key := range []string{"columns", "fields"} {
		m := n.Get(key)
		for _, k := range m.Keys() {
			c, ok := ent.Column(k)
			if !ok {
				continue
			}
			if expr, ok, err := extract.MappingSQL(m.Get(k), c); ok && err == nil {
				out = append(out, transform.RawExpr{Column: c.Name, Type: c.Type.DuckDB(), SQL: expr})
			}
		}
	}
	return out
}

// NewestRows measures, for each entity some source has committed files of,
// the newest change time of raw.<entity> (transform.NewestRow, as the
// freshness checks do) on raw views in a throwaway in-memory DuckDB, so
// the warehouse stays free for runs. Entities with no rows are left out.
func NewestRows(ctx context.Context, cfg *Config) (map[string]time.Time, error) {
	l, err := committedLayer(cfg)
	if err != nil {
		return nil, err
	}
	landed := map[string]bool{}
	for _, s := range l.Sources {
		if len(s.Files) > 0 && s.Columns != nil {
			landed[s.Entity] = true
		}
	}
	out := map[string]time.Time{}
	if len(landed) == 0 {
		return out, nil
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("opening DuckDB for freshness: %w", err)
	}
	defer db.Close()
	if _, err := transform.CreateRawViews(ctx, db, l); err != nil {
		return nil, err
	}
	var errs []error
	for e := range landed {
		t, err := transform.NewestRow(ctx, db, e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if t.Valid {
			out[e] = t.Time
		}
	}
	return out, errors.Join(errs...)
}
