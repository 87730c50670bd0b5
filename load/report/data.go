package report

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/load/duckdbfile"
)

// marts is a read-only view of the published marts.duckdb plus what tables
// and columns it has, so each section renders only when its mart exists.
type marts struct {
	db   *sql.DB
	cols map[string]map[string]bool // table → column set
}

func openMarts(ctx context.Context, path string) (*marts, error) {
	db, cols, err := duckdbfile.OpenRead(ctx, path)
	if err != nil {
		return nil, err
	}
	m := &marts{db: db, cols: cols}
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
	Name     string // contact name (and company) when the CRM has one, else Customer
	Unit     string
	Segment  string
	Score    float64
	Value    float64
	Drivers  string   // the mart's own drivers text (English)
	Reasons  []reason // nil when churn_risk lacks the driver columns
}

// reason is one driver of a churn score, worded per language at render time.
type reason struct {
	Kind string // rhythm, alive, open, overdue, complaints, satisfaction
	N, M int
	pts  float64
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
	Cohorts   []cohortRow
	Movement  *movement
	Skipped   map[string]string
}

// movement is what changed between the last two weekly period ends of
// segment_history.
type movement struct {
	From, To  string // the two as_of dates
	Moves     []move // from → to pairs that changed, most customers first
	Changed   int64  // customers whose segment changed
	New       int64  // customers first seen at To
	IntoRisk  float64
	RiskCount int64
	// IntoHighChurn and HighChurnCount: revenue and customers whose churn
	// band (segment_history's, from the order signals) went from low or
	// medium to high or critical; Banded is false without the column.
	IntoHighChurn  float64
	HighChurnCount int64
	Banded         bool
	Champions      struct{ Lost, Gained []named }
}

// move is one cell of the migration matrix.
type move struct {
	From, To  string // From "" = new customer
	Customers int64
	Revenue   float64
}

// named is a customer behind a move.
type named struct {
	Name, Segment string
	Revenue       float64
}

// riskSegments are the segments "moved into at risk / lost" adds up.
var riskSegments = []string{"at risk", "can't lose", "lost"}

// cohortRow is one first-purchase month: its size and the share of it
// buying in each month since (index 0 = the cohort month).
type cohortRow struct {
	Month     string // YYYY-MM
	Customers int64
	Retention []float64
}

// cohortMonths and cohortSpan bound the heat map: the last 12 cohorts, the
// first 12 months of each.
const cohortMonths, cohortSpan = 12, 12

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
		{"at_risk", m.atRisk}, {"seasonal", m.seasonal}, {"cohorts", m.cohorts}, {"movement", m.movement},
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

// riskDrivers are churn_risk's driver columns: the points each adds to the
// score and the figure the plain-words reason quotes.
var riskDrivers = []struct{ kind, points, figure string }{
	{"rhythm", "points_lapse", "recency_days"},
	{"alive", "points_alive", "p_alive"},
	{"open", "points_open", "open_tickets"},
	{"overdue", "points_overdue", "overdue_tickets"},
	{"complaints", "points_complaints", "complaints_90d"},
	{"satisfaction", "points_satisfaction", "low_satisfaction"},
}

