package transform

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cdwhq/cdw/internal/failpoint"
	"github.com/cdwhq/cdw/internal/memtrim"
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

	index := make(map[string]int, len(models))
	for i, m := range models {
		index[m.Name] = i
	}
	pending := make([]int, len(models)) // unfinished in-run dependencies
	children := make([][]int, len(models))
	for i, m := range models {
		for _, d := range m.Deps {
			if j, ok := index[d]; ok {
				pending[i]++
				children[j] = append(children[j], i)
			}
		}
	}
	broken := make([]string, len(models)) // the failed ancestor, if any
	type job struct {
		i       int
		iv      map[string]string // the inputs' versions
		inputs  string            // and their hash
		rebuilt []string          // incremental inputs built in full in this run
	}
	rebuilt := map[string]bool{}
	type done struct {
		i  int
		mr ModelResult
	}
	jobs := make(chan job)
	results := make(chan done)
	for w := 0; w < workers; w++ {
		go func(conn *sql.Conn) {
			for j := range jobs {
				mr := r.runModel(ctx, conn, p, models[j.i], j.iv, j.inputs, j.rebuilt)
				// Return what the model's queries freed before the next allocates.
				memtrim.Release()
				failpoint.Hit("transform.after-model") // some models rebuilt, others not yet
				results <- done{j.i, mr}
			}
		}(conns[w])
	}

	var ready []int // kept in topological order so the run order is stable
	for i := range models {
		if pending[i] == 0 {
			ready = append(ready, i)
		}
	}
	finished, inflight := 0, 0
	var finish func(i int, mr ModelResult)
	finish = func(i int, mr ModelResult) {
		res.Models[i] = mr
		finished++
		rebuilt[mr.Model] = mr.rebuilt
		if mr.Version != "" {
			p.versions[mr.Model] = mr.Version
		} else {
			delete(p.versions, mr.Model)
		}
		r.log().Info("model", "model", mr.Model, "status", mr.Status, "rows", mr.Rows,
			"ms", mr.Duration.Milliseconds(), "notes", mr.Notes)
		if mr.Status != Success && mr.Status != UpToDate && broken[i] == "" {
			broken[i] = models[i].Name
		}
		for _, c := range children[i] {
			if broken[i] != "" && broken[c] == "" {
				broken[c] = broken[i]
			}
			pending[c]--
			if pending[c] > 0 {
				continue
			}
			if broken[c] != "" {
				finish(c, ModelResult{Model: models[c].Name, File: models[c].File, Rows: -1, Status: Skipped,
					Err: fmt.Errorf("%s: skipped because %s failed", models[c].File, broken[c])})
				continue
			}
			ready = insertSorted(ready, c)
		}
	}
	var ctxErr error
	for finished < len(models) {
		for len(ready) > 0 && inflight < workers && ctxErr == nil {
			i := ready[0]
			ready = ready[1:]
			inflight++
			iv, inputs := p.inputs(models[i])
			var full []string
			for _, d := range models[i].Deps {
				if rebuilt[d] {
					full = append(full, d)
				}
			}
			jobs <- job{i, iv, inputs, full}
		}
		if inflight == 0 {
			// Cancelled: what never started is skipped.
			for i := range models {
				if res.Models[i].Status == "" {
					res.Models[i] = ModelResult{Model: models[i].Name, File: models[i].File, Rows: -1,
						Status: Skipped, Err: fmt.Errorf("%s: not built: %w", models[i].File, ctxErr)}
				}
			}
			break
		}
		d := <-results
		inflight--
		finish(d.i, d.mr)
		if ctxErr == nil && ctx.Err() != nil {
			ctxErr = ctx.Err()
		}
	}
	close(jobs)
	res.Elapsed = time.Since(start)
	res.Versions = p.versions
	if ctxErr != nil {
		return res, ctxErr
	}
	if err := recordRun(ctx, r.DB, conns[0], res, r.Selection); err != nil {
		return res, err
	}
	return res, nil
}

