package transform

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cdwhq/cdw/internal/duck"
)

// DataTest is a query that returns the rows breaking a rule: zero rows pass.
// Header tests (-- tests: unique(id)) are compiled to such queries; test
// files under tests/ are such queries as written.
type DataTest struct {
	Name     string // e.g. "customers: unique(customer_id)" or the test file's name
	File     string // the model or test file that declares it
	Model    string // the model a header test checks; "" for test files
	Severity string // "error" (blocks publishing) or "warn"
	SQL      string // the rendered query returning failing rows
	Deps     []string
	Tags     []string
}

// TestStatus is the outcome of one data test.
type TestStatus string

// Data test outcomes. Fail and Error block publishing; Warn does not.
const (
	TestPass  TestStatus = "pass"
	TestWarn  TestStatus = "warn"  // failing rows, severity warn
	TestFail  TestStatus = "fail"  // failing rows, severity error
	TestError TestStatus = "error" // the query itself failed
	// TestUpToDate: not run, because everything it reads is as it was when
	// it last passed.
	TestUpToDate TestStatus = "up-to-date"
)

// TestResult is what one data test found.
type TestResult struct {
	Name     string
	File     string
	Severity string
	Status   TestStatus
	Failures int64  // failing rows
	Sample   string // the first failing rows, for the summary
	Err      error
	Duration time.Duration
}

// Blocking reports whether the result must stop publishing.
func (t TestResult) Blocking() bool { return t.Status == TestFail || t.Status == TestError }

// errTestQuery marks a test whose query DuckDB refused (often: the model was
// never built; run it first).
var errTestQuery = errors.New("the test query failed (is the model built?)")

// duckMessage is DuckDB's message without its statement excerpt.
func duckMessage(err error) string {
	msg := err.Error()
	if loc := duckLine.FindStringIndex(msg); loc != nil {
		msg = msg[:loc[0]]
	}
	return strings.Join(strings.Fields(msg), " ")
}

// TestsErr summarises blocking results as one error, or nil.
func TestsErr(results []TestResult) error {
	var errs []error
	for _, t := range results {
		if !t.Blocking() {
			continue
		}
		if t.Err != nil {
			errs = append(errs, fmt.Errorf("test %s (%s): %w", t.Name, t.File, t.Err))
		} else {
			errs = append(errs, fmt.Errorf("test %s (%s): %d failing rows, e.g. %s", t.Name, t.File, t.Failures, t.Sample))
		}
	}
	return errors.Join(errs...)
}

// TestsFor returns the tests that check the given models: header tests of
// those models, and test files all of whose models are among them. A test
// reading a model outside the selection is not run: it would judge a table
// this run did not build (dbt's "cautious" indirect selection).
func (p *Project) TestsFor(models []*Model) []*DataTest {
	in := map[string]bool{}
	for _, m := range models {
		in[m.Name] = true
	}
	var out []*DataTest
	for _, t := range p.Tests {
		if t.Model != "" {
			if in[t.Model] {
				out = append(out, t)
			}
			continue
		}
		reads, all := false, true
		for _, d := range t.Deps {
			if strings.HasPrefix(d, "raw.") {
				continue
			}
			reads = true
			all = all && in[d]
		}
		if reads && all {
			out = append(out, t)
		}
	}
	return out
}

