package report

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" driver

	"github.com/cdwhq/cdw/load"
)

// marts is a read-only view of the published marts.duckdb plus what tables
// and columns it has, so each section renders only when its mart exists.
type marts struct {
	db   *sql.DB
	cols map[string]map[string]bool // table → column set
}

func openMarts(ctx context.Context, path string) (*marts, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading published marts: %s does not exist (run 'cdw run' first)", path)
	}
	db, err := sql.Open("duckdb", path+"?access_mode=read_only")
	if err != nil {
		return nil, fmt.Errorf("opening published marts %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	m := &marts{db: db, cols: map[string]map[string]bool{}}
	rows, err := db.QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("listing mart columns in %s: %w", path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			db.Close()
			return nil, fmt.Errorf("listing mart columns in %s: %w", path, err)
		}
		if m.cols[t] == nil {
			m.cols[t] = map[string]bool{}
		}
		m.cols[t][c] = true
	}
	if err := rows.Err(); err != nil {
		db.Close()
		return nil, fmt.Errorf("listing mart columns in %s: %w", path, err)
	}
	if !m.has("segment_summary", "business_unit", "segment", "customers", "revenue") {
		db.Close()
		return nil, fmt.Errorf("reading published marts %s: segment_summary (business_unit, segment, customers, revenue) is missing", path)
	}
	return m, nil
}

func (m *marts) Close() error { return m.db.Close() }

func (m *marts) has(table string, cols ...string) bool {
	c, ok := m.cols[table]
	if !ok {
		return false
	}
	for _, col := range cols {
		if !c[col] {
			return false
		}
	}
	return true
}

// firstCol returns the first of the candidate columns the table has.
func (m *marts) firstCol(table string, candidates ...string) string {
	for _, c := range candidates {
		if m.cols[table][c] {
			return c
		}
	}
	return ""
}

