package clv

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/mathext"
)

// ParetoNBD is a fitted Pareto/NBD model (Schmittlein, Morrison & Colombo
// 1987; likelihood and expressions as in Fader, Hardie & Lee 2005, "A Note
// on Deriving the Pareto/NBD Model and Related Expressions"): while alive a
// customer buys at Poisson rate λ ~ Gamma(r, α) and dies at an
// exponentially distributed time with rate μ ~ Gamma(s, β). Unlike
// BG/NBD, a customer can die before a repeat purchase, so a one-time buyer
// silent for long is not alive with certainty. α and β are in the caller's
// time unit.
type ParetoNBD struct {
	R, Alpha float64
	// S and Beta are the shape and rate of the Gamma distribution of
	// dropout rates μ. S = 0 means "nobody dies" (the NBD limit the
	// fallback uses).
	S, Beta float64

	// LogLik is the maximised log-likelihood; 0 when Fallback is set.
	LogLik float64
	// Customers, Repeaters and Tuples as in BGNBD.
	Customers, Repeaters, Tuples int
	Iterations, FuncEvals        int
	Converged                    bool
	// Boundary is true when the MLE lies on a parameter boundary
	// (|log θ| > 20: the data do not identify the model and the fallback
	// is used) or when the likelihood-ratio test against the no-dropout
	// limit s → 0 cannot reject it (the fit is kept); BoundaryReason and
	// NoDropoutLogLik as in BGNBD.
	Boundary        bool
	BoundaryReason  string
	NoDropoutLogLik float64
	// Fallback is empty for an MLE, else what was used and why.
	Fallback string
}

func (m ParetoNBD) validParams() bool {
	return finite(m.R) && finite(m.Alpha) && finite(m.S) && finite(m.Beta) &&
		m.R >= 0 && m.Alpha > 0 && m.S >= 0 && m.Beta > 0 &&
		m.R <= 1e12 && m.Alpha <= 1e15 && m.S <= 1e12 && m.Beta <= 1e15
}

// glN Gauss-Legendre nodes per panel: panels are at most 1 wide in w and the
// integrand is analytic 2π wide around them, so 8 nodes reach ~1e-12.
const glN = 8

// glX holds the glN-point Gauss-Legendre nodes on [−1, 1],
// glLW holds the logs of the weights.
var glX, glLW = func() ([]float64, []float64) {
	x, w := make([]float64, glN), make([]float64, glN)
	quad.Legendre{}.FixedLocations(x, w, -1, 1)
	for i := range w {
		w[i] = math.Log(w[i])
	}
	return x, w
}()

