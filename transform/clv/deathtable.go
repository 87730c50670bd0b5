package clv

import (
	"math"
	"sync"
)

// deathTable holds, for one frequency group of the Pareto/NBD likelihood,
// the death integral I (see logDeathIntegral) from every distinct time
// value v_j the group uses to the largest one, v_hi, as suffix sums of the
// integrals over consecutive values: ls[j−lo] = log ∫_{v_j}^{v_hi} and
// q[j−lo] = its gradient w.r.t. (r, α, s, β) (the integrand-weighted mean
// of ∂log f/∂θ). A tuple's integral from t_x to T is then the difference of
// two entries, in logs:
//
//	log I = ls_i + log(1 − e^{ls_k − ls_i}),  ∇log I = (q_i − ρ q_k)/(1 − ρ), ρ = e^{ls_k − ls_i},
//
// so one likelihood evaluation costs one quadrature per distinct time value
// and group instead of one per (x, t_x, T) tuple. The difference loses
// precision as ρ → 1 (the tail beyond T dwarfs the integral); those tuples
// (ρ > 1 − tableMinGap) are integrated on their own.
type deathTable struct {
	lo int
	ls []float64
	q  [][4]float64
}

// tableMinGap bounds the cancellation of the difference: 1 − ρ ≥ 1e-3
// amplifies the tables' relative rounding error (~1e-13) at most 1000-fold.
const tableMinGap = 1e-3

// deathTables returns each group's table, or nil for groups with too few
// tuples per distinct time value to pay for one, built on workers
// goroutines.
func (d *bgData) deathTables(r, alpha, s, beta float64, workers int) []*deathTable {
	tables := make([]*deathTable, len(d.groups))
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() {
			for gi := k; gi < len(d.groups); gi += workers {
				grp := d.groups[gi]
				lo, hi := int32(len(d.vals)), int32(0)
				for _, t := range d.tuples[grp.lo:grp.hi] {
					lo, hi = min(lo, t.iTx), max(hi, t.iT)
				}
				if 2*int(hi-lo) < grp.hi-grp.lo {
					tables[gi] = newDeathTable(d.vals, grp.x, r, alpha, s, beta, int(lo), int(hi))
				}
			}
		})
	}
	wg.Wait()
	return tables
}

// newDeathTable builds the suffix sums over vals[lo..hi].
func newDeathTable(vals []float64, x, r, alpha, s, beta float64, lo, hi int) *deathTable {
	n := hi - lo + 1
	tb := &deathTable{lo: lo, ls: make([]float64, n), q: make([][4]float64, n)}
	tb.ls[n-1] = math.Inf(-1)
	for j := n - 2; j >= 0; j-- {
		lseg, gseg := logDeathIntegral(x, r, alpha, s, beta, vals[lo+j], vals[lo+j+1])
		next := tb.ls[j+1]
		switch {
		case math.IsInf(lseg, -1):
			tb.ls[j], tb.q[j] = next, tb.q[j+1]
			continue
		case math.IsInf(next, -1):
			tb.ls[j], tb.q[j] = lseg, gseg
			continue
		}
		m := math.Max(lseg, next)
		u, v := math.Exp(lseg-m), math.Exp(next-m)
		tb.ls[j] = m + math.Log(u+v)
		u, v = u/(u+v), v/(u+v)
		for i := range tb.q[j] {
			tb.q[j][i] = u*gseg[i] + v*tb.q[j+1][i]
		}
	}
	return tb
}

// integral returns log I and its gradient for the tuple (x, vals[iTx],
// vals[iT]) of the table's group.
func (tb *deathTable) integral(d *bgData, x, r, alpha, s, beta float64, iTx, iT int32) (float64, [4]float64) {
	if iT <= iTx {
		return math.Inf(-1), [4]float64{}
	}
	i, k := int(iTx)-tb.lo, int(iT)-tb.lo
	delta := tb.ls[k] - tb.ls[i]
	gap := -math.Expm1(delta) // 1 − ρ
	if !(gap >= tableMinGap) || math.IsInf(tb.ls[i], -1) {
		return logDeathIntegral(x, r, alpha, s, beta, d.vals[iTx], d.vals[iT])
	}
	rho := 1 - gap
	var g [4]float64
	for j := range g {
		g[j] = (tb.q[i][j] - rho*tb.q[k][j]) / gap
	}
	return tb.ls[i] + math.Log(gap), g
}