// units lists the business units in segment_summary.
func (m *marts) units(ctx context.Context) ([]string, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT DISTINCT business_unit FROM segment_summary WHERE business_unit IS NOT NULL ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("listing business units: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("listing business units: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// segmentRow is one segment's size and revenue in a scope.
type segmentRow struct {
	Segment   string
	Customers int64
	Revenue   float64
}

// unitRow is one business unit's totals (all-units version only).
type unitRow struct {
	Unit      string
	Customers int64
	Revenue   float64
}

// point is one point of a curve, both axes in [0,1] or free.
type point struct{ X, Y float64 }

// countRow is a label with a count (ABC classes, churn bands).
type countRow struct {
	Label string
	Count int64
}

// riskRow is one high-value customer at high risk.
type riskRow struct {
	Customer string
	Unit     string
	Segment  string
	Score    float64
	Value    float64
	Drivers  string
}

// figures is everything one report version shows; a nil slice with a
// non-empty Skipped entry means the mart is not there yet.
type figures struct {
	Scope     string // "" for all units
	AsOf      string
	Customers int64
	Revenue   float64
	Segments  []segmentRow
	Units     []unitRow
	Pareto    []point
	Pareto75  float64 // share of customers making 75% of revenue
	Pareto95  float64
	ABC       []countRow
	Churn     []countRow
	AtRisk    []riskRow
	RiskScore float64
	Seasonal  []point // X = month 1..12, Y = index
	Skipped   map[string]string
}

// scopeWhere returns " AND <alias>business_unit = ?" and args for a scope.
func scopeWhere(scope, alias string) (string, []any) {
	if scope == "" {
		return "", nil
	}
	return " AND " + alias + "business_unit = ?", []any{scope}
}

// collect reads every section's figures for one scope.
func (m *marts) collect(ctx context.Context, scope string, o *Options) (*figures, error) {
	f := &figures{Scope: scope, RiskScore: o.RiskScore, Skipped: map[string]string{}}
	steps := []struct {
		name string
		fn   func(context.Context, *figures, *Options) error
	}{
		{"segments", m.segments}, {"pareto", m.pareto}, {"churn", m.churn},
		{"at_risk", m.atRisk}, {"seasonal", m.seasonal},
	}
	for _, s := range steps {
		if err := s.fn(ctx, f, o); err != nil {
			return nil, fmt.Errorf("reading %s for %s: %w", s.name, scopeName(scope), err)
		}
	}
	return f, nil
}

func scopeName(scope string) string {
	if scope == "" {
		return "all units"
	}
	return "unit " + scope
}

func (m *marts) segments(ctx context.Context, f *figures, _ *Options) error {
	where, args := scopeWhere(f.Scope, "")
	asOf := "NULL"
	if m.has("segment_summary", "as_of") {
		asOf = "CAST(max(as_of) AS VARCHAR)"
	}
	row := m.db.QueryRowContext(ctx, `SELECT coalesce(`+asOf+`, ''), coalesce(sum(customers), 0), coalesce(sum(revenue), 0) FROM segment_summary WHERE true`+where, args...)
	if err := row.Scan(&f.AsOf, &f.Customers, &f.Revenue); err != nil {
		return err
	}
	rows, err := m.db.QueryContext(ctx, `SELECT segment, sum(customers), coalesce(sum(revenue), 0) FROM segment_summary WHERE true`+where+` GROUP BY segment ORDER BY 3 DESC, 1`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r segmentRow
		if err := rows.Scan(&r.Segment, &r.Customers, &r.Revenue); err != nil {
			return err
		}
		f.Segments = append(f.Segments, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if f.Scope != "" {
		return nil
	}
	urows, err := m.db.QueryContext(ctx, `SELECT business_unit, sum(customers), coalesce(sum(revenue), 0) FROM segment_summary GROUP BY 1 ORDER BY 3 DESC, 1`)
	if err != nil {
		return err
	}
	defer urows.Close()
	for urows.Next() {
		var r unitRow
		if err := urows.Scan(&r.Unit, &r.Customers, &r.Revenue); err != nil {
			return err
		}
		f.Units = append(f.Units, r)
	}
	return urows.Err()
}

// pareto samples the cumulative revenue curve at about 100 points; the
// ranking itself stays in DuckDB so millions of customers never reach Go.
func (m *marts) pareto(ctx context.Context, f *figures, _ *Options) error {
	if !m.has("customer_segments", "business_unit", "monetary") {
		f.Skipped["pareto"] = "customer_segments.monetary"
		return nil
	}
	where, args := scopeWhere(f.Scope, "")
	q := `WITH r AS (
  SELECT row_number() OVER (ORDER BY monetary DESC) AS rn, count(*) OVER () AS n,
         sum(monetary) OVER (ORDER BY monetary DESC ROWS UNBOUNDED PRECEDING) AS cum, sum(monetary) OVER () AS tot
  FROM customer_segments WHERE monetary > 0` + where + `)
SELECT rn / n, cum / tot, (SELECT min(rn / n) FROM r WHERE cum / tot >= 0.75), (SELECT min(rn / n) FROM r WHERE cum / tot >= 0.95)
FROM r WHERE rn % greatest(n // 100, 1) = 0 OR rn = n OR rn = 1 ORDER BY rn`
	rows, err := m.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	f.Pareto = []point{{0, 0}}
	for rows.Next() {
		var p point
		if err := rows.Scan(&p.X, &p.Y, &f.Pareto75, &f.Pareto95); err != nil {
			return err
		}
		f.Pareto = append(f.Pareto, p)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if m.has("customer_segments", "abc_class") {
		f.ABC, err = m.counts(ctx, `SELECT CAST(abc_class AS VARCHAR), count(*) FROM customer_segments WHERE true`+where+` GROUP BY 1 ORDER BY 1`, args)
	}
	return err
}

func (m *marts) counts(ctx context.Context, q string, args []any) ([]countRow, error) {
	rows, err := m.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []countRow
	for rows.Next() {
		var r countRow
		var label sql.NullString
		if err := rows.Scan(&label, &r.Count); err != nil {
			return nil, err
		}
		r.Label = label.String
		if !label.Valid {
			r.Label = "—"
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// riskFrom returns the FROM clause that gives churn_risk rows a business
// unit: its own column, or customer_segments' by customer_id.
func (m *marts) riskFrom() (from, unit string, ok bool) {
	switch {
	case m.has("churn_risk", "business_unit"):
		return "churn_risk r", "r.", true
	case m.has("churn_risk", "customer_id") && m.has("customer_segments", "customer_id", "business_unit"):
		return "churn_risk r JOIN customer_segments s USING (customer_id)", "s.", true
	}
	return "", "", false
}

func (m *marts) churn(ctx context.Context, f *figures, _ *Options) error {
	from, alias, ok := m.riskFrom()
	if !ok || !m.has("churn_risk", "churn_band") {
		f.Skipped["churn"] = "churn_risk.churn_band"
		return nil
	}
	where, args := scopeWhere(f.Scope, alias)
	order := "1"
	if m.has("churn_risk", "churn_score") {
		order = "avg(r.churn_score)"
	}
	var err error
	f.Churn, err = m.counts(ctx, `SELECT CAST(r.churn_band AS VARCHAR), count(*) FROM `+from+` WHERE true`+where+` GROUP BY 1 ORDER BY `+order, args)
	return err
}

func (m *marts) atRisk(ctx context.Context, f *figures, o *Options) error {
	from, alias, ok := m.riskFrom()
	if !ok || !m.has("churn_risk", "customer_id", "churn_score") {
		f.Skipped["at_risk"] = "churn_risk.churn_score"
		return nil
	}
	where, args := scopeWhere(f.Scope, alias)
	// "High value" is what the customer has been worth (historic net
	// revenue, the ABC basis): predicted CLV collapses exactly for the
	// customers this list is about, so it would rank them as unimportant.
	value, join := "NULL", ""
	if m.has("customer_segments", "customer_id", "monetary") {
		value, join = "cs.monetary", " LEFT JOIN customer_segments cs ON cs.customer_id = r.customer_id"
	} else if c := m.firstCol("customer_value", "historic_revenue", "clv"); c != "" && m.has("customer_value", "customer_id") {
		value, join = "v."+load.QuoteIdent(c), " LEFT JOIN customer_value v ON v.customer_id = r.customer_id"
	}
	// The mart's own early-warning flag (high value at high risk) decides
	// who is listed when it exists; otherwise the score threshold does.
	filter := "r.churn_score >= ?"
	fargs := []any{o.RiskScore}
	if m.has("churn_risk", "early_warning") {
		filter, fargs = "r.early_warning", nil
	}
	unit := alias + "business_unit"
	segment := "NULL"
	if m.has("customer_segments", "segment") {
		if alias == "s." {
			segment = "s.segment"
		} else if join != "" && strings.Contains(join, "cs ") {
			segment = "cs.segment"
		}
	}
	drivers := "NULL"
	if m.has("churn_risk", "drivers") {
		drivers = "CAST(r.drivers AS VARCHAR)"
	}
	q := fmt.Sprintf(`SELECT CAST(r.customer_id AS VARCHAR), CAST(%s AS VARCHAR), CAST(%s AS VARCHAR), r.churn_score, coalesce(%s, 0), %s
FROM %s%s WHERE %s%s ORDER BY 5 DESC, 4 DESC, 1 LIMIT %d`, unit, segment, value, drivers, from, join, filter, where, o.TopN)
	rows, err := m.db.QueryContext(ctx, q, append(fargs, args...)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	f.AtRisk = []riskRow{}
	for rows.Next() {
		var r riskRow
		var u, s, d sql.NullString
		if err := rows.Scan(&r.Customer, &u, &s, &r.Score, &r.Value, &d); err != nil {
			return err
		}
		r.Unit, r.Segment, r.Drivers = u.String, s.String, d.String
		f.AtRisk = append(f.AtRisk, r)
	}
	return rows.Err()
}

func (m *marts) seasonal(ctx context.Context, f *figures, _ *Options) error {
	month := m.firstCol("seasonal_index", "month", "month_of_year", "month_num")
	idx := m.firstCol("seasonal_index", "seasonal_index", "index", "season_index")
	if month == "" || idx == "" {
		f.Skipped["seasonal"] = "seasonal_index"
		return nil
	}
	where, args := "", []any(nil)
	if m.has("seasonal_index", "business_unit") {
		where, args = scopeWhere(f.Scope, "")
	}
	q := fmt.Sprintf(`SELECT CAST(%[1]s AS DOUBLE), avg(%[2]s) FROM seasonal_index WHERE %[1]s IS NOT NULL%[3]s GROUP BY 1 ORDER BY 1`,
		load.QuoteIdent(month), load.QuoteIdent(idx), where)
	rows, err := m.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var p point
		var y sql.NullFloat64
		if err := rows.Scan(&p.X, &y); err != nil {
			return err
		}
		p.Y = y.Float64
		f.Seasonal = append(f.Seasonal, p)
	}
	sort.Slice(f.Seasonal, func(i, j int) bool { return f.Seasonal[i].X < f.Seasonal[j].X })
	return rows.Err()
}