// atRisk lists the most valuable customers whose churn score is at least
// report.risk_score, largest historic net revenue first.
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
		value, join = "v."+duck.Ident(c), " LEFT JOIN customer_value v ON v.customer_id = r.customer_id"
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
	name := "NULL"
	if m.has("customer_360", "customer_id", "name", "company") {
		name = `nullif(concat_ws(' · ', nullif(trim(c3.name), ''), nullif(trim(c3.company), '')), '')`
		join += " LEFT JOIN customer_360 c3 ON c3.customer_id = r.customer_id"
	}
	structured := m.has("churn_risk", "rhythm_days")
	extra := ""
	for _, d := range riskDrivers {
		if !m.has("churn_risk", d.points, d.figure) {
			structured = false
		}
	}
	if structured {
		extra = ", r.rhythm_days"
		for _, d := range riskDrivers {
			extra += fmt.Sprintf(", coalesce(r.%s, 0)::DOUBLE, coalesce(r.%s, 0)::DOUBLE", d.points, d.figure)
		}
	}
	q := fmt.Sprintf(`SELECT CAST(r.customer_id AS VARCHAR), %s, CAST(%s AS VARCHAR), CAST(%s AS VARCHAR), r.churn_score, coalesce(%s, 0), %s%s
FROM %s%s WHERE r.churn_score >= ?%s ORDER BY 6 DESC, 5 DESC, 1 LIMIT %d`, name, unit, segment, value, drivers, extra, from, join, where, o.TopN)
	rows, err := m.db.QueryContext(ctx, q, append([]any{o.RiskScore}, args...)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	f.AtRisk = []riskRow{}
	for rows.Next() {
		var r riskRow
		var n, u, s, d sql.NullString
		dest := []any{&r.Customer, &n, &u, &s, &r.Score, &r.Value, &d}
		var rhythm sql.NullFloat64
		vals := make([]float64, 2*len(riskDrivers))
		if structured {
			dest = append(dest, &rhythm)
			for i := range vals {
				dest = append(dest, &vals[i])
			}
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		r.Name, r.Unit, r.Segment, r.Drivers = n.String, u.String, s.String, d.String
		if r.Name == "" {
			r.Name = r.Customer
		}
		if structured {
			r.Reasons = reasons(vals, rhythm.Float64)
		}
		f.AtRisk = append(f.AtRisk, r)
	}
	return rows.Err()
}

// reasons orders a customer's drivers: the recency-against-rhythm sentence
// first (it is the one an account manager can act on), then up to two more
// by points. P(alive) says the same as the rhythm, so it only shows when
// the rhythm adds no points.
func reasons(vals []float64, rhythmDays float64) []reason {
	var rs []reason
	var rhythm *reason
	for i, d := range riskDrivers {
		pts, fig := vals[2*i], vals[2*i+1]
		switch d.kind {
		case "rhythm":
			rhythm = &reason{Kind: "rhythm", N: int(fig), M: int(math.Round(rhythmDays)), pts: pts}
		case "alive":
			rs = append(rs, reason{Kind: "alive", N: int(math.Round(fig * 100)), pts: pts})
		default:
			rs = append(rs, reason{Kind: d.kind, N: int(fig), pts: pts})
		}
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].pts > rs[j].pts })
	out := []reason{*rhythm}
	for _, r := range rs {
		if r.pts <= 0 || len(out) == 3 || (r.Kind == "alive" && rhythm.pts > 0) {
			continue
		}
		out = append(out, r)
	}
	return out
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
		duck.Ident(month), duck.Ident(idx), where)
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
	if err := rows.Err(); err != nil {
		return err
	}
	sort.Slice(f.Seasonal, func(i, j int) bool { return f.Seasonal[i].X < f.Seasonal[j].X })
	// The built-in mart stores the index ×100 (100 = an average month); an
	// index averages 1 over the year, so a mean far above that is ×100.
	mean := 0.0
	for _, p := range f.Seasonal {
		mean += p.Y / float64(len(f.Seasonal))
	}
	if mean > 10 {
		for i := range f.Seasonal {
			f.Seasonal[i].Y /= 100
		}
	}
	return nil
}

// cohorts reads the last cohortMonths cohorts of cohort_retention, their
// units added up.
func (m *marts) cohorts(ctx context.Context, f *figures, _ *Options) error {
	if !m.has("cohort_retention", "business_unit", "cohort_month", "months_since", "cohort_customers", "active_customers") {
		f.Skipped["cohorts"] = "cohort_retention"
		return nil
	}
	where, args := scopeWhere(f.Scope, "")
	q := fmt.Sprintf(`WITH c AS (
  SELECT strftime(cohort_month, '%%Y-%%m') AS cohort, months_since,
         sum(cohort_customers) AS size, sum(active_customers) AS active
  FROM cohort_retention WHERE months_since < %d%s GROUP BY ALL
), last AS (SELECT DISTINCT cohort FROM c ORDER BY cohort DESC LIMIT %d)
SELECT cohort, months_since, size, active FROM c SEMI JOIN last USING (cohort) ORDER BY cohort, months_since`, cohortSpan, where, cohortMonths)
	rows, err := m.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var month string
		var since int
		var size, active int64
		if err := rows.Scan(&month, &since, &size, &active); err != nil {
			return err
		}
		if n := len(f.Cohorts); n == 0 || f.Cohorts[n-1].Month != month {
			f.Cohorts = append(f.Cohorts, cohortRow{Month: month, Customers: size})
		}
		c := &f.Cohorts[len(f.Cohorts)-1]
		for len(c.Retention) < since {
			c.Retention = append(c.Retention, math.NaN())
		}
		c.Retention = append(c.Retention, share(float64(active), float64(size)))
	}
	return rows.Err()
}

