// Package docs writes the documentation site of a transform project, what
// `dbt docs` gives: one folder of static HTML (no server, no script needed,
// nothing fetched from the network) with every model, its SQL as written
// and as rendered, its columns with types and descriptions, its tests with
// their last result, and the lineage graph from raw relations to marts.
package docs

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing/fstest"
	"time"

	"github.com/cdwhq/cdw/transform"
)

// Node is one box of the lineage graph: a model or a raw relation.
type Node struct {
	Name        string
	Kind        string // source, seed, view, table, incremental, go
	Published   bool
	File        string
	Dir         string
	Description string
	Tags        []string
	Deps        []string // what it reads
	Readers     []string // what reads it
	Columns     []Column
	Tests       []Test
	SQL         string // as written ("" for raw relations and Go models)
	Compiled    string // as rendered for a full build, env_var values as ***
	CompileErr  string
	LastRun     *Run // the model's last build on record, nil: never built
}

// Column is one column of a relation: its type from the warehouse (empty
// when not built) and its documented description.
type Column struct{ Name, Type, Description string }

// Test is a data test of a model with its last result.
type Test struct {
	Name, File, Severity string
	SQL                  string
	Last                 *TestRun // nil: never run
}

// TestRun is a test's last real run (not an up-to-date skip).
type TestRun struct {
	Status   string
	Failures int64
	Error    string
	At       time.Time
}

// Run is a model's last build.
type Run struct {
	Status string
	Rows   int64
	At     time.Time
	Error  string
}

// Site is a project's documentation, ready to write.
type Site struct {
	Title     string
	Generated time.Time
	Nodes     []*Node // models in topological order, raw relations first
	byName    map[string]*Node
}

// Collect gathers the documentation of p's models. db is the warehouse (a
// read-only connection or a copy); nil documents the project without
// column types or results.
func Collect(ctx context.Context, p *transform.Project, db *sql.DB, now time.Time) (*Site, error) {
	s := &Site{Title: "cdw models", Generated: now, byName: map[string]*Node{}}
	var raws []*Node
	for _, m := range p.Models {
		for _, d := range m.Deps {
			if _, model := p.Model(d); !model && s.byName[d] == nil {
				n := &Node{Name: d, Kind: "source"}
				s.byName[d] = n
				raws = append(raws, n)
			}
		}
	}
	slices.SortFunc(raws, func(a, b *Node) int { return strings.Compare(a.Name, b.Name) })
	s.Nodes = append(s.Nodes, raws...)
	for _, m := range p.Models {
		n := &Node{Name: m.Name, Kind: string(m.Header.Materialized), Published: m.Published(), File: m.File, Dir: m.Dir,
			Description: m.Header.Description, Tags: m.Header.Tags, Deps: m.Deps, SQL: m.SQL}
		switch {
		case m.Go != nil:
			n.Kind, n.SQL = "go", ""
		case m.Seed != nil:
			n.Kind = "seed"
		}
		if n.Kind != "go" {
			body, err := transform.Compiled(m, p.Vars)
			if err != nil {
				n.CompileErr = err.Error()
			}
			n.Compiled = body
		}
		for _, c := range m.Header.Columns {
			n.Columns = append(n.Columns, Column{Name: c.Name, Description: c.Description})
		}
		for _, t := range p.Tests {
			if t.Model == m.Name || t.Model == "" && slices.Contains(t.Deps, m.Name) {
				n.Tests = append(n.Tests, Test{Name: t.Name, File: t.File, Severity: t.Severity, SQL: t.SQL})
			}
		}
		s.byName[m.Name] = n
		s.Nodes = append(s.Nodes, n)
	}
	for _, n := range s.Nodes {
		for _, d := range n.Deps {
			if r := s.byName[d]; r != nil {
				r.Readers = append(r.Readers, n.Name)
			}
		}
	}
	if db != nil {
		if err := s.readWarehouse(ctx, db); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// readWarehouse adds column types, the last test results and the last
// builds from the warehouse; tables a warehouse has not made yet are none.
func (s *Site) readWarehouse(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT CASE WHEN schema_name = 'main' THEN table_name ELSE schema_name || '.' || table_name END,
		column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() AND schema_name IN ('main', 'raw')
		ORDER BY schema_name, table_name, column_index`)
	if err != nil {
		return fmt.Errorf("reading the warehouse's columns: %w", err)
	}
	typed := map[*Node][]Column{}
	for rows.Next() {
		var rel, col, typ string
		if err := rows.Scan(&rel, &col, &typ); err != nil {
			rows.Close()
			return fmt.Errorf("reading the warehouse's columns: %w", err)
		}
		if n := s.byName[strings.ToLower(rel)]; n != nil {
			typed[n] = append(typed[n], Column{Name: col, Type: typ})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the warehouse's columns: %w", err)
	}
	for n, cols := range typed {
		// The warehouse's columns in their order, with the documented
		// descriptions; documented columns the table lacks stay, untyped.
		for i := range cols {
			for _, d := range n.Columns {
				if strings.EqualFold(d.Name, cols[i].Name) {
					cols[i].Description = d.Description
				}
			}
		}
		for _, d := range n.Columns {
			if !slices.ContainsFunc(cols, func(c Column) bool { return strings.EqualFold(c.Name, d.Name) }) {
				cols = append(cols, d)
			}
		}
		n.Columns = cols
	}
	have := func(table string) (bool, error) {
		var k int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()
			AND schema_name = 'main' AND table_name = ?`, table).Scan(&k)
		return k > 0, err
	}
	if ok, err := have("cdw_test_runs"); err != nil {
		return fmt.Errorf("looking for cdw_test_runs: %w", err)
	} else if ok {
		if err := s.readTestRuns(ctx, db); err != nil {
			return err
		}
	}
	if ok, err := have("cdw_model_runs"); err != nil {
		return fmt.Errorf("looking for cdw_model_runs: %w", err)
	} else if ok {
		return s.readModelRuns(ctx, db)
	}
	return nil
}