// logDeathIntegral returns log I and ∂log I/∂(r, α, s, β) for
//
//	I = ∫_{t_x}^{T} (α+τ)^{−(r+x)} (β+τ)^{−(s+1)} dτ,
//
// the probability-weighted "died at τ between the last purchase and T"
// part of the Pareto/NBD likelihood: L = Γ(r+x)α^rβ^s/Γ(r) ·
// [(α+T)^{−(r+x)}(β+T)^{−s} + s·I]. The closed form uses a difference of
// two ₂F₁ terms (FHL 2005, eq. 21) that cancels catastrophically when t_x is
// close to T and converges slowly when α and β are far apart; the integral
// of a positive integrand has neither problem. With m = min(α, β) and
// w = log((m+τ)/(m+t_x)) the integrand is analytic in the strip |Im w| < π,
// so Gauss-Legendre panels of width ≤ 1 (narrower where it decays fast)
// converge to machine precision. Summation is in logs, so nothing
// underflows for heavy buyers. The derivatives are those of the integral
// (differentiation under the integral sign), evaluated on the same nodes.
// I = 0 (t_x = T) gives log I = −Inf.
func logDeathIntegral(x, r, alpha, s, beta, tx, T float64) (float64, [4]float64) {
	var grad [4]float64
	if T <= tx {
		return math.Inf(-1), grad
	}
	ea, eb := r+x, s+1 // exponents of (α+τ) and (β+τ)
	m, em, M, eM := alpha, ea, beta, eb
	if beta < alpha {
		m, em, M, eM = beta, eb, alpha, ea
	}
	d := M - m
	a0 := m + tx
	la0 := math.Log(a0)
	W := math.Log1p((T - tx) / a0)
	// g(w) = log of the integrand in w (with dτ = a0·e^w dw); slope g'.
	g := func(w float64) float64 {
		return (1-em)*(la0+w) - eM*math.Log(d+a0*math.Exp(w))
	}
	slope := func(w float64) float64 {
		e := a0 * math.Exp(w)
		return 1 - em - eM*e/(d+e)
	}
	lmax := math.Inf(-1)
	var sum float64
	var gs [4]float64
	add := func(lv float64, dv [4]float64) {
		if lv > lmax {
			sc := math.Exp(lmax - lv) // 0 on the first node
			sum *= sc
			for i := range gs {
				gs[i] *= sc
			}
			lmax = lv
		}
		e := math.Exp(lv - lmax)
		sum += e
		for i := range gs {
			gs[i] += e * dv[i]
		}
	}
	w0 := 0.0
	for panel := 0; w0 < W && panel < 400; panel++ {
		// The slope is monotone (g is concave), so its extremes on
		// [w0, w0+1] are at the ends.
		sl := math.Max(math.Abs(slope(w0)), math.Abs(slope(w0+1)))
		h := math.Min(1, W-w0)
		if sl > 8 {
			h = math.Min(h, 8/sl)
		}
		// Past the peak, stop once what remains (≤ e^{g}/|g'|) is
		// negligible against what was summed.
		if s0 := slope(w0); s0 < 0 && lmax > math.Inf(-1) {
			if g(w0)-math.Log(-s0) < lmax+math.Log(sum)-40 {
				break
			}
		}
		half := h / 2
		lhalf := math.Log(half)
		for i, u := range glX {
			w := w0 + half*(u+1)
			ew := a0 * math.Exp(w)  // m + τ
			lmt := la0 + w          // log(m + τ)
			lMt := math.Log(d + ew) // log(M + τ)
			lv := glLW[i] + lhalf + (1-em)*lmt - eM*lMt
			if beta < alpha {
				add(lv, [4]float64{-lMt, -ea / (d + ew), -lmt, -eb / ew})
			} else {
				add(lv, [4]float64{-lmt, -ea / ew, -lMt, -eb / (d + ew)})
			}
		}
		w0 += h
	}
	if !(sum > 0) {
		return math.Inf(-1), grad
	}
	for i := range grad {
		grad[i] = gs[i] / sum
	}
	return lmax + math.Log(sum), grad
}

// pnbdLogBracket returns log[(α+T)^{−(r+x)}(β+T)^{−s} + s·I], the share of
// it that is "alive at T" (P(alive)), and its gradient w.r.t. (r, α, s, β).
func pnbdLogBracket(x, r, alpha, s, beta, tx, T float64, wantGrad bool) (lb, alive float64, grad [4]float64) {
	a1 := -(r+x)*math.Log(alpha+T) - s*math.Log(beta+T)
	if s == 0 {
		return a1, 1, [4]float64{-math.Log(alpha + T), -(r + x) / (alpha + T), -math.Log(beta + T), 0}
	}
	li, gi := logDeathIntegral(x, r, alpha, s, beta, tx, T)
	return pnbdBracketFrom(x, r, s, math.Log(s), atTime(alpha, beta, T), li, gi, wantGrad)
}

// atT holds log(α+T), log(β+T), 1/(α+T) and 1/(β+T): the likelihood
// computes them once per distinct time value.
type atT struct{ la, lb, ia, ib float64 }

func atTime(alpha, beta, T float64) atT {
	return atT{math.Log(alpha + T), math.Log(beta + T), 1 / (alpha + T), 1 / (beta + T)}
}

// pnbdBracketFrom is pnbdLogBracket (s > 0) given log s, the terms at T,
// and log I with its gradient.
func pnbdBracketFrom(x, r, s, lnS float64, at atT, li float64, gi [4]float64, wantGrad bool) (lb, alive float64, grad [4]float64) {
	a1 := -(r+x)*at.la - s*at.lb
	a2 := lnS + li
	if a1 >= a2 {
		e := math.Exp(a2 - a1)
		lb = a1 + math.Log1p(e)
		alive = 1 / (1 + e)
	} else {
		e := math.Exp(a1 - a2)
		lb = a2 + math.Log1p(e)
		alive = e / (1 + e)
	}
	if wantGrad {
		p1, p2 := alive, 1-alive
		grad[0] = -p1*at.la + p2*gi[0]
		grad[1] = -p1*(r+x)*at.ia + p2*gi[1]
		grad[2] = -p1*at.lb + p2*(1/s+gi[2])
		grad[3] = -p1*s*at.ib + p2*gi[3]
	}
	return lb, alive, grad
}