// movement compares each customer's segment at the last two weekly period
// ends of segment_history.
func (m *marts) movement(ctx context.Context, f *figures, _ *Options) error {
	if !m.has("segment_history", "as_of", "week_end", "customer_id", "business_unit", "segment", "monetary") {
		f.Skipped["movement"] = "segment_history"
		return nil
	}
	where, args := scopeWhere(f.Scope, "")
	var from, to sql.NullString
	if err := m.db.QueryRowContext(ctx, `SELECT CAST(min(as_of) AS VARCHAR), CAST(max(as_of) AS VARCHAR) FROM (
  SELECT DISTINCT as_of FROM segment_history WHERE week_end`+where+` ORDER BY as_of DESC LIMIT 2) HAVING count(*) = 2`, args...).Scan(&from, &to); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if !from.Valid {
		return nil
	}
	mv := &movement{From: from.String, To: to.String}
	name := "CAST(t.customer_id AS VARCHAR)"
	join := ""
	if m.has("customer_360", "customer_id", "name", "company") {
		name = `coalesce(nullif(concat_ws(' · ', nullif(trim(c3.name), ''), nullif(trim(c3.company), '')), ''), CAST(t.customer_id AS VARCHAR))`
		join = " LEFT JOIN customer_360 c3 ON c3.customer_id = t.customer_id"
	}
	pairs := `WITH a AS (SELECT customer_id, segment FROM segment_history WHERE as_of = CAST(? AS DATE)` + where + `),
b AS (SELECT customer_id, segment, monetary FROM segment_history WHERE as_of = CAST(? AS DATE)` + where + `),
t AS (SELECT b.customer_id, coalesce(a.segment, '') AS seg_from, b.segment AS seg_to, b.monetary FROM b LEFT JOIN a USING (customer_id))
`
	pargs := append(append([]any{from.String}, args...), append([]any{to.String}, args...)...)
	rows, err := m.db.QueryContext(ctx, pairs+`SELECT seg_from, seg_to, count(*), coalesce(sum(monetary), 0) FROM t WHERE seg_from <> seg_to GROUP BY ALL ORDER BY 3 DESC, 4 DESC, 1, 2`, pargs...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var mo move
		if err := rows.Scan(&mo.From, &mo.To, &mo.Customers, &mo.Revenue); err != nil {
			return err
		}
		if mo.From == "" {
			mv.New += mo.Customers
		} else {
			mv.Changed += mo.Customers
		}
		if mo.From != "" && slices.Contains(riskSegments, mo.To) && !slices.Contains(riskSegments, mo.From) {
			mv.IntoRisk += mo.Revenue
			mv.RiskCount += mo.Customers
		}
		mv.Moves = append(mv.Moves, mo)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if m.has("segment_history", "churn_band") {
		mv.Banded = true
		if err := m.db.QueryRowContext(ctx, `WITH a AS (SELECT customer_id, churn_band FROM segment_history WHERE as_of = CAST(? AS DATE)`+where+`),
b AS (SELECT customer_id, churn_band, monetary FROM segment_history WHERE as_of = CAST(? AS DATE)`+where+`)
SELECT count(*), coalesce(sum(b.monetary), 0) FROM b JOIN a USING (customer_id)
WHERE a.churn_band IN ('low', 'medium') AND b.churn_band IN ('high', 'critical')`, pargs...).Scan(&mv.HighChurnCount, &mv.IntoHighChurn); err != nil {
			return fmt.Errorf("counting moves into high churn risk: %w", err)
		}
	}
	// champions who left (named with where they went) and who arrived
	for _, c := range []struct {
		cond string
		dst  *[]named
		seg  string
	}{{"t.seg_from = 'champions' AND t.seg_to <> 'champions'", &mv.Champions.Lost, "t.seg_to"},
		{"t.seg_to = 'champions' AND t.seg_from <> 'champions'", &mv.Champions.Gained, "t.seg_from"}} {
		q := pairs + `SELECT ` + name + `, ` + c.seg + `, coalesce(t.monetary, 0) FROM t` + join + ` WHERE ` + c.cond + ` ORDER BY 3 DESC, 1 LIMIT 5`
		nrows, err := m.db.QueryContext(ctx, q, pargs...)
		if err != nil {
			return err
		}
		for nrows.Next() {
			var n named
			if err := nrows.Scan(&n.Name, &n.Segment, &n.Revenue); err != nil {
				nrows.Close()
				return err
			}
			*c.dst = append(*c.dst, n)
		}
		if err := nrows.Err(); err != nil {
			nrows.Close()
			return err
		}
		nrows.Close()
	}
	f.Movement = mv
	return nil
}
