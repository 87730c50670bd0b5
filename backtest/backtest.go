// Package backtest measures the customer scores against what happened next:
// it builds the marts as of a cutoff from the raw layer into a scratch
// warehouse (nothing is published, the warehouse is not touched) and
// compares churn_risk and customer_value with the orders placed in the
// horizon after the cutoff.
package backtest

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cdwhq/cdw/pipelines"
)

//go:embed scored.sql
var scoredSQL string

// Options shape one backtest.
type Options struct {
	Cutoff  time.Time // the marts are built as of this day (var as_of)
	Horizon int       // days after the cutoff the outcome is measured over
	// Vars override the configured vars for the scratch build (e.g. to
	// try other churn weights); as_of is always the cutoff.
	Vars map[string]string
	Log  *slog.Logger
}

// ParseHorizon reads a horizon such as 90d or 39w as days.
func ParseHorizon(s string) (int, error) {
	s = strings.TrimSpace(s)
	unit := 1
	switch {
	case strings.HasSuffix(s, "d"):
		s = strings.TrimSuffix(s, "d")
	case strings.HasSuffix(s, "w"):
		s, unit = strings.TrimSuffix(s, "w"), 7
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("horizon %q: give a positive number of days or weeks, e.g. 90d or 39w", s)
	}
	return n * unit, nil
}

// Result is what a backtest measured. Churn means no purchase day in the
// horizon; a score is better the higher it ranks those who churned.
type Result struct {
	Cutoff      string    `json:"cutoff"`
	Horizon     int       `json:"horizon_days"`
	LastOrder   string    `json:"last_order"`
	Customers   int64     `json:"customers"`
	Churned     int64     `json:"churned"`
	BaseRate    float64   `json:"base_churn_rate"`
	Model       string    `json:"model"`
	ModelReason string    `json:"model_reason"`
	Churn       Ranking   `json:"churn_score"`
	Baselines   []Ranking `json:"baselines"`
	Early       Flag      `json:"early_warning"`
	Bands       []Band    `json:"bands"`
	PAlive      []Decile  `json:"p_alive_deciles"`
	Purchases   []Decile  `json:"purchases_deciles"`
	CLV         []Decile  `json:"spend_deciles"`
	// RepurchasePred is Σ p_repurchase, the customers churn_risk expects to
	// buy again in the horizon; Customers − Churned did.
	RepurchasePred float64 `json:"predicted_repurchasers"`
	TotalPred      float64 `json:"predicted_purchases"`
	TotalActual    float64 `json:"actual_purchases"`
	SpendPred      float64 `json:"predicted_spend"`
	SpendActual    float64 `json:"actual_spend"`
}

// Ranking is how well one score ranks the customers who churned.
type Ranking struct {
	Name string `json:"name"`
	// AUC is the probability that a churned customer scores above one who
	// bought again (ties count half); 0.5 is chance.
	AUC float64 `json:"auc"`
	// TopDecilePrecision is the churn rate among the 10 % highest scores;
	// TopDecileLift divides it by the base rate.
	TopDecilePrecision float64 `json:"top_decile_precision"`
	TopDecileLift      float64 `json:"top_decile_lift"`
}

// Flag measures the early_warning list against its population, the
// high-value customers it is drawn from.
type Flag struct {
	Flagged   int64   `json:"flagged"`
	Precision float64 `json:"precision"` // churn rate among the flagged
	// HighValue customers and their churn rate: the base the list must beat.
	HighValue     int64   `json:"high_value"`
	HighValueRate float64 `json:"high_value_churn_rate"`
	Lift          float64 `json:"lift"` // Precision / HighValueRate
}

// Band is the churn rate of one churn_band: higher bands must churn more.
type Band struct {
	Band      string  `json:"band"`
	Customers int64   `json:"customers"`
	ChurnRate float64 `json:"churn_rate"`
}