// ProbabilityAlive returns P(alive | x, t_x, T) (FHL 2005, eq. 18). It is
// below 1 for one-time buyers too, falling with the time since the first
// purchase. Invalid input or parameters yield 0.
func (m ParetoNBD) ProbabilityAlive(x, tx, T float64) float64 {
	v, ok := m.pAlive(x, tx, T)
	if !ok {
		return 0
	}
	return v
}

func (m ParetoNBD) pAlive(x, tx, T float64) (float64, bool) {
	if !m.validParams() {
		return 0, false
	}
	x, tx, T, ok := normalizeRFM(x, tx, T)
	if !ok {
		return 0, false
	}
	return m.pAliveNorm(x, tx, T), true
}

func (m ParetoNBD) pAliveNorm(x, tx, T float64) float64 {
	_, alive, _ := pnbdLogBracket(x, m.R, m.Alpha, m.S, m.Beta, tx, T, false)
	if !finite(alive) {
		return 0
	}
	return alive
}

// ExpectedPurchases returns E[Y(t) | x, t_x, T] (FHL 2005, eq. 22):
//
//	P(alive) · (r+x)(β+T) / ((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^{s−1}],
//
// with the bracket over (s−1) formed through expm1 (its s → 1 limit is
// (r+x)/(α+T)·(β+T)·log((β+T+t)/(β+T))). Invalid input or parameters
// yield 0.
func (m ParetoNBD) ExpectedPurchases(t, x, tx, T float64) float64 {
	v, ok := m.expected(t, x, tx, T)
	if !ok {
		return 0
	}
	return v
}

func (m ParetoNBD) expected(t, x, tx, T float64) (float64, bool) {
	if !m.validParams() || !finite(t) || t < 0 || t > maxTime {
		return 0, false
	}
	x, tx, T, ok := normalizeRFM(x, tx, T)
	if !ok {
		return 0, false
	}
	return m.expectedNorm(m.pAliveNorm(x, tx, T), t, x, T)
}

func (m ParetoNBD) expectedNorm(alive, t, x, T float64) (float64, bool) {
	v := alive * (m.R + x) / (m.Alpha + T) * (m.Beta + T) * survivalMean(m.S, t/(m.Beta+T))
	if !finite(v) || v < 0 {
		return 0, false
	}
	return v, true
}

// survivalMean returns [1 − (1+k)^{1−s}]/(s−1), the expected alive time in
// the next t = k·(β+T) time units divided by (β+T), stably for s near 1.
func survivalMean(s, k float64) float64 {
	l := math.Log1p(k)
	y := (s - 1) * l
	if math.Abs(y) < 1e-8 {
		return l * (1 - y/2)
	}
	return -math.Expm1(-y) / (s - 1)
}

// ExpectedPurchasesNew returns E[X(t)] for a new customer (FHL 2005,
// eq. 17): r·β/(α(s−1))·[1 − (β/(β+t))^{s−1}].
func (m ParetoNBD) ExpectedPurchasesNew(t float64) float64 {
	if !m.validParams() || !finite(t) || t < 0 || t > maxTime {
		return 0
	}
	v := m.R / m.Alpha * m.Beta * survivalMean(m.S, t/m.Beta)
	if !finite(v) || v < 0 {
		return 0
	}
	return v
}

// FitParetoNBD fits Pareto/NBD by maximum likelihood like FitBGNBD (same
// data handling, optimiser and minimum sizes). Fallback rule: too few
// customers or repeaters, no convergence, or an estimate at a parameter
// boundary (Boundary is set) give the no-dropout NBD r = 1,
// α = ΣT/Σx, s = 0, β = 1 (P(alive) = 1), or the zero-rate model when
// nobody repeated, the same predictions as the BG/NBD fallback.
func FitParetoNBD(data []Customer, opts FitOptions) (ParetoNBD, error) {
	acc := newBGAccumulator()
	for _, c := range data {
		acc.add(c.Frequency, c.Recency, c.T)
	}
	m, err := fitPareto(acc.build(), opts)
	if err != nil {
		return m, fmt.Errorf("fitting Pareto/NBD: %w", err)
	}
	return m, nil
}