func insertSorted(s []int, v int) []int {
	i := sort.SearchInts(s, v)
	s = append(s, 0)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

// build (re)builds one model and, in the same transaction where it can,
// records its state through done.
func (r *Runner) build(ctx context.Context, conn *sql.Conn, m *Model, inc *increment, done func(execer) error) (int64, string, error) {
	if m.Go != nil {
		// A Go model commits on its own: clear its state first, so a crash
		// halfway leaves it (and what reads it) to be rebuilt.
		if err := dropState(ctx, conn, m.Name); err != nil {
			return 0, "", err
		}
		if m.Go.OutsideMemory != nil {
			need, err := m.Go.OutsideMemory(ctx, conn)
			if err != nil {
				return 0, "", fmt.Errorf("%s: sizing its memory: %w", m.File, err)
			}
			restore, err := r.reserveMemory(ctx, conn, need)
			if err != nil {
				return 0, "", fmt.Errorf("%s: %w", m.File, err)
			}
			defer restore()
		}
		n, notes, err := m.Go.Build(ctx, conn, r.Vars)
		if err != nil {
			return 0, notes, fmt.Errorf("%s: %w", m.File, err)
		}
		failpoint.Hit("transform.go-model-built") // table replaced, state not yet written
		if err := done(conn); err != nil {
			return 0, notes, fmt.Errorf("%s: %w", m.File, err)
		}
		return n, notes, nil
	}
	rd := &rendering{m: m, vars: r.Vars, inc: inc, conn: conn, ctx: ctx}
	body, secrets, cached := "", []string(nil), false
	if inc == nil {
		body, secrets, cached = m.fullBody(r.Vars)
	}
	if cached {
		rd.secrets = secrets
	} else {
		var err error
		if body, err = rd.render(); err != nil {
			return 0, "", err
		}
	}
	body = stripSemicolon(body)
	modelErr := func(err error) error {
		e := newModelError(m, body, err)
		if e.Line > 0 && body != m.SQL {
			// Rendered lines need not be the file's: find the source line.
			if n, ok := sourceLine(m, r.Vars, inc, e.Line, e.Text); ok {
				e.Line = n
			} else {
				e.Compiled = true
			}
		}
		e.secrets = rd.secrets
		return e
	}
	if m.Header.Materialized == Incremental {
		return incremental(ctx, conn, m, body, inc != nil, done, modelErr)
	}
	name := quoteIdent(m.Name)
	stmt := "CREATE OR REPLACE TABLE " + name + " AS " + body
	if m.Header.Materialized == View {
		stmt = "CREATE OR REPLACE VIEW " + name + " AS " + body
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, "", fmt.Errorf("%s: beginning transaction: %w", m.File, err)
	}
	defer tx.Rollback()
	if err := dropOtherKind(ctx, tx, m, m.Header.Materialized); err != nil {
		return 0, "", err
	}
	// The statement starts on the file's first line, so DuckDB's "LINE n"
	// is the line in the model file.
	var n int64 = -1
	if m.Header.Materialized == View {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return 0, "", modelErr(err)
		}
	} else if err := tx.QueryRowContext(ctx, stmt).Scan(&n); err != nil {
		// CREATE TABLE AS answers with its row count: no second query needed.
		return 0, "", modelErr(err)
	}
	if err := done(tx); err != nil {
		return 0, "", fmt.Errorf("%s: %w", m.File, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, "", fmt.Errorf("%s: committing: %w", m.File, err)
	}
	return n, "", nil
}

// ModelError is a model that DuckDB refused. It names the model file and
// the line DuckDB points at (the CREATE prefix shares the SQL's first line,
// so DuckDB's "LINE n" is the file's line n), keeps DuckDB's own message and
// shows the offending line's text.
type ModelError struct {
	File string
	Line int    // 0 when DuckDB names no line
	Text string // that line of the SQL as rendered
	// Compiled: Line is a line of the rendered SQL, not of the file (no
	// line of the file renders to Text).
	Compiled bool
	Err      error
	secrets  []string // env_var values, never shown
}

var duckLine = regexp.MustCompile(`(?m)^LINE (\d+):.*$`)

func newModelError(m *Model, body string, err error) *ModelError {
	e := &ModelError{File: m.File, Err: err}
	if g := duckLine.FindStringSubmatch(err.Error()); g != nil {
		e.Line, _ = strconv.Atoi(g[1])
		lines := strings.Split(body, "\n")
		if e.Line >= 1 && e.Line <= len(lines) {
			e.Text = strings.TrimSpace(lines[e.Line-1])
		}
	}
	return e
}

func (e *ModelError) Error() string { return redact(e.message(), e.secrets) }

func (e *ModelError) message() string {
	msg := e.Err.Error()
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, strings.TrimSpace(msg))
	}
	// Drop DuckDB's own excerpt (it shows the statement with our CREATE
	// prefix, and a caret line); the file's line replaces it.
	if loc := duckLine.FindStringIndex(msg); loc != nil {
		msg = msg[:loc[0]]
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if e.Compiled {
		return fmt.Sprintf("%s: compiled line %d: %s\n    %d | %s", e.File, e.Line, msg, e.Line, e.Text)
	}
	return fmt.Sprintf("%s:%d: %s\n    %d | %s", e.File, e.Line, msg, e.Line, e.Text)
}

func (e *ModelError) Unwrap() error { return e.Err }