// Decile compares a prediction with the outcome among the customers in one
// tenth of the predicted values (1 = highest).
type Decile struct {
	Decile    int     `json:"decile"`
	Customers int64   `json:"customers"`
	Predicted float64 `json:"predicted"` // mean prediction
	Actual    float64 `json:"actual"`    // mean outcome
}

// Run builds the marts as of opts.Cutoff in a scratch warehouse under the
// warehouse's tmp directory, scores them against the horizon and removes
// the scratch files.
func Run(ctx context.Context, r *pipelines.Runner, opts Options) (*Result, error) {
	s, err := Prepare(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Result(ctx)
}

// Scratch is a backtest's scratch warehouse with the scores joined to the
// outcomes (table backtest_scored), for measuring more than Result does,
// e.g. other churn weights (see Rank). Close removes it.
type Scratch struct {
	db      *sql.DB
	conn    *sql.Conn
	dir     string
	cutoff  string
	horizon int
	res     *Result
}

// Prepare builds the marts as of opts.Cutoff like Run and joins them to
// the horizon's outcomes, keeping the scratch warehouse open.
func Prepare(ctx context.Context, r *pipelines.Runner, opts Options) (*Scratch, error) {
	if opts.Horizon <= 0 {
		return nil, fmt.Errorf("backtest: horizon must be positive, got %d days", opts.Horizon)
	}
	parent := filepath.Join(r.Cfg.Warehouse, "tmp")
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("creating backtest scratch directory: %w", err)
	}
	dir, err := os.MkdirTemp(parent, "backtest-")
	if err != nil {
		return nil, fmt.Errorf("creating backtest scratch directory: %w", err)
	}
	s := &Scratch{dir: dir, cutoff: opts.Cutoff.Format(time.DateOnly), horizon: opts.Horizon}
	vars := map[string]string{}
	for k, v := range opts.Vars {
		vars[k] = v
	}
	vars["as_of"] = s.cutoff
	// churn_risk predicts churn over the horizon it is measured on
	vars["churn_horizon_days"] = strconv.Itoa(opts.Horizon)
	s.db, err = r.ScratchBuild(ctx, filepath.Join(dir, "warehouse.duckdb"), vars, "+churn_risk +customer_value", opts.Log)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("backtest as of %s: %w", s.cutoff, err)
	}
	if s.conn, err = s.db.Conn(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("backtest: opening scratch warehouse: %w", err)
	}
	if s.res, err = prepare(ctx, s.conn, s.cutoff, s.horizon); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Conn is the scratch warehouse's connection (backtest_scored and the
// marts as of the cutoff), for checks beyond Result and Rank.
func (s *Scratch) Conn() *sql.Conn { return s.conn }

// Close removes the scratch warehouse.
func (s *Scratch) Close() error {
	if s.conn != nil {
		s.conn.Close()
	}
	var err error
	if s.db != nil {
		err = s.db.Close()
	}
	os.RemoveAll(s.dir)
	return err
}

// Result measures the marts (the figures Run returns).
func (s *Scratch) Result(ctx context.Context) (*Result, error) {
	return score(ctx, s.conn, s.res)
}

// Rank measures how well expr, any SQL expression over the columns of
// backtest_scored (higher = more likely to churn), ranks the customers who
// churned.
func (s *Scratch) Rank(ctx context.Context, name, expr string) (Ranking, error) {
	return rank(ctx, s.conn, name, expr, s.res.BaseRate)
}