// headerTests compiles a model's header tests to queries.
func headerTests(m *Model, exists func(string) bool) ([]*DataTest, error) {
	var out []*DataTest
	for _, ts := range m.Header.Tests {
		rel := duck.Ident(m.Name)
		if ts.Where != "" {
			rel = "(SELECT * FROM " + rel + " WHERE " + ts.Where + ")"
		}
		cols := make([]string, len(ts.Args))
		for i, a := range ts.Args {
			cols[i] = ident(a)
		}
		t := &DataTest{
			Name: fmt.Sprintf("%s: %s(%s)%s", m.Name, ts.Kind, strings.Join(ts.Args, ", "), whereNote(ts.Where)),
			File: m.File, Model: m.Name, Severity: ts.Severity, Deps: []string{m.Name}, Tags: m.Header.Tags,
		}
		switch ts.Kind {
		case "unique":
			key := strings.Join(cols, ", ")
			where := ""
			if len(cols) == 1 {
				where = " WHERE " + cols[0] + " IS NOT NULL" // like a UNIQUE constraint
			}
			t.SQL = fmt.Sprintf("SELECT %s, count(*) AS n FROM %s%s GROUP BY %s HAVING count(*) > 1", key, rel, where, key)
		case "not_null":
			conds := make([]string, len(cols))
			for i, c := range cols {
				conds[i] = c + " IS NULL"
			}
			t.SQL = fmt.Sprintf("SELECT * FROM %s WHERE %s", rel, strings.Join(conds, " OR "))
		case "accepted_values":
			t.SQL = fmt.Sprintf("SELECT %s AS value, count(*) AS n FROM %s WHERE %s IS NOT NULL AND %s NOT IN (%s) GROUP BY 1",
				cols[0], rel, cols[0], cols[0], strings.Join(ts.Args[1:], ", "))
		case "relationships":
			target := strings.ToLower(ts.Args[1])
			dot := strings.LastIndexByte(target, '.')
			parent, pcol := target[:dot], ident(ts.Args[1][dot+1:])
			if !exists(parent) {
				return nil, fmt.Errorf("%s: test %s: %s is neither a model nor a raw relation", m.File, t.Name, parent)
			}
			prel := duck.Ident(parent)
			if strings.HasPrefix(parent, "raw.") {
				prel = "raw." + duck.Ident(strings.TrimPrefix(parent, "raw."))
			}
			t.SQL = fmt.Sprintf("SELECT c.%s AS value, count(*) AS n FROM %s c WHERE c.%s IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %s p WHERE p.%s = c.%s) GROUP BY 1",
				cols[0], rel, cols[0], prel, pcol, cols[0])
			t.Deps = append(t.Deps, parent)
		}
		out = append(out, t)
	}
	return out, nil
}

func whereNote(w string) string {
	if w == "" {
		return ""
	}
	return " where " + w
}

// ident quotes a column name unless the header already quoted it.
func ident(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, `"`) {
		return s
	}
	return duck.Ident(s)
}

// testHeaderKeys are the header keys a test file may use.
var testHeaderKeys = map[string]bool{"severity": true, "description": true, "tags": true}

// parseTestFile reads a test file's header: severity (error or warn),
// description and tags.
func parseTestFile(file, sql string) (severity string, tags []string, err error) {
	severity = "error"
	for i, raw := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" {
			continue
		}
		if !strings.HasPrefix(trimmed, "--") {
			break
		}
		m := headerLine.FindStringSubmatch(trimmed)
		if m == nil || strings.Contains(m[1], " ") {
			continue
		}
		key, val := strings.ToLower(m[1]), strings.TrimSpace(m[2])
		if !testHeaderKeys[key] {
			return "", nil, fmt.Errorf("%s:%d: unknown test header key %q (known: severity, description, tags)", file, i+1, m[1])
		}
		switch key {
		case "severity":
			if val != "error" && val != "warn" {
				return "", nil, fmt.Errorf("%s:%d: severity must be error or warn, got %q", file, i+1, val)
			}
			severity = val
		case "tags":
			tags = append(tags, splitList(val)...)
		}
	}
	return severity, tags, nil
}

// TestRunner runs data tests against the warehouse.
type TestRunner struct {
	DB  *sql.DB
	Log *slog.Logger
	// Versions, when set (by a transform run), lets the runner skip a test
	// whose query and inputs' versions are those of its last pass: it is
	// reported as TestUpToDate. Nil runs every test.
	Versions TestVersions
}

// Run runs tests one after another on one connection (each is a single
// query DuckDB already parallelises) and records them in cdw_test_runs.
func (r *TestRunner) Run(ctx context.Context, runID string, tests []*DataTest) ([]TestResult, error) {
	conn, err := r.DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting to the warehouse: %w", err)
	}
	defer conn.Close()
	if err := InstallFunctions(conn); err != nil {
		return nil, err
	}
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	passed, err := r.passed(ctx, conn)
	if err != nil {
		return nil, err
	}
	out := make([]TestResult, 0, len(tests))
	var states []testState
	for _, t := range tests {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		st := testState{test: t.Name, definition: testDefinition(t)}
		var known bool
		if r.Versions != nil {
			st.inputs, known = r.Versions.testInputs(t)
		}
		if known && passed[st.test] == st.definition+" "+st.inputs {
			out = append(out, TestResult{Name: t.Name, File: t.File, Severity: t.Severity, Status: TestUpToDate})
			log.Info("test", "test", t.Name, "status", TestUpToDate)
			continue
		}
		tr := runTest(ctx, conn, t)
		log.Info("test", "test", t.Name, "status", tr.Status, "failures", tr.Failures, "ms", tr.Duration.Milliseconds())
		out = append(out, tr)
		if r.Versions != nil {
			st.pass = known && tr.Status == TestPass
			states = append(states, st)
		}
	}
	if err := recordTests(ctx, conn, runID, out, states); err != nil {
		return out, err
	}
	return out, nil
}