func (s *Site) readTestRuns(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT test, status, coalesce(failures, 0), coalesce(error, ''), recorded_at FROM cdw_test_runs
		WHERE status <> 'up-to-date' QUALIFY row_number() OVER (PARTITION BY test ORDER BY recorded_at DESC) = 1`)
	if err != nil {
		return fmt.Errorf("reading cdw_test_runs: %w", err)
	}
	defer rows.Close()
	last := map[string]*TestRun{}
	for rows.Next() {
		var name string
		tr := &TestRun{}
		if err := rows.Scan(&name, &tr.Status, &tr.Failures, &tr.Error, &tr.At); err != nil {
			return fmt.Errorf("reading cdw_test_runs: %w", err)
		}
		last[name] = tr
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading cdw_test_runs: %w", err)
	}
	for _, n := range s.Nodes {
		for i := range n.Tests {
			n.Tests[i].Last = last[n.Tests[i].Name]
		}
	}
	return nil
}

func (s *Site) readModelRuns(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT model, status, coalesce(rows, -1), coalesce(error, ''), recorded_at FROM cdw_model_runs
		WHERE status <> 'up-to-date' QUALIFY row_number() OVER (PARTITION BY model ORDER BY recorded_at DESC) = 1`)
	if err != nil {
		return fmt.Errorf("reading cdw_model_runs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		r := &Run{}
		if err := rows.Scan(&name, &r.Status, &r.Rows, &r.Error, &r.At); err != nil {
			return fmt.Errorf("reading cdw_model_runs: %w", err)
		}
		if n := s.byName[name]; n != nil && n.Kind != "source" {
			n.LastRun = r
		}
	}
	return rows.Err()
}

// Page is where a node's page lives in the site.
func Page(n *Node) string {
	if n.Kind == "source" {
		return "sources/" + n.Name + ".html"
	}
	return "models/" + n.Name + ".html"
}

// FS renders the site in memory: index.html, style.css, models/*.html and
// sources/*.html.
func (s *Site) FS() (fs.FS, error) {
	out := fstest.MapFS{}
	put := func(name string, data []byte) {
		out[name] = &fstest.MapFile{Data: data, Mode: 0o644, ModTime: s.Generated}
	}
	put("style.css", styleCSS)
	index, err := s.renderIndex()
	if err != nil {
		return nil, err
	}
	put("index.html", index)
	for _, n := range s.Nodes {
		page, err := s.renderNode(n)
		if err != nil {
			return nil, err
		}
		put(Page(n), page)
	}
	return out, nil
}

// Write writes the site into dir (created if missing); files of an older
// site that this one no longer has are removed.
func (s *Site) Write(dir string) error {
	site, err := s.FS()
	if err != nil {
		return err
	}
	for _, sub := range []string{"models", "sources"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return fmt.Errorf("clearing %s: %w", dir, err)
		}
	}
	return fs.WalkDir(site, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(site, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("writing the docs: %w", err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return fmt.Errorf("writing the docs: %w", err)
		}
		return nil
	})
}

// rel is the link from page from to page to.
func rel(from, to string) string {
	up := strings.Repeat("../", strings.Count(from, "/"))
	return up + path.Clean(to)
}