// prepare joins the scores to the outcomes (backtest_scored) and counts
// the customers.
func prepare(ctx context.Context, conn *sql.Conn, cutoff string, horizon int) (*Result, error) {
	res := &Result{Cutoff: cutoff, Horizon: horizon}
	var last sql.NullTime
	if err := conn.QueryRowContext(ctx, `SELECT max(order_date) FROM stg_orders`).Scan(&last); err != nil {
		return nil, fmt.Errorf("backtest: reading the last order date: %w", err)
	}
	if !last.Valid {
		return nil, fmt.Errorf("backtest: the raw layer has no orders")
	}
	res.LastOrder = last.Time.Format(time.DateOnly)
	cut, _ := time.Parse(time.DateOnly, cutoff)
	if end := cut.AddDate(0, 0, horizon); end.After(last.Time) {
		return nil, fmt.Errorf("backtest: the horizon ends %s, after the last order (%s): customers would churn for want of data; choose a cutoff on or before %s",
			end.Format(time.DateOnly), res.LastOrder, last.Time.AddDate(0, 0, -horizon).Format(time.DateOnly))
	}
	if _, err := conn.ExecContext(ctx, scoredSQL, cutoff, horizon); err != nil {
		return nil, fmt.Errorf("backtest: joining scores and outcomes: %w", err)
	}
	if err := conn.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE churned), coalesce(any_value(m.model), ''), coalesce(any_value(m.reason), '')
		FROM backtest_scored, (SELECT model, model_reason AS reason FROM clv_params) m`).Scan(&res.Customers, &res.Churned, &res.Model, &res.ModelReason); err != nil {
		return nil, fmt.Errorf("backtest: counting customers: %w", err)
	}
	if res.Customers == 0 {
		return nil, fmt.Errorf("backtest: no customer has an order on or before the cutoff %s", cutoff)
	}
	if res.Churned == 0 || res.Churned == res.Customers {
		return nil, fmt.Errorf("backtest: %d of %d customers churned in the horizon: a score cannot be measured without both outcomes", res.Churned, res.Customers)
	}
	res.BaseRate = float64(res.Churned) / float64(res.Customers)
	return res, nil
}

// score measures the marts joined by prepare.
func score(ctx context.Context, conn *sql.Conn, prepared *Result) (*Result, error) {
	r := *prepared
	res := &r
	var err error
	if res.Churn, err = rank(ctx, conn, "churn_score", "churn_score", res.BaseRate); err != nil {
		return nil, err
	}
	for _, b := range Baselines {
		rk, err := rank(ctx, conn, b.Name, b.Expr, res.BaseRate)
		if err != nil {
			return nil, err
		}
		res.Baselines = append(res.Baselines, rk)
	}
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE early_warning),
			coalesce(avg(churned::INTEGER) FILTER (WHERE early_warning), 0),
			count(*) FILTER (WHERE high_value),
			coalesce(avg(churned::INTEGER) FILTER (WHERE high_value), 0)
		FROM backtest_scored`).Scan(&res.Early.Flagged, &res.Early.Precision, &res.Early.HighValue, &res.Early.HighValueRate); err != nil {
		return nil, fmt.Errorf("backtest: measuring early_warning: %w", err)
	}
	if res.Early.HighValueRate > 0 {
		res.Early.Lift = res.Early.Precision / res.Early.HighValueRate
	}
	if res.Bands, err = bands(ctx, conn); err != nil {
		return nil, err
	}
	if res.PAlive, err = deciles(ctx, conn, "p_alive", "(actual_purchases > 0)::INTEGER"); err != nil {
		return nil, err
	}
	if res.Purchases, err = deciles(ctx, conn, "predicted_purchases", "actual_purchases"); err != nil {
		return nil, err
	}
	if res.CLV, err = deciles(ctx, conn, "predicted_purchases * predicted_avg_spend", "actual_spend"); err != nil {
		return nil, err
	}
	if err := conn.QueryRowContext(ctx, `SELECT sum(predicted_purchases), sum(actual_purchases),
			sum(predicted_purchases * predicted_avg_spend), sum(actual_spend), coalesce(sum(p_repurchase), 0) FROM backtest_scored`).
		Scan(&res.TotalPred, &res.TotalActual, &res.SpendPred, &res.SpendActual, &res.RepurchasePred); err != nil {
		return nil, fmt.Errorf("backtest: totalling predictions: %w", err)
	}
	return res, nil
}