func fitPareto(d *bgData, opts FitOptions) (ParetoNBD, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return ParetoNBD{}, err
	}
	info := ParetoNBD{Customers: int(d.n), Repeaters: int(d.rep), Tuples: len(d.tuples)}
	fallback := func(reason string) ParetoNBD {
		m := info
		if d.sumX > 0 && d.sumT > 0 {
			m.R, m.Alpha, m.S, m.Beta = 1, d.sumT/d.sumX, 0, 1
			m.Fallback = reason + "; using no-dropout NBD with pooled rate (r=1, α=ΣT/Σx, s=0, β=1)"
		} else {
			m.R, m.Alpha, m.S, m.Beta = 0, 1, 0, 1
			m.Fallback = reason + "; using zero-rate model (r=0, s=0): no future purchases"
		}
		return m
	}
	switch {
	case d.n < float64(opts.MinCustomers):
		return fallback(fmt.Sprintf("only %d valid customers (< %d)", int(d.n), opts.MinCustomers)), nil
	case d.sumT <= 0:
		return fallback("all customer ages T are 0"), nil
	case d.rep < float64(opts.MinRepeaters):
		return fallback(fmt.Sprintf("only %d repeat customers (< %d)", int(d.rep), opts.MinRepeaters)), nil
	}
	obj := func(lt, grad []float64) float64 {
		return d.paretoNegLogLik(lt, grad) + penalty(opts.Penalizer, lt, grad)
	}
	// Start: r = 1 at the pooled repeat rate; s = 1 with a mean lifetime of
	// the mean age (β = ΣT/n): scale-aware like BG/NBD's start.
	x0 := []float64{0, math.Log(d.sumT / d.sumX), 0, math.Log(d.sumT / d.n)}
	res := minimise(obj, x0, opts.MaxIterations)
	info.Iterations, info.FuncEvals = res.iterations, res.evals
	if !res.converged {
		return fallback(fmt.Sprintf("optimiser did not converge (|grad|=%.3g after %d iterations)", res.gradNorm, res.iterations)), nil
	}
	if atBoundary(res.x) {
		m := fallback(fmt.Sprintf("MLE at parameter boundary (r=%.3g α=%.3g s=%.3g β=%.3g)",
			math.Exp(res.x[0]), math.Exp(res.x[1]), math.Exp(res.x[2]), math.Exp(res.x[3])))
		m.Boundary = true
		m.BoundaryReason = boundaryReason([4]string{"r", "α", "s", "β"}, res.x)
		m.NoDropoutLogLik = d.noDropoutLogLik()
		return m, nil
	}
	m := info
	m.R, m.Alpha, m.S, m.Beta = math.Exp(res.x[0]), math.Exp(res.x[1]), math.Exp(res.x[2]), math.Exp(res.x[3])
	m.LogLik = -d.paretoNegLogLik(res.x, nil) * d.n
	m.Converged = true
	m.NoDropoutLogLik = d.noDropoutLogLik()
	if reason := d.dropoutNotIdentified(m.LogLik); reason != "" {
		m.Boundary, m.BoundaryReason = true, reason
	}
	return m, nil
}

// LogLikelihood returns the Pareto/NBD log-likelihood of data at the
// model's parameters (for holdout comparisons); invalid rows are skipped.
func (m ParetoNBD) LogLikelihood(data []Customer) float64 {
	acc := newBGAccumulator()
	for _, c := range data {
		acc.add(c.Frequency, c.Recency, c.T)
	}
	return acc.build().paretoLogLikAt(m.R, m.Alpha, m.S, m.Beta)
}

// paretoLogLikAt is the total log-likelihood at natural parameters; s = 0
// (the fallback) is allowed.
func (d *bgData) paretoLogLikAt(r, alpha, s, beta float64) float64 {
	if d.n == 0 {
		return 0
	}
	if s > 0 && r > 0 {
		return -d.paretoNegLogLik([]float64{math.Log(r), math.Log(alpha), math.Log(s), math.Log(beta)}, nil) * d.n
	}
	var ll float64
	for _, grp := range d.groups {
		lg := lgamma(r+grp.x) - lgamma(r) + r*math.Log(alpha)
		if r == 0 {
			lg = 0
			if grp.x > 0 {
				lg = math.Inf(-1)
			}
		}
		for _, t := range d.tuples[grp.lo:grp.hi] {
			lb, _, _ := pnbdLogBracket(grp.x, r, alpha, s, beta, d.vals[t.iTx], d.vals[t.iT], false)
			ll += t.w * (lg + s*math.Log(beta) + lb)
		}
	}
	return ll
}