// dropOtherKind drops the model's relation when it exists as the other
// kind (a view where a table is to be built, or a table where a view is),
// since CREATE OR REPLACE only replaces an object of its own kind: a model
// switching between view, table and incremental then just builds.
func dropOtherKind(ctx context.Context, tx *sql.Tx, m *Model, want Materialization) error {
	// Ask only for the other kind, from the one catalog function that
	// holds it: information_schema joins both and cost a model a query's
	// worth of time (BenchmarkDAG50Templated).
	q, drop, kind := `SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() AND schema_name = 'main' AND view_name = ?`, "DROP VIEW ", "view"
	if want == View {
		q, drop, kind = `SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' AND table_name = ?`, "DROP TABLE ", "table"
	}
	var n int
	if err := tx.QueryRowContext(ctx, q, m.Name).Scan(&n); err != nil {
		return fmt.Errorf("%s: looking up the existing %s: %w", m.File, m.Name, err)
	}
	if n == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, drop+quoteIdent(m.Name)); err != nil {
		return fmt.Errorf("%s: dropping the old %s %s to build a %s: %w", m.File, kind, m.Name, want, err)
	}
	return nil
}

// deletedColumn is the reserved output column of incremental models: a row
// with _cdw_deleted true removes its key (or partition) from the table and
// is not inserted.
const deletedColumn = "_cdw_deleted"

// incremental builds an incremental model: in full (a new table from the
// query), or by merging the query's rows into the table, by unique_key
// (rows with the same key are replaced) or partition_by (partitions present
// in the new rows are replaced). Either way in one transaction, with the
// model's state recorded by done before it commits.
func incremental(ctx context.Context, conn *sql.Conn, m *Model, body string, merge bool, done func(execer) error, modelErr func(error) error) (int64, string, error) {
	name := quoteIdent(m.Name)
	deletes, err := hasDeletedColumn(ctx, conn, m, body, modelErr)
	if err != nil {
		return 0, "", err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, "", fmt.Errorf("%s: beginning transaction: %w", m.File, err)
	}
	defer tx.Rollback()
	exec := func(q string) error {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return modelErr(err)
		}
		return nil
	}
	notes := ""
	if !merge {
		if err := dropOtherKind(ctx, tx, m, Incremental); err != nil {
			return 0, "", err
		}
		q := "CREATE OR REPLACE TABLE " + name + " AS " + body
		if deletes {
			q = "CREATE OR REPLACE TABLE " + name + " AS SELECT * EXCLUDE (" + deletedColumn + ") FROM (" + body +
				"\n) WHERE NOT coalesce(" + deletedColumn + ", false)"
		}
		if err := exec(q); err != nil {
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
			// IS NOT DISTINCT FROM: the NULL partition is replaced too (IN
			// never matches NULL, so its rows would pile up on every build).
			p := quoteIdent(m.Header.PartitionBy)
			if err := exec("DELETE FROM " + name + " t WHERE EXISTS (SELECT 1 FROM (SELECT DISTINCT " + p + " FROM __cdw_new) n WHERE t." + p + " IS NOT DISTINCT FROM n." + p + ")"); err != nil {
				return 0, "", err
			}
		}
		failpoint.Hit("transform.mid-merge") // keys deleted, new rows not yet inserted
		insert := "INSERT INTO " + name + " BY NAME SELECT * FROM __cdw_new"
		if deletes {
			insert = "INSERT INTO " + name + " BY NAME SELECT * EXCLUDE (" + deletedColumn + ") FROM __cdw_new WHERE NOT coalesce(" + deletedColumn + ", false)"
		}
		if err := exec(insert); err != nil {
			return 0, "", err
		}
		var changed int64
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM __cdw_new").Scan(&changed); err != nil {
			return 0, "", fmt.Errorf("%s: counting merged rows: %w", m.File, err)
		}
		notes = fmt.Sprintf("merged %d rows", changed)
		if err := exec("DROP TABLE __cdw_new"); err != nil {
			return 0, "", err
		}
	}
	if err := done(tx); err != nil {
		return 0, "", fmt.Errorf("%s: %w", m.File, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, "", fmt.Errorf("%s: committing: %w", m.File, err)
	}
	var n int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+name).Scan(&n); err != nil {
		return 0, "", fmt.Errorf("%s: counting rows: %w", m.File, err)
	}
	return n, notes, nil
}

// hasDeletedColumn reports whether the query outputs _cdw_deleted; only a
// query that mentions it is asked (DESCRIBE binds without running).
func hasDeletedColumn(ctx context.Context, conn *sql.Conn, m *Model, body string, modelErr func(error) error) (bool, error) {
	if !strings.Contains(strings.ToLower(body), deletedColumn) {
		return false, nil
	}
	rows, err := conn.QueryContext(ctx, "DESCRIBE "+body)
	if err != nil {
		return false, modelErr(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return false, fmt.Errorf("%s: %w", m.File, err)
	}
	found := false
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return false, fmt.Errorf("%s: %w", m.File, err)
		}
		if name, _ := vals[0].(string); strings.EqualFold(name, deletedColumn) {
			found = true
		}
	}
	return found, rows.Err()
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
