package transform

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Status of one model in a run.
type Status string

// Model run statuses.
const (
	Success Status = "success"
	Failed  Status = "error"
	Skipped Status = "skipped" // an upstream model failed
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
}

// RunResult is the outcome of a transform run.
type RunResult struct {
	RunID   string
	Models  []ModelResult
	Elapsed time.Duration
}

// Failed returns the results that did not succeed.
func (r RunResult) Failed() []ModelResult {
	var out []ModelResult
	for _, m := range r.Models {
		if m.Status != Success {
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
}

// Run builds the given models (in the order given, which must be a
// topological order). A failing model stops its descendants only.
func (r *Runner) Run(ctx context.Context, runID string, models []*Model) (RunResult, error) {
	start := time.Now()
	res := RunResult{RunID: runID}
	conn, err := r.DB.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("connecting to the warehouse: %w", err)
	}
	defer conn.Close()
	if err := InstallFunctions(conn); err != nil {
		return res, err
	}
	broken := map[string]string{} // model → the failed ancestor
	for _, m := range models {
		mr := ModelResult{Model: m.Name, File: m.File, Rows: -1}
		for _, d := range m.Deps {
			if cause, bad := broken[d]; bad {
				mr.Status = Skipped
				mr.Err = fmt.Errorf("%s: skipped because %s failed", m.File, cause)
				broken[m.Name] = cause
				break
			}
		}
		if mr.Status == "" {
			t0 := time.Now()
			mr.Rows, mr.Notes, mr.Err = r.build(ctx, conn, m)
			mr.Duration = time.Since(t0)
			mr.Status = Success
			if mr.Err != nil {
				mr.Status = Failed
				broken[m.Name] = m.Name
			}
		}
		r.log().Info("model", "model", m.Name, "status", mr.Status, "rows", mr.Rows,
			"ms", mr.Duration.Milliseconds(), "notes", mr.Notes)
		res.Models = append(res.Models, mr)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	res.Elapsed = time.Since(start)
	if err := recordRun(ctx, conn, res); err != nil {
		return res, err
	}
	return res, nil
}

func (r *Runner) build(ctx context.Context, conn *sql.Conn, m *Model) (int64, string, error) {
	if m.Go != nil {
		n, notes, err := m.Go.Build(ctx, conn, r.Vars)
		if err != nil {
			return 0, notes, fmt.Errorf("%s: %w", m.File, err)
		}
		return n, notes, nil
	}
	body, err := Render(m, r.Vars)
	if err != nil {
		return 0, "", err
	}
	body = stripSemicolon(body)
	name := quoteIdent(m.Name)
	var stmt string
	switch m.Header.Materialized {
	case View:
		stmt = "CREATE OR REPLACE VIEW " + name + " AS " + body
	case Table:
		stmt = "CREATE OR REPLACE TABLE " + name + " AS " + body
	case Incremental:
		return incremental(ctx, conn, m, body)
	}
	// The statement starts on the file's first line, so DuckDB's "LINE n"
	// is the line in the model file.
	if _, err := conn.ExecContext(ctx, stmt); err != nil {
		return 0, "", &ModelError{File: m.File, Err: err}
	}
	if m.Header.Materialized == View {
		return -1, "", nil
	}
	var n int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+name).Scan(&n); err != nil {
		return 0, "", fmt.Errorf("%s: counting rows: %w", m.File, err)
	}
	return n, "", nil
}

// ModelError is a model that DuckDB refused; the message names the file and
// keeps DuckDB's own text, which includes the line of the SQL.
type ModelError struct {
	File string
	Err  error
}

func (e *ModelError) Error() string {
	return fmt.Sprintf("%s: %s", e.File, strings.TrimSpace(e.Err.Error()))
}

func (e *ModelError) Unwrap() error { return e.Err }

// incremental merges new rows by unique_key, or overwrites the partitions
// present in the new rows. The first build (no table yet) creates the table.
func incremental(ctx context.Context, conn *sql.Conn, m *Model, body string) (int64, string, error) {
	name := quoteIdent(m.Name)
	var exists bool
	if err := conn.QueryRowContext(ctx,
		`SELECT count(*) > 0 FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?`, m.Name).Scan(&exists); err != nil {
		return 0, "", fmt.Errorf("%s: checking for the existing table: %w", m.File, err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, "", fmt.Errorf("%s: beginning transaction: %w", m.File, err)
	}
	defer tx.Rollback()
	exec := func(q string) error {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return &ModelError{File: m.File, Err: err}
		}
		return nil
	}
	if !exists {
		if err := exec("CREATE TABLE " + name + " AS " + body); err != nil {
			return 0, "", err
		}
	} else {
		if err := exec("CREATE OR REPLACE TEMP TABLE __cdw_new AS " + body); err != nil {
			return 0, "", err
		}
		if len(m.Header.UniqueKey) > 0 {
			var on []string
			for _, k := range m.Header.UniqueKey {
				on = append(on, fmt.Sprintf("t.%s IS NOT DISTINCT FROM n.%s", quoteIdent(k), quoteIdent(k)))
			}
			if err := exec("DELETE FROM " + name + " t WHERE EXISTS (SELECT 1 FROM __cdw_new n WHERE " + strings.Join(on, " AND ") + ")"); err != nil {
				return 0, "", err
			}
		} else {
			p := quoteIdent(m.Header.PartitionBy)
			if err := exec("DELETE FROM " + name + " WHERE " + p + " IN (SELECT DISTINCT " + p + " FROM __cdw_new)"); err != nil {
				return 0, "", err
			}
		}
		if err := exec("INSERT INTO " + name + " BY NAME SELECT * FROM __cdw_new"); err != nil {
			return 0, "", err
		}
		if err := exec("DROP TABLE __cdw_new"); err != nil {
			return 0, "", err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, "", fmt.Errorf("%s: committing: %w", m.File, err)
	}
	var n int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+name).Scan(&n); err != nil {
		return 0, "", fmt.Errorf("%s: counting rows: %w", m.File, err)
	}
	return n, "", nil
}

// recordRun appends the run's per-model results to cdw_model_runs, so they
// can be queried afterwards like any table.
func recordRun(ctx context.Context, conn *sql.Conn, res RunResult) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS cdw_model_runs (
		run_id VARCHAR, model VARCHAR, file VARCHAR, status VARCHAR, rows BIGINT,
		duration_ms DOUBLE, error VARCHAR, notes VARCHAR, recorded_at TIMESTAMPTZ)`); err != nil {
		return fmt.Errorf("creating cdw_model_runs: %w", err)
	}
	for _, m := range res.Models {
		var msg any
		if m.Err != nil {
			msg = m.Err.Error()
		}
		var rows any = m.Rows
		if m.Rows < 0 {
			rows = nil
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO cdw_model_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, now())`,
			res.RunID, m.Model, m.File, string(m.Status), rows, float64(m.Duration.Microseconds())/1000, msg, m.Notes); err != nil {
			return fmt.Errorf("recording model run: %w", err)
		}
	}
	return nil
}

// quoteIdent quotes a SQL identifier for DuckDB.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}
