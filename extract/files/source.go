// Package files is the source kind for CSV, TSV and fixed-width text files,
// optionally gzip-compressed, in UTF-8 (with or without BOM), GBK or GB18030.
// A ledger of processed files (path, size, modification time, content hash)
// makes each file load exactly once; bad rows go to quarantine.
package files

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/cdwhq/cdw/extract"
)

func init() {
	extract.Register(extract.Kind{
		Name:     "files",
		Doc:      "CSV, TSV and fixed-width files (gzip, UTF-8/GBK/GB18030), loaded once each by content hash",
		Open:     open,
		Entities: extract.EntitiesKey,
	})
}

// Source reads entities from files matched by a glob.
type Source struct {
	name  string
	plans map[string]*plan
	log   *slog.Logger // carries source=<name>
}

var _ extract.Source = (*Source)(nil)

func open(_ context.Context, cfg extract.SourceConfig) (extract.Source, error) {
	var o options
	if err := cfg.Options.Decode(&o); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default().With("source", cfg.Name)
	}
	s := &Source{name: cfg.Name, plans: map[string]*plan{}, log: log}
	for name, n := range o.Entities {
		ent, err := extract.ResolveEntity(name)
		if err != nil {
			return nil, n.Errorf("%v", err)
		}
		p, err := newPlan(cfg.BaseDir, ent, n)
		if err != nil {
			return nil, err
		}
		s.plans[name] = p
	}
	return s, nil
}

// Entities lists the configured entities.
func (s *Source) Entities() []string {
	var out []string
	for n := range s.plans {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// RejectBudget is the entity's max_rejected.
func (s *Source) RejectBudget(entity string) extract.Budget {
	if p, ok := s.plans[entity]; ok {
		return p.budget
	}
	return extract.DefaultBudget
}

var _ extract.Budgeter = (*Source)(nil)

// Close does nothing: files are opened per read.
func (s *Source) Close() error { return nil }

// ledger is the files source's cursor: every file loaded so far.
type ledger struct {
	Files map[string]fileEntry `json:"files"`
	// Settings are the parse settings files were read with, by id.
	Settings map[string]json.RawMessage `json:"settings,omitempty"`
}

type fileEntry struct {
	Size     int64     `json:"size"`
	ModTime  time.Time `json:"mtime"`
	SHA256   string    `json:"sha256"`
	Version  int       `json:"version"`
	Rows     int64     `json:"rows"`
	Rejected int64     `json:"rejected,omitempty"`
	LoadedAt time.Time `json:"loaded_at"`
	// RefusedSHA256 is a changed version refused under on_change: reject,
	// remembered so it is reported once, not on every run.
	RefusedSHA256 string `json:"refused_sha256,omitempty"`
	// Settings is the id of the parse settings the file was read with
	// (ledger.Settings); "" in ledgers written before they were recorded.
	Settings string `json:"settings,omitempty"`
}

// Read lists the files to load now and streams them one by one, emitting a
// checkpoint after each file so an interrupted run resumes with the next file.
func (s *Source) Read(ctx context.Context, req extract.ReadRequest) (extract.Reader, error) {
	p, ok := s.plans[req.Entity.Name]
	if !ok {
		return nil, fmt.Errorf("source %s does not provide %s", s.name, req.Entity.Name)
	}
	led := ledger{Files: map[string]fileEntry{}}
	if req.Cursor != nil {
		if err := json.Unmarshal(req.Cursor, &led); err != nil {
			return nil, fmt.Errorf("reading file ledger: %w", err)
		}
		if led.Files == nil {
			led.Files = map[string]fileEntry{}
		}
	}
	matches, err := filepath.Glob(p.glob)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", p.glob, err)
	}
	sort.Strings(matches)
	r := &reader{src: s, plan: p, base: p, ledger: led, batchRows: req.BatchRows, kept: map[string]bool{}}
	for _, path := range matches {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if fi.IsDir() {
			continue
		}
		r.pending = append(r.pending, path)
	}
	if len(matches) == 0 {
		// A path that matches nothing used to be one WARN line in a run that
		// published empty marts and exited 0.
		if !p.allowEmpty {
			return nil, fmt.Errorf("no file matches %s (check the path, relative to the config file; set allow_empty: true on the entity if none is expected)", p.glob)
		}
		s.log.Info("no files match; allow_empty is set", "entity", req.Entity.Name, "path", p.glob)
	}
	r.schema = p.schema()
	return r, nil
}
