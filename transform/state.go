package transform

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cdwhq/cdw/internal/duck"
)

// A run skips models that are up to date, the way make or Bazel skip
// targets: the warehouse keeps, per model, a hash of its definition, a hash
// of the versions of its inputs and the version it produced
// (cdw_model_state). A model whose definition and input versions are what
// they were at its last build, and whose table still exists, is not built
// again and keeps its version, so its descendants can be skipped too.
//
// Versions: a raw relation's version is a hash of its definition and its
// committed files (files are immutable once committed, so the list is the
// content). A model's version is a hash of its definition and its inputs'
// versions: a model's table is a function of those, so rebuilding it from
// the same inputs gives the same version. Two exceptions: a model that reads
// outside its inputs (always_rebuild, or a volatile function) gets a new
// version on every build; a model with early_cutoff whose rebuilt table has
// the same content as before keeps its old version.

// RawInput describes one raw relation as the run sees it.
type RawInput struct {
	// Shape is the relation's definition without its file list (sources,
	// columns): when it changes, every model reading it rebuilds in full.
	Shape string
	// Files are the committed Parquet files the relation reads, as the
	// _file column names them.
	Files []string
}

func (ri RawInput) version() string {
	files := slices.Clone(ri.Files)
	sort.Strings(files)
	return hashOf("raw", ri.Shape, strings.Join(files, "\n"))
}

// modelState is a model's row in cdw_model_state: its last successful build.
type modelState struct {
	Code          string // EngineVersion of the cdw that built it
	Definition    string
	Inputs        string
	InputVersions map[string]string // input → version at the build, to say what changed
	Version       string
	Content       string // early_cutoff models: fingerprint of the table
	// RawFiles are, for incremental models, the files of each raw relation
	// the table has read (what {{ new_rows() }} leaves out next time).
	RawFiles map[string][]string
	Shapes   map[string]string // and the raw relations' shapes then
	BuiltAt  time.Time
}

const stateTable = `CREATE TABLE IF NOT EXISTS cdw_model_state (
	model VARCHAR, code_version VARCHAR, definition_hash VARCHAR, inputs_hash VARCHAR, version VARCHAR,
	content_hash VARCHAR, input_versions VARCHAR, raw_files VARCHAR, run_id VARCHAR, built_at TIMESTAMPTZ)`

const testStateTable = `CREATE TABLE IF NOT EXISTS cdw_test_state (
	test VARCHAR, definition_hash VARCHAR, inputs_hash VARCHAR, run_id VARCHAR)`

// rawState is what raw_files holds.
type rawState struct {
	Files  map[string][]string `json:"files"`
	Shapes map[string]string   `json:"shapes"`
}

func readStates(ctx context.Context, q querier) (map[string]*modelState, error) {
	rows, err := q.QueryContext(ctx, `SELECT model, code_version, definition_hash, inputs_hash, version, coalesce(content_hash, ''),
		coalesce(input_versions, ''), coalesce(raw_files, ''), built_at FROM cdw_model_state`)
	if err != nil {
		return nil, fmt.Errorf("reading cdw_model_state: %w", err)
	}
	defer rows.Close()
	out := map[string]*modelState{}
	for rows.Next() {
		var name, iv, raw string
		st := &modelState{}
		if err := rows.Scan(&name, &st.Code, &st.Definition, &st.Inputs, &st.Version, &st.Content, &iv, &raw, &st.BuiltAt); err != nil {
			return nil, fmt.Errorf("reading cdw_model_state: %w", err)
		}
		if iv != "" && json.Unmarshal([]byte(iv), &st.InputVersions) != nil {
			continue // unreadable: as if never built, which is safe
		}
		if raw != "" {
			var rs rawState
			if err := json.Unmarshal([]byte(raw), &rs); err != nil {
				continue
			}
			st.RawFiles, st.Shapes = rs.Files, rs.Shapes
		}
		out[name] = st
	}
	return out, rows.Err()
}

// execer is a connection or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func dropState(ctx context.Context, ex execer, model string) error {
	if _, err := ex.ExecContext(ctx, `DELETE FROM cdw_model_state WHERE model = ?`, model); err != nil {
		return fmt.Errorf("clearing the state of %s: %w", model, err)
	}
	return nil
}

