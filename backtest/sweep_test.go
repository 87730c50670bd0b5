package backtest_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
)

// The shared datasets' backtests, as configured by a new user (the README's
// examples): Online Retail as of 2011-09-09 over 90 days, CDNOW master as of
// 1997-09-30 over 39 weeks.
const (
	onlineRetailSources = `sources:
  - name: uci
    kind: files
    entities:
      orders:
        path: %s
        columns: {order_id: InvoiceNo, customer_id: CustomerID, order_ts: InvoiceDate, product_id: StockCode,
                  product_name: Description, quantity: Quantity, unit_price: UnitPrice, business_unit: Country}
`
	cdnowSources = `sources:
  - name: cdnow
    kind: files
    entities:
      orders:
        path: %s
        format: fixed
        skip_lines: 1
        fields: [{name: id, start: 1, width: 15}, {name: cust, start: 1, width: 6}, {name: day, start: 8, width: 8},
                 {name: cds, start: 17, width: 2}, {name: usd, start: 19, width: 8}]
        timestamp_formats: ["20060102"]
        columns: {order_id: id, customer_id: cust, order_ts: day, quantity: cds, amount: usd}
`
)

type sharedBacktest struct {
	name    string
	sources string
	cutoff  string
	horizon int
}

func sharedBacktests(t *testing.T) []sharedBacktest {
	return []sharedBacktest{
		{"online_retail", fmt.Sprintf(onlineRetailSources, need(t, filepath.Join(datasets, "online_retail/online_retail.csv.gz"))), "2011-09-09", 90},
		{"cdnow_master", fmt.Sprintf(cdnowSources, need(t, filepath.Join(datasets, "cdnow/CDNOW_master.txt"))), "1997-09-30", 39 * 7},
	}
}

// churnSignals are the order signals of churn_risk as backtest_scored
// columns, computed as churn_risk computes them: 1 − p_repurchase, the
// lapse rank and the rank of low spend per purchase day (percentiles
// within the unit).
var churnSignals = []string{
	"1 - p_repurchase",
	"cume_dist() OVER (PARTITION BY business_unit ORDER BY (recency_days + 30) / greatest(purchase_days, 1))",
	"1 - cume_dist() OVER (PARTITION BY business_unit ORDER BY net_revenue / greatest(purchase_days, 1)) + 1.0 / count(*) OVER (PARTITION BY business_unit)",
}

// TestChurnWeightSearch is how the default order-signal weights of
// churn_risk (churn_weight_alive, _lapse, _value) were chosen: every split
// of 100 points over the three signals in steps of 5 is scored on both
// shared datasets, and the weights that maximise the smaller margin over
// the better naive baseline win. It fails when the shipped defaults are not
// within 0.002 AUC of the best split on that criterion, so a change to the
// models or the data that moves the optimum shows here.
func TestChurnWeightSearch(t *testing.T) {
	ctx := context.Background()
	type combo struct{ a, l, v int }
	var combos []combo
	for a := 0; a <= 100; a += 5 {
		for l := 0; a+l <= 100; l += 5 {
			combos = append(combos, combo{a, l, 100 - a - l})
		}
	}
	margin := make([]float64, len(combos))
	for i := range margin {
		margin[i] = 1
	}
	aucs := make([][]float64, len(combos))
	for _, d := range sharedBacktests(t) {
		s, _ := shared(t, d.name)
		res, err := s.Result(ctx)
		if err != nil {
			t.Fatal(err)
		}
		best := max(res.Baselines[0].AUC, res.Baselines[1].AUC)
		for i, c := range combos {
			// the score as churn_risk rounds it
			k, err := s.Rank(ctx, "w", fmt.Sprintf("round(%d * (%s) + %d * (%s) + %d * (%s))",
				c.a, churnSignals[0], c.l, churnSignals[1], c.v, churnSignals[2]))
			if err != nil {
				t.Fatal(err)
			}
			aucs[i] = append(aucs[i], k.AUC)
			margin[i] = min(margin[i], k.AUC-best)
		}
		t.Logf("%s: churn_score AUC %.4f, baselines %.4f / %.4f; model %s", d.name, res.Churn.AUC, res.Baselines[0].AUC, res.Baselines[1].AUC, res.Model)
	}
	order := make([]int, len(combos))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return margin[order[i]] > margin[order[j]] })
	for _, i := range order[:8] {
		t.Logf("alive %3d lapse %3d value %3d: AUC %.4f / %.4f, smallest margin over the better baseline %+.4f",
			combos[i].a, combos[i].l, combos[i].v, aucs[i][0], aucs[i][1], margin[i])
	}
	shipped := combo{churnWeightAlive, churnWeightLapse, churnWeightValue}
	for i, c := range combos {
		if c == shipped {
			t.Logf("shipped %+v: AUC %.4f / %.4f, margin %+.4f", c, aucs[i][0], aucs[i][1], margin[i])
			if margin[i] < margin[order[0]]-0.002 {
				t.Errorf("the default weights %+v are %.4f below the best split %+v", c, margin[order[0]]-margin[i], combos[order[0]])
			}
			return
		}
	}
	t.Errorf("the default weights %+v are not on the search grid", shipped)
}

// The defaults of sql/marts/churn_risk.sql.
const churnWeightAlive, churnWeightLapse, churnWeightValue = 35, 55, 10