// Baseline is a naive churn score every backtest reports beside churn_score:
// a score that does not beat them adds nothing to what a data team knows.
type Baseline struct{ Name, Expr string }

// Baselines: days since the last purchase, and the purchase rate
// purchase days ÷ (recency + 30 days), negated so that higher means churn.
var Baselines = []Baseline{
	{"recency", "recency_days"},
	{"purchase_days_per_recency", "-purchase_days / (recency_days + 30)"},
}

// rank measures how well expr (higher = more likely to churn) ranks churn:
// AUC by the Mann-Whitney rank sum with tied scores sharing their mean
// rank, and the churn rate among the top tenth.
func rank(ctx context.Context, conn *sql.Conn, name, expr string, base float64) (Ranking, error) {
	out := Ranking{Name: name}
	q := fmt.Sprintf(`WITH s AS (SELECT customer_id, churned, (%s)::DOUBLE AS s FROM backtest_scored),
		r AS (SELECT churned, s, customer_id,
		             rank() OVER (ORDER BY s) + (count(*) OVER (PARTITION BY s) - 1) / 2.0 AS rk,
		             row_number() OVER (ORDER BY s DESC, customer_id) AS k,
		             count(*) OVER () AS n
		      FROM s)
		SELECT (sum(rk) FILTER (WHERE churned) - n1 * (n1 + 1) / 2.0) / (n1 * (n - n1)),
		       avg(churned::INTEGER) FILTER (WHERE k <= ceil(n / 10.0))
		FROM r, (SELECT count(*) FILTER (WHERE churned)::DOUBLE AS n1 FROM s)
		GROUP BY n1, n`, expr)
	if err := conn.QueryRowContext(ctx, q).Scan(&out.AUC, &out.TopDecilePrecision); err != nil {
		return out, fmt.Errorf("backtest: ranking %s: %w", name, err)
	}
	out.TopDecileLift = out.TopDecilePrecision / base
	return out, nil
}

// deciles splits the customers into tenths by pred (highest first) and
// compares the mean prediction with the mean of actual in each.
func deciles(ctx context.Context, conn *sql.Conn, pred, actual string) ([]Decile, error) {
	q := fmt.Sprintf(`SELECT d, count(*), avg(p), avg(a) FROM (
		SELECT ntile(10) OVER (ORDER BY (%s) DESC, customer_id) AS d, (%[1]s)::DOUBLE AS p, (%s)::DOUBLE AS a
		FROM backtest_scored) GROUP BY d ORDER BY d`, pred, actual)
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("backtest: deciles of %s: %w", pred, err)
	}
	defer rows.Close()
	var out []Decile
	for rows.Next() {
		var d Decile
		var p, a sql.NullFloat64
		if err := rows.Scan(&d.Decile, &d.Customers, &p, &a); err != nil {
			return nil, fmt.Errorf("backtest: deciles of %s: %w", pred, err)
		}
		d.Predicted, d.Actual = p.Float64, a.Float64
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("backtest: deciles of %s: %w", pred, err)
	}
	return out, nil
}

// bands returns the churn rate per churn_band, lowest band first.
func bands(ctx context.Context, conn *sql.Conn) ([]Band, error) {
	rows, err := conn.QueryContext(ctx, `SELECT churn_band, count(*), avg(churned::INTEGER) FROM backtest_scored
		GROUP BY churn_band ORDER BY list_position(['low', 'medium', 'high', 'critical'], churn_band)`)
	if err != nil {
		return nil, fmt.Errorf("backtest: churn rate by band: %w", err)
	}
	defer rows.Close()
	var out []Band
	for rows.Next() {
		var b Band
		if err := rows.Scan(&b.Band, &b.Customers, &b.ChurnRate); err != nil {
			return nil, fmt.Errorf("backtest: churn rate by band: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
