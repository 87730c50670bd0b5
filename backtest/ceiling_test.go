package backtest_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/cdwhq/cdw/backtest"
	"gonum.org/v1/gonum/optimize"
)

// TestChurnCeiling measures what the order history allows: a logistic
// regression of the outcome (churned in the horizon) on seven features of
// each customer's history, fitted to the outcome itself, in sample — an
// optimistic ceiling for any score built from these signals. The features:
// log recency, log purchase days, log tenure, log purchase days in the last
// horizon-length window, log net revenue, 1 − p_repurchase and the log lapse
// ratio (recency + 30) / purchase days. churn_score must come within 0.005
// of it. Line detail (products, units, lines per order) and squares lift the
// ceiling a little where the data have them (logged): the targets (Online Retail 0.75, CDNOW 0.79, +0.02 over
// the better baseline) are above the ceiling on both datasets.
func TestChurnCeiling(t *testing.T) {
	ctx := context.Background()
	for _, d := range sharedBacktests(t) {
		s, _ := shared(t, d.name)
		res, err := s.Result(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ceiling, w := logisticCeiling(t, s, d, 7)
		wide, _ := logisticCeiling(t, s, d, 17)
		t.Logf("%s: logistic ceiling AUC %.4f (weights on standardised features %.3f), %.4f with line detail and squares; churn_score %.4f; baselines %.4f / %.4f",
			d.name, ceiling, w, wide, res.Churn.AUC, res.Baselines[0].AUC, res.Baselines[1].AUC)
		if res.Churn.AUC < ceiling-0.005 {
			t.Errorf("%s: churn_score AUC %.4f, more than 0.005 below what a fitted logistic regression reaches (%.4f)", d.name, res.Churn.AUC, ceiling)
		}
	}
}

// logisticCeiling fits the in-sample logistic regression on the first
// features of the list below and returns its AUC and weights. Beyond the
// seven of TestChurnCeiling: log lines per order, log distinct products,
// log units bought, log recency × log purchase days, their squares, log
// first-to-last-purchase days, log purchase days in the last 30 days, log
// reversal orders, log mean repeat spend.
func logisticCeiling(t *testing.T, s *backtest.Scratch, d sharedBacktest, features int) (float64, []float64) {
	t.Helper()
	q := fmt.Sprintf(`WITH recent AS (
		    SELECT customer_key, count(DISTINCT order_date) FILTER (WHERE is_purchase AND order_date > DATE '%[2]s' - %[1]d) AS pd_h,
		           count(DISTINCT order_date) FILTER (WHERE is_purchase AND order_date > DATE '%[2]s' - 30) AS pd_30,
		           avg(lines) AS lines, count(*) FILTER (WHERE NOT is_purchase) AS reversals
		    FROM customer_orders GROUP BY customer_key),
		items AS (
		    SELECT i.customer_key, count(DISTINCT o.product_id) AS products, sum(o.quantity) FILTER (WHERE NOT o.is_return) AS units
		    FROM stg_orders o JOIN customer_identity i ON i.member_kind = 'customer_id' AND i.member_id = o.customer_id
		    WHERE o.order_date <= DATE '%[2]s' GROUP BY 1)
		SELECT churned, ln(recency_days + 1), ln(greatest(purchase_days, 1)), ln(b.t + 1), ln(coalesce(pd_h, 0) + 1),
		       ln(greatest(net_revenue, 0) + 1), 1 - p_repurchase, ln((recency_days + 30) / greatest(purchase_days, 1)),
		       ln(coalesce(lines, 1)), ln(coalesce(products, 0) + 1), ln(greatest(coalesce(units, 0), 0) + 1),
		       ln(recency_days + 1) * ln(greatest(purchase_days, 1)), ln(recency_days + 1)^2, ln(greatest(purchase_days, 1))^2,
		       ln(b.recency + 1), ln(coalesce(pd_30, 0) + 1), ln(coalesce(reversals, 0) + 1), ln(greatest(coalesce(monetary, 0), 0) + 1)
		FROM backtest_scored b LEFT JOIN recent ON recent.customer_key = b.customer_id
		LEFT JOIN items ON items.customer_key = b.customer_id`, d.horizon, d.cutoff)
	rows, err := s.Conn().QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var X [][]float64
	var y []float64
	for rows.Next() {
		var c bool
		f := make([]float64, 18)
		f[0] = 1
		dest := []any{&c}
		for i := 1; i < len(f); i++ {
			dest = append(dest, &f[i])
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		X = append(X, f[:features+1])
		y = append(y, map[bool]float64{true: 1}[c])
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	standardise(X)
	w := fitLogit(t, X, y)
	score := make([]float64, len(X))
	for i, x := range X {
		score[i] = dot(w, x)
	}
	return aucOf(score, y), w
}

// standardise scales every feature but the intercept (column 0) to mean 0,
// standard deviation 1.
func standardise(X [][]float64) {
	for j := 1; j < len(X[0]); j++ {
		var m, v float64
		for _, x := range X {
			m += x[j]
		}
		m /= float64(len(X))
		for _, x := range X {
			v += (x[j] - m) * (x[j] - m)
		}
		sd := math.Sqrt(v / float64(len(X)))
		if sd == 0 {
			sd = 1
		}
		for _, x := range X {
			x[j] = (x[j] - m) / sd
		}
	}
}

// fitLogit fits logistic regression weights by maximum likelihood (BFGS).
func fitLogit(t *testing.T, X [][]float64, y []float64) []float64 {
	n := float64(len(X))
	p := optimize.Problem{
		Func: func(w []float64) float64 {
			var ll float64
			for i, x := range X {
				z := dot(w, x)
				// −log σ(z) for y = 1, −log(1 − σ(z)) for y = 0
				ll += softplus(z) - y[i]*z
			}
			return ll / n
		},
		Grad: func(g, w []float64) {
			clear(g)
			for i, x := range X {
				e := 1/(1+math.Exp(-dot(w, x))) - y[i]
				for j := range x {
					g[j] += e * x[j] / n
				}
			}
		},
	}
	res, err := optimize.Minimize(p, make([]float64, len(X[0])), &optimize.Settings{GradientThreshold: 1e-8}, &optimize.BFGS{})
	if err != nil && res == nil {
		t.Fatal(err)
	}
	return res.X
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func softplus(z float64) float64 {
	if z > 0 {
		return z + math.Log1p(math.Exp(-z))
	}
	return math.Log1p(math.Exp(z))
}

// aucOf is the Mann-Whitney AUC of score for the positives y = 1, ties
// counting half.
func aucOf(score, y []float64) float64 {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return score[idx[a]] < score[idx[b]] })
	var rankSum, n1 float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && score[idx[j]] == score[idx[i]] {
			j++
		}
		mid := float64(i+j+1) / 2
		for k := i; k < j; k++ {
			if y[idx[k]] == 1 {
				rankSum += mid
				n1++
			}
		}
		i = j
	}
	return (rankSum - n1*(n1+1)/2) / (n1 * (float64(len(y)) - n1))
}