// writeState replaces a model's state row.
func writeState(ctx context.Context, ex execer, model, runID string, st *modelState) error {
	if err := dropState(ctx, ex, model); err != nil {
		return err
	}
	var raw any
	if st.RawFiles != nil {
		b, err := json.Marshal(rawState{Files: st.RawFiles, Shapes: st.Shapes})
		if err != nil {
			return fmt.Errorf("recording the state of %s: %w", model, err)
		}
		raw = string(b)
	}
	iv, err := json.Marshal(st.InputVersions)
	if err != nil {
		return fmt.Errorf("recording the state of %s: %w", model, err)
	}
	if _, err := ex.ExecContext(ctx, `INSERT INTO cdw_model_state (model, code_version, definition_hash, inputs_hash, version,
		content_hash, input_versions, raw_files, run_id, built_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now())`,
		model, codeVersion(), st.Definition, st.Inputs, st.Version, st.Content, string(iv), raw, runID); err != nil {
		return fmt.Errorf("recording the state of %s: %w", model, err)
	}
	return nil
}

// contentHash fingerprints a table: its columns and types, row count and
// an order-independent sum of row hashes.
func contentHash(ctx context.Context, ex execer, name string) (string, error) {
	var cols, rows, sum string
	if err := ex.QueryRowContext(ctx, `SELECT coalesce(string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position), '')
		FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ?`, name).Scan(&cols); err != nil {
		return "", fmt.Errorf("reading the columns of %s: %w", name, err)
	}
	if err := ex.QueryRowContext(ctx, `SELECT count(*)::VARCHAR, coalesce(sum(hash(t)), 0)::VARCHAR FROM `+duck.Ident(name)+` AS t`).Scan(&rows, &sum); err != nil {
		return "", fmt.Errorf("fingerprinting %s: %w", name, err)
	}
	return hashOf(cols, rows, sum), nil
}

// hashOf hashes its parts unambiguously.
func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// EngineVersion stands for the code that builds models from their SQL and
// inputs: the built-in Go models, the SQL functions cdw installs, the raw
// views and the materializations. It is part of every model's state instead
// of the binary's identity, so `go run` and a built binary, or a rebuild
// with unrelated changes, agree on what is up to date. Bump it in the commit
// that changes what any model builds from the same SQL, vars and inputs:
// every model is then rebuilt once.
const EngineVersion = "cdw-models-1"

func codeVersion() string { return EngineVersion }

// definitionHash covers everything of a model that shapes its table but
// the engine (EngineVersion, kept apart to say why a model rebuilds): the SQL
// as rendered for a full build (vars included) and the header keys that
// change how it is built, or a Go model's name, inputs and the vars it is
// given.
func definitionHash(m *Model, vars Vars) (string, error) {
	h := m.Header
	if m.Go != nil {
		js, err := json.Marshal(vars) // map keys come out sorted
		if err != nil {
			return "", err
		}
		return hashOf("go", m.Name, strings.Join(m.Deps, ","), string(js)), nil
	}
	body, _, ok := m.fullBody(vars)
	if !ok {
		var err error
		if body, err = Render(m, vars); err != nil {
			return "", err
		}
	}
	return hashOf("sql", m.Name, string(h.Materialized), strings.Join(h.UniqueKey, ","),
		h.PartitionBy, strings.Join(h.RebuildOn, ","), body), nil
}

// TestVersions gives the data tests of a run what they need to skip the
// ones whose inputs did not change since they last passed: the version of
// every relation (models and raw) after the run.
type TestVersions map[string]string

func testDefinition(t *DataTest) string {
	return hashOf(codeVersion(), t.Severity, t.SQL)
}

// testInputs hashes the versions of what a test reads; ok is false when
// one is unknown.
func (v TestVersions) testInputs(t *DataTest) (string, bool) {
	deps := slices.Clone(t.Deps)
	if t.Model != "" {
		deps = append(deps, t.Model)
	}
	sort.Strings(deps)
	deps = slices.Compact(deps)
	parts := make([]string, 0, 2*len(deps))
	for _, d := range deps {
		ver, ok := v[d]
		if !ok {
			return "", false
		}
		parts = append(parts, d, ver)
	}
	return hashOf(parts...), true
}