// testState is a test's row in cdw_test_state: present only while the test
// passed on the inputs it names.
type testState struct {
	test, definition, inputs string
	pass                     bool
}

// passed returns, per test, the definition and inputs of its last pass.
func (r *TestRunner) passed(ctx context.Context, conn *sql.Conn) (map[string]string, error) {
	out := map[string]string{}
	if r.Versions == nil {
		return out, nil
	}
	if _, err := conn.ExecContext(ctx, testStateTable); err != nil {
		return nil, fmt.Errorf("creating cdw_test_state: %w", err)
	}
	rows, err := conn.QueryContext(ctx, `SELECT test, definition_hash || ' ' || inputs_hash FROM cdw_test_state`)
	if err != nil {
		return nil, fmt.Errorf("reading cdw_test_state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, v string
		if err := rows.Scan(&name, &v); err != nil {
			return nil, fmt.Errorf("reading cdw_test_state: %w", err)
		}
		out[name] = v
	}
	return out, rows.Err()
}

func runTest(ctx context.Context, conn *sql.Conn, t *DataTest) TestResult {
	tr := TestResult{Name: t.Name, File: t.File, Severity: t.Severity, Status: TestPass}
	t0 := time.Now()
	defer func() { tr.Duration = time.Since(t0) }()
	body := stripSemicolon(t.SQL)
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM (\n"+body+"\n)").Scan(&tr.Failures); err != nil {
		tr.Status, tr.Err = TestError, fmt.Errorf("running test query: %s: %w", duckMessage(err), errTestQuery)
		tr.Duration = time.Since(t0)
		return tr
	}
	if tr.Failures > 0 {
		tr.Status = TestFail
		if t.Severity == "warn" {
			tr.Status = TestWarn
		}
		tr.Sample = sampleRows(ctx, conn, body, 3)
	}
	tr.Duration = time.Since(t0)
	return tr
}

// sampleRows formats the first n failing rows as "col=value, …; …".
func sampleRows(ctx context.Context, conn *sql.Conn, body string, n int) string {
	rows, err := conn.QueryContext(ctx, fmt.Sprintf("SELECT * FROM (\n%s\n) LIMIT %d", body, n))
	if err != nil {
		return ""
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var parts []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if rows.Scan(ptrs...) != nil {
			break
		}
		kv := make([]string, 0, len(cols))
		for i, c := range cols {
			if len(kv) == 6 {
				kv = append(kv, "…")
				break
			}
			kv = append(kv, fmt.Sprintf("%s=%v", c, vals[i]))
		}
		parts = append(parts, strings.Join(kv, ", "))
	}
	return strings.Join(parts, "; ")
}

func recordTests(ctx context.Context, conn *sql.Conn, runID string, results []TestResult, states []testState) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS cdw_test_runs (
		run_id VARCHAR, test VARCHAR, file VARCHAR, severity VARCHAR, status VARCHAR,
		failures BIGINT, error VARCHAR, duration_ms DOUBLE, recorded_at TIMESTAMPTZ)`); err != nil {
		return fmt.Errorf("creating cdw_test_runs: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recording test runs: %w", err)
	}
	defer tx.Rollback()
	// One statement for all results: a statement per test cost a run with
	// nothing to do a seventh of its time (BenchmarkBuiltinEngine/noop).
	if len(results) > 0 {
		var q strings.Builder
		q.WriteString(`INSERT INTO cdw_test_runs VALUES `)
		args := make([]any, 0, 8*len(results))
		for i, t := range results {
			var msg any
			if t.Err != nil {
				msg = t.Err.Error()
			}
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, now())")
			args = append(args, runID, t.Name, t.File, t.Severity, string(t.Status), t.Failures, msg, float64(t.Duration.Microseconds())/1000)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("recording test runs: %w", err)
		}
	}
	for _, st := range states {
		if _, err := tx.ExecContext(ctx, `DELETE FROM cdw_test_state WHERE test = ?`, st.test); err != nil {
			return fmt.Errorf("recording test state: %w", err)
		}
		if !st.pass {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO cdw_test_state VALUES (?, ?, ?, ?)`, st.test, st.definition, st.inputs, runID); err != nil {
			return fmt.Errorf("recording test state: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recording test runs: %w", err)
	}
	return nil
}
