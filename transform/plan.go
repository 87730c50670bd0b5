package transform

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cdwhq/cdw/internal/duck"
)

// plan is what a run knows before it builds: the state of every model's last
// build, which relations exist, and the versions of the inputs so far.
type plan struct {
	runID    string
	nonce    string // makes unknown input versions unique to this run
	states   map[string]*modelState
	exists   map[string]bool
	versions TestVersions // relation → version; the scheduler updates it as models finish
}

func (r *Runner) plan(ctx context.Context, conn *sql.Conn, runID string) (*plan, error) {
	if _, err := conn.ExecContext(ctx, stateTable); err != nil {
		return nil, fmt.Errorf("creating cdw_model_state: %w", err)
	}
	return newPlan(ctx, conn, runID, r.Raw)
}

// Relations lists the tables and views of the warehouse's main schema
// (lower case). A run lists them once: RunResult.Relations is the list as
// the run leaves it.
func Relations(ctx context.Context, db *sql.DB) (map[string]bool, error) {
	return relationsIn(ctx, db)
}

func relationsIn(ctx context.Context, q querier) (map[string]bool, error) {
	names, err := duck.Relations(ctx, q, "", "main")
	if err != nil {
		return nil, fmt.Errorf("listing warehouse tables: %w", err)
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[strings.ToLower(n)] = true
	}
	return out, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func newPlan(ctx context.Context, q querier, runID string, raw map[string]RawInput) (*plan, error) {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	p := &plan{runID: runID, nonce: hex.EncodeToString(nonce), versions: TestVersions{}}
	var err error
	if p.exists, err = relationsIn(ctx, q); err != nil {
		return nil, err
	}
	p.states = map[string]*modelState{}
	if p.exists["cdw_model_state"] {
		if p.states, err = readStates(ctx, q); err != nil {
			return nil, err
		}
	}
	for name, st := range p.states {
		if p.exists[name] {
			p.versions[name] = st.Version
		}
	}
	for rel, ri := range raw {
		p.versions[rel] = ri.version()
	}
	return p, nil
}

// inputs returns the current versions of m's inputs and their hash; an
// input without a known version (never built, failed, a raw relation the
// run was not told about) gets one that matches nothing, so m rebuilds.
func (p *plan) inputs(m *Model) (map[string]string, string) {
	iv := make(map[string]string, len(m.Deps))
	parts := make([]string, 0, 2*len(m.Deps))
	for _, d := range m.Deps {
		v, ok := p.versions[d]
		if !ok {
			v = "unknown " + p.nonce
		}
		iv[d] = v
		parts = append(parts, d, v)
	}
	return iv, hashOf(parts...)
}

// stale says why m must be rebuilt, or "" when it is up to date.
func (r *Runner) stale(m *Model, p *plan, def string, iv map[string]string, inputs string) string {
	old := p.states[m.Name]
	switch {
	case r.FullRefresh:
		return "--full-refresh"
	case m.Header.AlwaysRebuild:
		return "always_rebuild"
	case len(m.volatile) > 0:
		return "calls " + strings.Join(m.volatile, ", ")
	case old == nil:
		return "no earlier build on record"
	case !p.exists[m.Name]:
		return "its table is missing"
	case old.Code != codeVersion():
		return "built by another cdw model engine (EngineVersion)"
	case old.Definition != def:
		return "definition changed"
	case old.Inputs != inputs:
		return "inputs changed: " + strings.Join(changedInputs(m, old, iv), ", ")
	}
	return ""
}

// changedInputs lists the inputs of m whose version differs from its last
// build's.
func changedInputs(m *Model, old *modelState, iv map[string]string) []string {
	var changed []string
	for _, d := range m.Deps {
		if old.InputVersions[d] != iv[d] {
			changed = append(changed, d)
		}
	}
	return changed
}

// increment decides how an incremental model builds: merging the rows of
// the raw files it has not read yet (non-nil), or in full, and says why.
// A full build is needed on the first build, with --full-refresh, after a
// change of the model's definition, or when a raw relation it reads lost a
// file it had read or changed shape (an extract full refresh replaced the
// files, a source was removed), or when an input named in rebuild_on has a
// new version (iv holds the inputs' current versions), or when an
// incremental input was built in full in this run (rebuilt): its new rows
// need not come from the raw files this model has not read yet.
func (r *Runner) increment(m *Model, old *modelState, def string, iv map[string]string, rebuilt []string, p *plan) (*increment, string) {
	switch {
	case r.FullRefresh:
		return nil, "full build: --full-refresh"
	case !p.exists[m.Name] || old == nil || old.RawFiles == nil:
		return nil, "full build: no earlier build on record"
	case old.Code != codeVersion() || old.Definition != def:
		return nil, "full build: the definition or the cdw binary changed"
	}
	for _, d := range m.Header.RebuildOn {
		if old.InputVersions[d] != iv[d] {
			return nil, "full build: " + d + " (rebuild_on) changed"
		}
	}
	if len(rebuilt) > 0 {
		return nil, "full build: " + strings.Join(rebuilt, ", ") + " was built in full"
	}
	inc := &increment{newFiles: map[string][]string{}}
	files := 0
	for _, d := range m.Deps {
		if !strings.HasPrefix(d, "raw.") {
			continue
		}
		ri, ok := r.Raw[d]
		if !ok {
			// Nothing known about its files: every row counts as new,
			// and the table is assumed to be appended to (dbt's rule).
			continue
		}
		read, ok := old.RawFiles[d]
		if !ok || old.Shapes[d] != ri.Shape {
			return nil, "full build: " + d + " changed definition"
		}
		now := make(map[string]bool, len(ri.Files))
		for _, f := range ri.Files {
			now[f] = true
		}
		inc.newFiles[d] = []string{}
		had := make(map[string]bool, len(read))
		for _, f := range read {
			if !now[f] {
				return nil, "full build: " + d + " no longer has a file it read (re-extracted)"
			}
			had[f] = true
		}
		for _, f := range ri.Files {
			if !had[f] {
				inc.newFiles[d] = append(inc.newFiles[d], f)
				files++
			}
		}
		sort.Strings(inc.newFiles[d])
	}
	return inc, fmt.Sprintf("incremental: %d new raw file(s)", files)
}

// ModelStatus is what the next run would do with a model.
type ModelStatus struct {
	Model    string
	UpToDate bool
	Maybe    bool      // rebuilt only if an early_cutoff input's content changes
	Why      string    // why it would be rebuilt
	BuiltAt  time.Time // its last build; zero when none is on record
}

// Statuses predicts, without building anything, which of models (in
// topological order) a run would rebuild and why. db may be read-only.
func Statuses(ctx context.Context, db *sql.DB, models []*Model, vars Vars, raw map[string]RawInput) ([]ModelStatus, error) {
	p, err := newPlan(ctx, db, "", raw)
	if err != nil {
		return nil, err
	}
	r := &Runner{Vars: vars, Raw: raw}
	maybe := map[string]bool{} // models whose rebuilt version cannot be predicted
	out := make([]ModelStatus, 0, len(models))
	for _, m := range models {
		s := ModelStatus{Model: m.Name}
		if st := p.states[m.Name]; st != nil {
			s.BuiltAt = st.BuiltAt
		}
		def, err := definitionHash(m, vars)
		if err != nil {
			return nil, err
		}
		iv, inputs := p.inputs(m)
		s.Why = r.stale(m, p, def, iv, inputs)
		var sure, unsure []string
		if strings.HasPrefix(s.Why, "inputs changed") {
			for _, d := range changedInputs(m, p.states[m.Name], iv) {
				if maybe[d] {
					unsure = append(unsure, d)
				} else {
					sure = append(sure, d)
				}
			}
			if len(sure) > 0 {
				s.Why = "inputs changed: " + strings.Join(sure, ", ")
			}
		}
		switch {
		case s.Why == "":
			s.UpToDate = true
			p.versions[m.Name] = p.states[m.Name].Version
		case len(unsure) > 0 && len(sure) == 0:
			// Only inputs that may keep their version (early_cutoff) changed.
			s.Maybe = true
			s.Why = "only if the content of " + strings.Join(unsure, ", ") + " changes"
			maybe[m.Name] = true
			delete(p.versions, m.Name)
		case m.Header.EarlyCutoff || m.Header.AlwaysRebuild || len(m.volatile) > 0:
			maybe[m.Name] = m.Header.EarlyCutoff
			delete(p.versions, m.Name)
		default:
			p.versions[m.Name] = hashOf("model", codeVersion(), def, inputs)
		}
		out = append(out, s)
	}
	return out, nil
}
