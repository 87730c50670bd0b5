package extract

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cdwhq/cdw/internal/durable"
)

// EntityState is the committed extract state of one source entity. It is one
// JSON file replaced atomically, so a cursor and the files it covers always
// commit together: DESIGN.md's exactly-once recipe, step 4.
type EntityState struct {
	Source string          `json:"source"`
	Entity string          `json:"entity"`
	Cursor json.RawMessage `json:"cursor,omitempty"`
	// Files are the committed raw files, relative to the warehouse directory.
	Files []RawFile `json:"files"`
	// Quarantine files, relative to the warehouse directory.
	Quarantine []RawFile `json:"quarantine,omitempty"`
	// Refresh holds a full refresh in progress: its files replace Files only
	// when the refresh completes, so readers never see half a refresh.
	Refresh   *Refresh  `json:"refresh,omitempty"`
	Rows      int64     `json:"rows"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Refresh is an unfinished full refresh.
type Refresh struct {
	Cursor json.RawMessage `json:"cursor,omitempty"`
	Files  []RawFile       `json:"files"`
}

// RawFile is one committed Parquet file.
type RawFile struct {
	Path string    `json:"path"`
	Rows int64     `json:"rows"`
	At   time.Time `json:"at"`
	// Unit is the source unit (file) whose version the rows are, when the
	// source names one (Chunk.Unit); a newer version of it supersedes this file.
	Unit string `json:"unit,omitempty"`
	// Format is the RawFormat the file was written in (0: before formats
	// were recorded, money as DOUBLE).
	Format int `json:"format,omitempty"`
}

// supersede drops the files of unit from files and returns the rest and
// the dropped ones.
func supersede(files []RawFile, unit string) (kept, dropped []RawFile) {
	if unit == "" {
		return files, nil
	}
	kept = files[:0:0]
	for _, f := range files {
		if f.Unit == unit {
			dropped = append(dropped, f)
			continue
		}
		kept = append(kept, f)
	}
	return kept, dropped
}

// StateStore keeps extract state under <dir>/state/extract. It lives apart
// from warehouse.duckdb so that a rebuild of the warehouse never loses cursors.
type StateStore struct{ Dir string }

func (s StateStore) path(source, entity string) string {
	return filepath.Join(s.Dir, "state", "extract", source, entity+".json")
}

// Load returns the committed state, or an empty one on a first run.
func (s StateStore) Load(source, entity string) (*EntityState, error) {
	p := s.path(source, entity)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &EntityState{Source: source, Entity: entity}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading extract state: %w", err)
	}
	var st EntityState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("reading extract state %s: %w", p, err)
	}
	return &st, nil
}

// Commit atomically replaces the committed state.
func (s StateStore) Commit(st *EntityState) error {
	st.UpdatedAt = time.Now().UTC()
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding extract state: %w", err)
	}
	if err := durable.WriteFile(s.path(st.Source, st.Entity), data); err != nil {
		return fmt.Errorf("committing extract state of %s.%s: %w", st.Source, st.Entity, err)
	}
	return nil
}

// All returns the committed state of every source entity, for building the raw
// views that transform reads.
func (s StateStore) All() ([]*EntityState, error) {
	root := filepath.Join(s.Dir, "state", "extract")
	var out []*EntityState
	srcs, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing extract state: %w", err)
	}
	for _, src := range srcs {
		if !src.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(root, src.Name()))
		if err != nil {
			return nil, fmt.Errorf("listing extract state: %w", err)
		}
		for _, e := range ents {
			name := e.Name()
			if filepath.Ext(name) != ".json" || durable.IsTemp(name) {
				continue
			}
			st, err := s.Load(src.Name(), name[:len(name)-len(".json")])
			if err != nil {
				return nil, err
			}
			out = append(out, st)
		}
	}
	return out, nil
}
