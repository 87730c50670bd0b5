package pipelines

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/duck"
)

// QuarantineGroup is the rejects of one source entity that share a reason
// (extract.ReasonGroup), with the first as an example.
type QuarantineGroup struct {
	Source, Entity string
	Reason         string // the group's reason, values elided
	Rows           int64
	Example        extract.Reject
	Advice         string // what to change; "" when cdw has no advice
}

// Quarantine reads the committed quarantine of the warehouse (the rejects
// of the current version of every file; superseded versions' rejects are
// gone) and groups it by reason, largest first per entity. Empty source or
// entity means all.
func (r *Runner) Quarantine(ctx context.Context, source, entity string) ([]QuarantineGroup, error) {
	states, err := extract.StateStore{Dir: r.Cfg.Warehouse}.All()
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("opening DuckDB: %w", err)
	}
	defer db.Close()
	var out []QuarantineGroup
	for _, st := range states {
		if (source != "" && st.Source != source) || (entity != "" && st.Entity != entity) || len(st.Quarantine) == 0 {
			continue
		}
		files := make([]string, len(st.Quarantine))
		for i, f := range st.Quarantine {
			files[i] = duck.Literal(filepath.Join(r.Cfg.Warehouse, filepath.FromSlash(f.Path)))
		}
		rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT coalesce(file, ''), coalesce(line, 0), coalesce(reason, ''), coalesce(raw, '')
			FROM read_parquet([%s]) ORDER BY file, line`, strings.Join(files, ", ")))
		if err != nil {
			return nil, fmt.Errorf("reading the quarantine of %s.%s: %w", st.Source, st.Entity, err)
		}
		groups := map[string]*QuarantineGroup{}
		for rows.Next() {
			var rj extract.Reject
			if err := rows.Scan(&rj.File, &rj.Line, &rj.Reason, &rj.Raw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading the quarantine of %s.%s: %w", st.Source, st.Entity, err)
			}
			g := extract.ReasonGroup(rj.Reason)
			if groups[g] == nil {
				groups[g] = &QuarantineGroup{Source: st.Source, Entity: st.Entity, Reason: g, Example: rj, Advice: extract.Advice(rj.Reason)}
			}
			groups[g].Rows++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading the quarantine of %s.%s: %w", st.Source, st.Entity, err)
		}
		var list []QuarantineGroup
		for _, g := range groups {
			list = append(list, *g)
		}
		sort.Slice(list, func(i, j int) bool {
			if list[i].Rows != list[j].Rows {
				return list[i].Rows > list[j].Rows
			}
			return list[i].Reason < list[j].Reason
		})
		out = append(out, list...)
	}
	return out, nil
}
