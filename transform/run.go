package transform

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cdwhq/cdw/internal/failpoint"
	"github.com/cdwhq/cdw/internal/memtrim"
	"github.com/cdwhq/cdw/transform/dag"
)

// Status of one model in a run.
type Status string

// Model run statuses.
const (
	Success  Status = "success"
	Failed   Status = "error"
	Skipped  Status = "skipped"    // an upstream model failed
	UpToDate Status = "up-to-date" // definition and inputs as at the last build: not rebuilt
)

// ModelResult is what one model did in a run.
type ModelResult struct {
	Model    string
	File     string
	Status   Status
	Rows     int64 // -1 for views
	Duration time.Duration
	Err      error
	Notes    string
	// Version identifies the model's table after the run (see state.go);
	// empty when it failed or was skipped.
	Version string
	// rebuilt: an incremental model built in full, so any of its rows may
	// have changed, not only those new raw rows touched.
	rebuilt bool
}

// RunResult is the outcome of a transform run.
type RunResult struct {
	RunID   string
	Models  []ModelResult
	Elapsed time.Duration
	// Versions are the versions of every model and raw relation the
	// warehouse knows after the run, for skipping data tests.
	Versions TestVersions
	// Relations are the tables and views of the warehouse's main schema
	// after the run (listed once, before it, plus what it built).
	Relations map[string]bool
}

// Failed returns the results that were neither built nor up to date.
func (r RunResult) Failed() []ModelResult {
	var out []ModelResult
	for _, m := range r.Models {
		if m.Status != Success && m.Status != UpToDate {
			out = append(out, m)
		}
	}
	return out
}

// Err summarises failures as one error, or nil.
func (r RunResult) Err() error {
	var errs []error
	for _, m := range r.Models {
		if m.Status == Failed {
			errs = append(errs, m.Err)
		}
	}
	return errors.Join(errs...)
}

// Runner materialises models into the warehouse.
type Runner struct {
	DB   *sql.DB // warehouse.duckdb
	Vars Vars
	Log  *slog.Logger
	// Workers bounds how many independent models build at once, each on its
	// own connection. 0 means 1: DuckDB already spreads one statement over
	// every core, so extra workers only pay off for many small models.
	Workers int
	// Selection is recorded with each model run (e.g. "customers+"), so the
	// history says what was asked for.
	Selection string
	// Raw describes the raw relations models read (keys like "raw.orders").
	// A model reading one missing here is never up to date, and an
	// incremental model takes all its rows as new (append-only).
	Raw map[string]RawInput
	// FullRefresh rebuilds every model, incremental ones from scratch.
	FullRefresh bool
	// MemoryLimit is the DuckDB memory_limit the warehouse was opened with
	// (Settings.MemoryLimit), set back after a Go model that lowered it.
	MemoryLimit string
}

// Run builds the given models (in the order given, which must be a
// topological order). Independent models may build concurrently; a failing
// model stops its descendants only. Dependencies outside models are assumed
// to exist already in the warehouse (a partial selection).
func (r *Runner) Run(ctx context.Context, runID string, models []*Model) (RunResult, error) {
	start := time.Now()
	res := RunResult{RunID: runID, Models: make([]ModelResult, len(models))}
	workers := r.Workers
	if workers < 1 {
		workers = 1
	}
	if workers > len(models) {
		workers = max(1, len(models))
	}
	conns := make([]*sql.Conn, workers)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		c, err := r.DB.Conn(ctx)
		if err != nil {
			return res, fmt.Errorf("connecting to the warehouse: %w", err)
		}
		conns[i] = c
	}
	// DuckDB keeps Go functions in the database's catalog, so registering
	// them through one connection serves every worker, and once per
	// database is enough.
	if err := installOnce(r.DB, conns[0]); err != nil {
		return res, err
	}
	p, err := r.plan(ctx, conns[0], runID)
	if err != nil {
		return res, err
	}

	results, ctxErr := r.schedule(ctx, conns, p, models)
	res.Models = results
	res.Elapsed = time.Since(start)
	res.Versions = p.versions
	// p.exists is read by the workers during the run: extend it after.
	res.Relations = p.exists
	for _, mr := range results {
		if mr.Status == Success {
			res.Relations[strings.ToLower(mr.Model)] = true
		}
	}
	if ctxErr != nil {
		return res, ctxErr
	}
	if err := recordRun(ctx, r.DB, conns[0], res, r.Selection); err != nil {
		return res, err
	}
	return res, nil
}

// schedule builds models on the dag executor, one connection a worker. A
// model starts once what it reads in this run has finished, with the
// versions its inputs have then.
func (r *Runner) schedule(ctx context.Context, conns []*sql.Conn, p *plan, models []*Model) ([]ModelResult, error) {
	index := make(map[string]int, len(models))
	for i, m := range models {
		index[m.Name] = i
	}
	g := dag.Graph{Deps: make([][]int, len(models))}
	for i, m := range models {
		for _, d := range m.Deps {
			if j, ok := index[d]; ok {
				g.Deps[i] = append(g.Deps[i], j)
			}
		}
	}
	rebuilt := map[string]bool{} // incremental models built in full in this run
	ex := dag.Executor[ModelResult]{
		Workers: len(conns),
		Start: func(i int) func(int) ModelResult {
			m := models[i]
			iv, inputs := p.inputs(m)
			var full []string
			for _, d := range m.Deps {
				if rebuilt[d] {
					full = append(full, d)
				}
			}
			return func(w int) ModelResult {
				mr := r.runModel(ctx, conns[w], p, m, iv, inputs, full)
				// Return what the model's queries freed before the next allocates.
				memtrim.Release()
				failpoint.Hit("transform.after-model") // some models rebuilt, others not yet
				return mr
			}
		},
		Done: func(_ int, mr ModelResult) bool {
			rebuilt[mr.Model] = mr.rebuilt
			if mr.Version != "" {
				p.versions[mr.Model] = mr.Version
			} else {
				delete(p.versions, mr.Model)
			}
			r.log().Info("model", "model", mr.Model, "status", mr.Status, "rows", mr.Rows,
				"ms", mr.Duration.Milliseconds(), "notes", mr.Notes)
			return mr.Status == Success || mr.Status == UpToDate
		},
		Skip: func(i, failed int, err error) ModelResult {
			m := models[i]
			if failed >= 0 {
				err = fmt.Errorf("%s: skipped because %s failed", m.File, models[failed].Name)
			} else {
				// Cancelled: what never started is skipped.
				err = fmt.Errorf("%s: not built: %w", m.File, err)
			}
			return ModelResult{Model: m.Name, File: m.File, Rows: -1, Status: Skipped, Err: err}
		},
	}
	return ex.Run(ctx, g)
}

