package transform

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/failpoint"
)

// Materializing: one model's SQL becomes a view or a table, or is merged
// into its incremental table, in one transaction with its state row.

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
	name := duck.Ident(m.Name)
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
	if _, err := tx.ExecContext(ctx, drop+duck.Ident(m.Name)); err != nil {
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
	name := duck.Ident(m.Name)
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
				on = append(on, fmt.Sprintf("t.%s IS NOT DISTINCT FROM n.%s", duck.Ident(k), duck.Ident(k)))
			}
			if err := exec("DELETE FROM " + name + " t WHERE EXISTS (SELECT 1 FROM __cdw_new n WHERE " + strings.Join(on, " AND ") + ")"); err != nil {
				return 0, "", err
			}
		} else {
			// IS NOT DISTINCT FROM: the NULL partition is replaced too (IN
			// never matches NULL, so its rows would pile up on every build).
			p := duck.Ident(m.Header.PartitionBy)
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