// paretoNegLogLik is the mean negative Pareto/NBD log-likelihood at
// logTheta = log(r, α, s, β) with its gradient w.r.t. logTheta. Per
// customer:
//
//	ℓ = lnΓ(r+x) − lnΓ(r) + r ln α + s ln β
//	    + ln[(α+T)^{−(r+x)}(β+T)^{−s} + s·I(t_x, T)]
//
// with I from logDeathIntegral, through the groups' deathTables where they
// pay.
func (d *bgData) paretoNegLogLik(logTheta, grad []float64) float64 {
	return d.paretoNLL(logTheta, grad, true)
}

// paretoNLL is paretoNegLogLik; useTables false evaluates every tuple's
// integral on its own (the reference the tables are tested against).
func (d *bgData) paretoNLL(logTheta, grad []float64, useTables bool) float64 {
	if grad != nil {
		clear(grad)
	}
	if outOfRange(logTheta) {
		return math.Inf(1)
	}
	r, alpha, s, beta := math.Exp(logTheta[0]), math.Exp(logTheta[1]), math.Exp(logTheta[2]), math.Exp(logTheta[3])
	wantGrad := grad != nil
	lnA, lnB := math.Log(alpha), math.Log(beta)
	lgR := lgamma(r)
	var psiR float64
	if wantGrad {
		psiR = mathext.Digamma(r)
	}
	var ll float64
	var g [4]float64
	for _, grp := range d.groups {
		x, w := grp.x, grp.w
		ll += w * (lgamma(r+x) - lgR + r*lnA + s*lnB)
		if wantGrad {
			g[0] += w * (mathext.Digamma(r+x) - psiR + lnA)
			g[1] += w * r / alpha
			g[2] += w * lnB
			g[3] += w * s / beta
		}
	}
	// The brackets, on all CPUs for many tuples.
	workers := runtime.GOMAXPROCS(0)
	if len(d.tuples) < parallelMinTuples/4 || workers < 2 {
		workers = 1
	}
	var tables []*deathTable
	if useTables {
		tables = d.deathTables(r, alpha, s, beta, workers)
	}
	ats := make([]atT, len(d.vals))
	for i, v := range d.vals {
		ats[i] = atTime(alpha, beta, v)
	}
	lnS := math.Log(s)
	type part struct {
		ll float64
		g  [4]float64
	}
	parts := make([]part, workers)
	chunk := (len(d.tuples) + workers - 1) / workers
	var wg sync.WaitGroup
	for k := range workers {
		lo, hi := k*chunk, min((k+1)*chunk, len(d.tuples))
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &parts[k]
			for gi, grp := range d.groups {
				a, b := max(lo, grp.lo), min(hi, grp.hi)
				var tb *deathTable
				if tables != nil {
					tb = tables[gi]
				}
				for _, t := range d.tuples[a:max(a, b)] {
					var li float64
					var gi [4]float64
					if tb != nil {
						li, gi = tb.integral(d, grp.x, r, alpha, s, beta, t.iTx, t.iT)
					} else {
						li, gi = logDeathIntegral(grp.x, r, alpha, s, beta, d.vals[t.iTx], d.vals[t.iT])
					}
					lb, _, gb := pnbdBracketFrom(grp.x, r, s, lnS, ats[t.iT], li, gi, wantGrad)
					p.ll += t.w * lb
					if wantGrad {
						for i := range gb {
							p.g[i] += t.w * gb[i]
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, p := range parts {
		ll += p.ll
		for i := range g {
			g[i] += p.g[i]
		}
	}
	if !finite(ll) {
		return math.Inf(1)
	}
	if wantGrad {
		theta := [4]float64{r, alpha, s, beta}
		for i := range grad {
			grad[i] = -g[i] * theta[i] / d.n
		}
	}
	return -ll / d.n
}