// runModel builds m unless it is up to date; rebuilt names its incremental
// inputs that were built in full in this run.
func (r *Runner) runModel(ctx context.Context, conn *sql.Conn, p *plan, m *Model, iv map[string]string, inputs string, rebuilt []string) (mr ModelResult) {
	mr = ModelResult{Model: m.Name, File: m.File, Rows: -1}
	t0 := time.Now()
	defer func() { mr.Duration = time.Since(t0) }()
	def, err := definitionHash(m, r.Vars)
	if err != nil {
		mr.Status, mr.Err = Failed, err
		return mr
	}
	old := p.states[m.Name]
	why := r.stale(m, p, def, iv, inputs)
	if why == "" {
		mr.Status, mr.Version = UpToDate, old.Version
		return mr
	}
	st := &modelState{Definition: def, Inputs: inputs, InputVersions: iv, Version: hashOf("model", codeVersion(), def, inputs)}
	if m.Header.AlwaysRebuild || len(m.volatile) > 0 {
		st.Version = hashOf("volatile", p.nonce, m.Name)
	}
	var inc *increment
	if m.Header.Materialized == Incremental {
		inc, why = r.increment(m, old, def, iv, rebuilt, p)
		st.RawFiles, st.Shapes = map[string][]string{}, map[string]string{}
		for _, d := range m.Deps {
			if ri, ok := r.Raw[d]; ok {
				st.RawFiles[d], st.Shapes[d] = ri.Files, ri.Shape
			}
		}
	}
	cutoff := false
	done := func(ex execer) error {
		if m.Header.EarlyCutoff && m.Header.Materialized != View {
			c, err := contentHash(ctx, ex, m.Name)
			if err != nil {
				return err
			}
			st.Content = c
			if old != nil && old.Content == c {
				st.Version, cutoff = old.Version, true
			}
		}
		return writeState(ctx, ex, m.Name, p.runID, st)
	}
	mr.Rows, mr.Notes, mr.Err = r.build(ctx, conn, m, inc, done)
	if mr.Err != nil {
		mr.Status = Failed
		return mr
	}
	mr.Status, mr.Version = Success, st.Version
	mr.rebuilt = m.Header.Materialized == Incremental && inc == nil
	notes := []string{why}
	if mr.Notes != "" {
		notes = append(notes, mr.Notes)
	}
	if cutoff {
		notes = append(notes, "content unchanged: keeps its version")
	}
	mr.Notes = strings.Join(notes, "; ")
	return mr
}

var installed sync.Map // *sql.DB → struct{}: Go functions registered

func installOnce(db *sql.DB, conn *sql.Conn) error {
	if _, done := installed.Load(db); done {
		return nil
	}
	if err := InstallFunctions(conn); err != nil {
		return err
	}
	installed.Store(db, struct{}{})
	return nil
}

// recordRun appends the run's per-model results to cdw_model_runs, so they
// can be queried afterwards like any table.
func recordRun(ctx context.Context, db *sql.DB, conn *sql.Conn, res RunResult, selection string) error {
	if _, done := runsTable.Load(db); !done {
		for _, q := range []string{`CREATE TABLE IF NOT EXISTS cdw_model_runs (
			run_id VARCHAR, model VARCHAR, file VARCHAR, status VARCHAR, rows BIGINT,
			duration_ms DOUBLE, error VARCHAR, notes VARCHAR, recorded_at TIMESTAMPTZ)`,
			// Added after the first release: older warehouses lack it.
			`ALTER TABLE cdw_model_runs ADD COLUMN IF NOT EXISTS selection VARCHAR`} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("creating cdw_model_runs: %w", err)
			}
		}
		runsTable.Store(db, struct{}{})
	}
	if len(res.Models) == 0 {
		return nil
	}
	// One statement, one commit for the whole run: each commit to a file
	// database costs a WAL sync, which dominated small runs.
	var q strings.Builder
	q.WriteString(`INSERT INTO cdw_model_runs
		(run_id, model, file, status, rows, duration_ms, error, notes, recorded_at, selection) VALUES `)
	args := make([]any, 0, 9*len(res.Models))
	for i, m := range res.Models {
		var msg any
		if m.Err != nil {
			msg = m.Err.Error()
		}
		var rows any = m.Rows
		if m.Rows < 0 {
			rows = nil
		}
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, now(), ?)")
		args = append(args, res.RunID, m.Model, m.File, string(m.Status), rows,
			float64(m.Duration.Microseconds())/1000, msg, m.Notes, selection)
	}
	if _, err := conn.ExecContext(ctx, q.String(), args...); err != nil {
		return fmt.Errorf("recording model runs: %w", err)
	}
	return nil
}

// runsTable remembers databases whose cdw_model_runs table is known to exist.
var runsTable sync.Map

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}
