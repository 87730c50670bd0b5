package backtest_test

import (
	"context"
	"math"
	"testing"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/optimize"
)

// TestCDNOWRepeatGap says why the purchase models miss CDNOW master's
// 39-week repeat total (issue 24 asks for ±10 %; BG/NBD gives −14 %), with
// the numbers in sql/README.md:
//   - by quarter: the cohort's purchase days in the last calibration quarter
//     (Jul–Sep 1997) and in the three holdout quarters beside what BG/NBD
//     and Pareto/NBD predict for them. Both models can only let a cohort's
//     rate fall; Oct–Dec 1997 (Christmas) rose instead, and the holdout's
//     later quarters fall at the predicted pace from that higher level;
//   - MBG/NBD (Batislam et al. 2007: BG/NBD where a customer may also drop
//     out right after the first purchase), fitted here by Nelder-Mead: it
//     fits the calibration period best of the three but predicts fewer
//     repeat purchases, so choosing it by likelihood would widen the gap.
func TestCDNOWRepeatGap(t *testing.T) {
	s, d := shared(t, "cdnow_master")
	ctx := context.Background()
	rows, err := s.Conn().QueryContext(ctx, `
	WITH days AS (
	    SELECT DISTINCT i.customer_key, o.order_date
	    FROM stg_orders o JOIN customer_identity i ON i.member_kind = 'customer_id' AND i.member_id = o.customer_id
	    WHERE NOT o.is_return),
	quarters AS (
	    SELECT floor((order_date - DATE '1997-09-30' - 1) / 91)::INTEGER AS q, count(*)::DOUBLE AS pd
	    FROM days JOIN backtest_scored b ON b.customer_id = days.customer_key
	    WHERE order_date > DATE '1997-09-30' - 91 GROUP BY 1)
	SELECT q, pd,
	       coalesce(sum(bgnbd_expected_purchases(r, alpha, a, b, 91 * (q + 1), frequency, recency, t)
	           - bgnbd_expected_purchases(r, alpha, a, b, 91 * q, frequency, recency, t)) FILTER (WHERE q >= 0), 0),
	       coalesce(sum(pnbd_expected_purchases(pnbd_r, pnbd_alpha, pnbd_s, pnbd_beta, 91 * (q + 1), frequency, recency, t)
	           - pnbd_expected_purchases(pnbd_r, pnbd_alpha, pnbd_s, pnbd_beta, 91 * q, frequency, recency, t)) FILTER (WHERE q >= 0), 0)
	FROM quarters, backtest_scored GROUP BY q, pd ORDER BY q`)
	if err != nil {
		t.Fatal(err)
	}
	actual := map[int]float64{}
	predicted := map[int]float64{}
	for rows.Next() {
		var q int
		var pd, bg, pn float64
		if err := rows.Scan(&q, &pd, &bg, &pn); err != nil {
			rows.Close()
			t.Fatal(err)
		}
		actual[q], predicted[q] = pd, bg
		t.Logf("quarter %+d after the cutoff: %.0f purchase days; predicted BG/NBD %.0f, Pareto/NBD %.0f", q, pd, bg, pn)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if !(actual[0] > actual[-1] && predicted[0] < actual[-1]) {
		t.Errorf("the first holdout quarter has %.0f purchase days after %.0f (predicted %.0f): the seasonal rise this test explains is gone",
			actual[0], actual[-1], predicted[0])
	}

	var data []mbgCustomer
	var bgTotal, bought, bgLL float64
	var start [4]float64
	rows, err = s.Conn().QueryContext(ctx, `SELECT frequency, recency, t, actual_purchases, predicted_purchases, r, alpha, a, b, bg_loglik
		FROM backtest_scored, (SELECT bg_loglik FROM clv_params)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c mbgCustomer
		var pred, act float64
		if err := rows.Scan(&c.x, &c.tx, &c.T, &act, &pred, &start[0], &start[1], &start[2], &start[3], &bgLL); err != nil {
			rows.Close()
			t.Fatal(err)
		}
		data = append(data, c)
		bgTotal += pred
		bought += act
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	x0 := []float64{math.Log(start[0]), math.Log(start[1]), math.Log(start[2]), math.Log(start[3])}
	res, err := optimize.Minimize(optimize.Problem{Func: func(p []float64) float64 { return -mbgLogLik(p, data) }}, x0,
		&optimize.Settings{MajorIterations: 5000, FuncEvaluations: 20000}, &optimize.NelderMead{})
	if err != nil && res == nil {
		t.Fatal(err)
	}
	p := [4]float64{math.Exp(res.X[0]), math.Exp(res.X[1]), math.Exp(res.X[2]), math.Exp(res.X[3])}
	var total float64
	for _, c := range data {
		total += mbgExpected(p, float64(d.horizon), c)
	}
	t.Logf("MBG/NBD r %.4f α %.4f a %.4f b %.4f, log-likelihood %.1f (BG/NBD %.1f): %.0f repeat purchase days predicted, %.0f bought (%+.1f %%; BG/NBD %.0f, %+.1f %%)",
		p[0], p[1], p[2], p[3], -res.F, bgLL, total, bought, 100*(total/bought-1), bgTotal, 100*(bgTotal/bought-1))
	if !(-res.F > bgLL && total < bgTotal) {
		t.Errorf("MBG/NBD log-likelihood %.1f vs BG/NBD %.1f, total %.0f vs %.0f: no longer the better fit that predicts less", -res.F, bgLL, total, bgTotal)
	}
}

type mbgCustomer struct{ x, tx, T float64 }

// mbgLogLik is the MBG/NBD log-likelihood at log-parameters p (as in
// lifetimes' ModifiedBetaGeoFitter).
func mbgLogLik(p []float64, data []mbgCustomer) float64 {
	r, alpha, a, b := math.Exp(p[0]), math.Exp(p[1]), math.Exp(p[2]), math.Exp(p[3])
	lg := func(v float64) float64 { l, _ := math.Lgamma(v); return l }
	var ll float64
	for _, c := range data {
		x := c.x
		a4 := math.Log(a) - math.Log(b+x) + (r+x)*(math.Log(alpha+c.T)-math.Log(alpha+c.tx))
		ll += lg(r+x) - lg(r) + r*math.Log(alpha) + lg(a+b) + lg(b+x+1) - lg(b) - lg(a+b+x+1) -
			(r+x)*math.Log(alpha+c.T) + math.Max(a4, 0) + math.Log1p(math.Exp(-math.Abs(a4)))
	}
	return ll
}

// mbgExpected is MBG/NBD's E[Y(t) | x, t_x, T].
func mbgExpected(p [4]float64, t float64, c mbgCustomer) float64 {
	r, alpha, a, b := p[0], p[1], p[2], p[3]
	x := c.x
	hyp := mathext.Hypergeo(r+x, b+x+1, a+b+x, t/(alpha+c.T+t))
	return (a + b + x) / (a - 1) * (1 - hyp*math.Pow((alpha+c.T)/(alpha+t+c.T), r+x)) /
		(1 + a/(b+x)*math.Pow((alpha+c.T)/(alpha+c.tx), r+x))
}
