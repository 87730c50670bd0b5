package transform

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cdwhq/cdw/internal/duck"
)

// Seed is a CSV file in a seeds folder, loaded as a table of the same name
// (dbt's seeds): DuckDB infers the column types, column_types overrides
// them. Its definition covers the file's content, so a run rebuilds it
// exactly when the file changed.
type Seed struct {
	Path  string // on disk, for read_csv
	Hash  string // sha256 of the content
	Types map[string]string
}

// seedModel makes the model that loads a seed.
func seedModel(root Root, p string, data []byte) (*Model, error) {
	file := root.Name + "/" + p
	name := strings.ToLower(strings.TrimSuffix(filepath.Base(p), filepath.Ext(p)))
	if !validModelName(name) {
		return nil, fmt.Errorf("%s: seed names must be letters, digits and _ (the file name is the table name)", file)
	}
	if root.Dir == "" {
		return nil, fmt.Errorf("%s: seeds are read from a folder on disk", file)
	}
	abs, err := filepath.Abs(filepath.Join(root.Dir, filepath.FromSlash(p)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	sum := sha256.Sum256(data)
	s := &Seed{Path: abs, Hash: hex.EncodeToString(sum[:])}
	if t, ok := root.seedTypes[name]; ok {
		s.Types = t
	}
	m := &Model{Name: name, File: file, Dir: "seeds", Seed: s, DBT: root.DBT,
		Header: Header{Materialized: Table, Tags: []string{"seed"}}}
	m.SQL = s.sql()
	return m, nil
}

// sql is the query that loads the seed; the content hash in its comment
// puts the file's content in the model's definition hash.
func (s *Seed) sql() string {
	opts := "header = true"
	if len(s.Types) > 0 {
		cols := make([]string, 0, len(s.Types))
		for c := range s.Types {
			cols = append(cols, c)
		}
		sort.Strings(cols)
		parts := make([]string, len(cols))
		for i, c := range cols {
			parts[i] = duck.Literal(c) + ": " + duck.Literal(s.Types[c])
		}
		opts += ", types = {" + strings.Join(parts, ", ") + "}"
	}
	return "-- seed content sha256 " + s.Hash + "\nSELECT * FROM read_csv(" + duck.Literal(s.Path) + ", " + opts + ")"
}
