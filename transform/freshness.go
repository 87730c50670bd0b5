package transform

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cdwhq/cdw/internal/duck"
)

// Freshness is how old the newest extracted row of an entity may be before
// cdw warns or fails (config: freshness: {orders: {warn_after: 24h,
// error_after: 72h}}). Zero means no limit.
type Freshness struct {
	WarnAfter  time.Duration `yaml:"warn_after"`
	ErrorAfter time.Duration `yaml:"error_after"`
}

// CheckFreshness measures, for each entity with a rule, the newest
// updated_at (else order_ts or created_at) in raw.<entity> and compares its
// age at now with the rule. Results read like data tests named
// "freshness(raw.<entity>)"; an error_after breach blocks publishing.
func CheckFreshness(ctx context.Context, db *sql.DB, rules map[string]Freshness, now time.Time) ([]TestResult, error) {
	entities := make([]string, 0, len(rules))
	for e := range rules {
		entities = append(entities, e)
	}
	sort.Strings(entities)
	var out []TestResult
	for _, e := range entities {
		rule := rules[e]
		tr := TestResult{Name: "freshness(raw." + e + ")", File: "freshness." + e, Severity: "error", Status: TestPass}
		if rule.ErrorAfter == 0 {
			tr.Severity = "warn"
		}
		t0 := time.Now()
		newest, err := NewestRow(ctx, db, e)
		tr.Duration = time.Since(t0)
		switch {
		case err != nil:
			tr.Status, tr.Err = TestError, err
		case !newest.Valid:
			tr.Sample = "no rows extracted yet"
			tr.Status = worse(rule, 1<<62)
		default:
			age := now.Sub(newest.Time)
			tr.Sample = fmt.Sprintf("newest row %s, %s old (warn after %s, error after %s)",
				newest.Time.UTC().Format(time.RFC3339), age.Round(time.Minute), fmtLimit(rule.WarnAfter), fmtLimit(rule.ErrorAfter))
			tr.Status = worse(rule, age)
		}
		if tr.Status == TestWarn || tr.Status == TestFail {
			tr.Failures = 1
		}
		out = append(out, tr)
	}
	return out, nil
}

func worse(rule Freshness, age time.Duration) TestStatus {
	switch {
	case rule.ErrorAfter > 0 && age > rule.ErrorAfter:
		return TestFail
	case rule.WarnAfter > 0 && age > rule.WarnAfter:
		return TestWarn
	}
	return TestPass
}

func fmtLimit(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return d.String()
}

// NewestRow reads the newest change time of raw.<entity>, using the first
// of updated_at, order_ts, created_at that the view has. It is the one
// measure of freshness: the checks of cdw run and cdw test, and the
// cdw_data_freshness_seconds of cdw serve's /metrics.
func NewestRow(ctx context.Context, db *sql.DB, entity string) (sql.NullTime, error) {
	var t sql.NullTime
	rows, err := db.QueryContext(ctx, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = 'raw' AND table_name = ?`, entity)
	if err != nil {
		return t, fmt.Errorf("reading the columns of raw.%s: %w", entity, err)
	}
	have := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return t, fmt.Errorf("reading the columns of raw.%s: %w", entity, err)
		}
		have[strings.ToLower(c)] = true
	}
	rows.Close()
	if len(have) == 0 {
		return t, fmt.Errorf("raw.%s does not exist: freshness is configured for an entity no source extracts", entity)
	}
	var parts []string
	for _, c := range []string{"updated_at", "order_ts", "created_at"} {
		if have[c] {
			parts = append(parts, "max("+c+")::TIMESTAMPTZ")
		}
	}
	if len(parts) == 0 {
		return t, fmt.Errorf("raw.%s has none of updated_at, order_ts, created_at to measure freshness on", entity)
	}
	q := fmt.Sprintf("SELECT coalesce(%s) FROM raw.%s", strings.Join(parts, ", "), duck.Ident(entity))
	if err := db.QueryRowContext(ctx, q).Scan(&t); err != nil {
		return t, fmt.Errorf("measuring freshness of raw.%s: %w", entity, err)
	}
	return t, nil
}

// CheckSourceFreshness checks dbt sources' freshness rules (schema.yml
// sources: with loaded_at_field) at now. Results are named
// "freshness(source shop.orders)"; an error_after breach blocks publishing.
func CheckSourceFreshness(ctx context.Context, db *sql.DB, rules []SourceFreshness, now time.Time) []TestResult {
	var out []TestResult
	for _, s := range rules {
		tr := TestResult{Name: "freshness(source " + s.Name + ")", File: s.File, Severity: "error", Status: TestPass}
		if s.Rule.ErrorAfter == 0 {
			tr.Severity = "warn"
		}
		t0 := time.Now()
		var newest sql.NullTime
		schema, table, _ := strings.Cut(s.Relation, ".")
		q := fmt.Sprintf("SELECT max(%s)::TIMESTAMPTZ FROM %s.%s", duck.Ident(s.Column), duck.Ident(schema), duck.Ident(table))
		err := db.QueryRowContext(ctx, q).Scan(&newest)
		tr.Duration = time.Since(t0)
		switch {
		case err != nil:
			tr.Status, tr.Err = TestError, fmt.Errorf("%s: measuring freshness of %s on %s: %w", s.File, s.Relation, s.Column, err)
		case !newest.Valid:
			tr.Sample = "no rows loaded yet"
			tr.Status = worse(s.Rule, 1<<62)
		default:
			age := now.Sub(newest.Time)
			tr.Sample = fmt.Sprintf("newest %s %s, %s old (warn after %s, error after %s)", s.Column,
				newest.Time.UTC().Format(time.RFC3339), age.Round(time.Minute), fmtLimit(s.Rule.WarnAfter), fmtLimit(s.Rule.ErrorAfter))
			tr.Status = worse(s.Rule, age)
		}
		if tr.Status == TestWarn || tr.Status == TestFail {
			tr.Failures = 1
		}
		out = append(out, tr)
	}
	return out
}
