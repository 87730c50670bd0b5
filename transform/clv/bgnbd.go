package clv

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/mathext"
)

// BGNBD is a fitted (or fallback) BG/NBD model. α is in the caller's time
// unit (see the package documentation).
type BGNBD struct {
	// R and Alpha are the shape and rate of the Gamma distribution of
	// purchase rates λ (mean rate R/Alpha per time unit).
	R, Alpha float64
	// A and B are the Beta parameters of the dropout probability p applied
	// after each repeat purchase. A = 0 means "nobody drops out" (the NBD
	// limit used by the fallback).
	A, B float64

	// LogLik is the maximised log-likelihood (without penalty); 0 when
	// Fallback is set.
	LogLik float64
	// Customers is the number of valid customers the model was fitted on;
	// Repeaters those with x > 0; Tuples the number of distinct
	// (x, t_x, T) combinations the likelihood was evaluated over.
	Customers, Repeaters, Tuples int
	// Skipped counts rows rejected as invalid (negative, non-finite or
	// non-integer frequency, negative times).
	Skipped int
	// Iterations and FuncEvals are summed over optimiser stages.
	Iterations, FuncEvals int
	// Converged reports that the gradient norm at the estimate met the
	// tolerance. It is false when Fallback is set.
	Converged bool
	// Boundary is true when the MLE lies on a parameter boundary
	// (|log θ| > 20; the fallback is used for it) or when a
	// likelihood-ratio test cannot reject the no-dropout limit a → 0
	// (2·(LogLik − NoDropoutLogLik) < 3.84; the fit is kept: the flag is
	// informational). BoundaryReason says which test fired, with the
	// numbers.
	Boundary       bool
	BoundaryReason string
	// NoDropoutLogLik is the maximised log-likelihood of the no-dropout
	// NBD on the same customers (see noDropoutLogLik); 0 for the
	// fallbacks that did not fit.
	NoDropoutLogLik float64
	// Fallback is empty when the parameters are the MLE; otherwise it
	// describes the fallback used and why.
	Fallback string
}

// validParams reports whether the parameters can be used for prediction.
// r = 0 (zero purchase rate) and a = 0 (no dropout) are accepted limits.
func (m BGNBD) validParams() bool {
	return finite(m.R) && finite(m.Alpha) && finite(m.A) && finite(m.B) &&
		m.R >= 0 && m.Alpha > 0 && m.A >= 0 && m.B > 0 &&
		m.R <= 1e12 && m.Alpha <= 1e15 && m.A <= 1e12 && m.B <= 1e12
}

// ProbabilityAlive returns P(alive | x, t_x, T) (FHL 2005, eq. 9 / lifetimes'
// conditional_probability_alive):
//
//	1 / (1 + δ_{x>0} · a/(b+x−1) · ((α+T)/(α+t_x))^{r+x}).
//
// It is 1 for x = 0: in BG/NBD customers can only drop out right after a
// repeat purchase. Invalid input (see Customer; negative or non-finite
// values, non-integer x) or invalid parameters yield 0.
func (m BGNBD) ProbabilityAlive(x, tx, T float64) float64 {
	v, ok := m.pAlive(x, tx, T)
	if !ok {
		return 0
	}
	return v
}

func (m BGNBD) pAlive(x, tx, T float64) (float64, bool) {
	if !m.validParams() {
		return 0, false
	}
	x, tx, T, ok := normalizeRFM(x, tx, T)
	if !ok {
		return 0, false
	}
	return m.pAliveNorm(x, tx, T), true
}

// pAliveNorm is ProbabilityAlive for validated input.
func (m BGNBD) pAliveNorm(x, tx, T float64) float64 {
	if x == 0 || m.A == 0 {
		return 1
	}
	l := math.Log(m.A) - math.Log(m.B+x-1) + (m.R+x)*(math.Log(m.Alpha+T)-math.Log(m.Alpha+tx))
	return 1 / (1 + math.Exp(l)) // exp overflow gives 0, never NaN
}

// ExpectedPurchases returns E[Y(t) | x, t_x, T], the expected number of
// purchases in the next t time units of a customer with history
// (x, t_x, T) (FHL 2005, eq. 10; lifetimes'
// conditional_expected_number_of_purchases_up_to_time). It needs the
// Gaussian hypergeometric function; see expect.go for how it is evaluated
// robustly. Invalid input (negative or non-finite values, t > 1e12,
// non-integer x) or invalid parameters yield 0.
func (m BGNBD) ExpectedPurchases(t, x, tx, T float64) float64 {
	v, ok := m.expected(t, x, tx, T)
	if !ok {
		return 0
	}
	return v
}

func (m BGNBD) expected(t, x, tx, T float64) (float64, bool) {
	if !m.validParams() || !finite(t) || t < 0 || t > maxTime {
		return 0, false
	}
	x, tx, T, ok := normalizeRFM(x, tx, T)
	if !ok {
		return 0, false
	}
	return m.expectedNorm(m.pAliveNorm(x, tx, T), t, x, T)
}

// expectedNorm is expected for validated input and parameters, given
// P(alive): CLV sums it over the months of its horizon.
func (m BGNBD) expectedNorm(alive, t, x, T float64) (float64, bool) {
	v := alive * condG(m.R, m.Alpha, m.A, m.B, t, x, T)
	if !finite(v) || v < 0 {
		return 0, false
	}
	return v, true
}

// ExpectedPurchasesNew returns E[X(t)], the expected number of repeat
// purchases in the first t time units of a randomly chosen new customer
// (FHL 2005, eq. 7). Summed over a cohort's ages it should reproduce the
// total observed repeat purchases, a useful population-level check.
// Invalid t or parameters yield 0.
func (m BGNBD) ExpectedPurchasesNew(t float64) float64 {
	return m.ExpectedPurchases(t, 0, 0, 0)
}

// FitBGNBD fits BG/NBD by maximum likelihood (log-parameters, BFGS with an
// analytic gradient, Nelder-Mead rescue; see minimise). Identical
// (x, t_x, T) tuples are merged and the likelihood is summed over unique
// tuples times their count, and over distinct x for the Gamma-function
// terms, so a fit on millions of customers costs little more than on the
// distinct tuples.
//
// Invalid rows (see Customer) are skipped and counted in Skipped.
//
// Fallback rule: when there are fewer than opts.MinCustomers valid
// customers or fewer than opts.MinRepeaters repeaters, when the optimiser
// does not converge, or when an estimate lands at a parameter boundary
// (the data do not identify the model), the returned parameters are
//
//	r = 1, α = Σ T / Σ x, a = 0, b = 1
//
// i.e. a Poisson-Gamma (NBD) model without dropout whose prior mean rate is
// the pooled repeat rate Σx/ΣT with the weight of one pseudo-purchase: each
// customer's future rate is (x+1)/(α+T), P(alive) = 1. If nobody repeated
// (Σx = 0) or all ages are 0, it is the zero-rate model r = 0 (α = 1, a = 0,
// b = 1): no future purchases. These are plain BG/NBD parameters (limits of
// the family), so the SQL UDFs reproduce the fallback exactly.
//
// The error is non-nil only for invalid options.
func FitBGNBD(data []Customer, opts FitOptions) (BGNBD, error) {
	acc := newBGAccumulator()
	for _, c := range data {
		acc.add(c.Frequency, c.Recency, c.T)
	}
	m, err := fitBG(acc.build(), acc.skipped, opts)
	if err != nil {
		return m, fmt.Errorf("fitting BG/NBD: %w", err)
	}
	return m, nil
}

// fitBG fits prepared data; see FitBGNBD.
func fitBG(d *bgData, skipped int, opts FitOptions) (BGNBD, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return BGNBD{}, err
	}
	info := BGNBD{Customers: int(d.n), Repeaters: int(d.rep), Tuples: len(d.tuples), Skipped: skipped}
	fallback := func(reason string) BGNBD {
		m := info
		if d.sumX > 0 && d.sumT > 0 {
			m.R, m.Alpha, m.A, m.B = 1, d.sumT/d.sumX, 0, 1
			m.Fallback = reason + "; using no-dropout NBD with pooled rate (r=1, α=ΣT/Σx, a=0, b=1)"
		} else {
			m.R, m.Alpha, m.A, m.B = 0, 1, 0, 1
			m.Fallback = reason + "; using zero-rate model (r=0, a=0): no future purchases"
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
		f := d.negLogLik(lt, grad)
		return f + penalty(opts.Penalizer, lt, grad)
	}
	// Start: r = 1 with α matching the pooled repeat rate Σx/ΣT, and a
	// moderate dropout prior E[p] = 1/3. This is scale-aware, so fits in
	// days and in weeks start equally well.
	x0 := []float64{0, math.Log(d.sumT / d.sumX), 0, math.Log(2)}
	res := minimise(obj, x0, opts.MaxIterations)
	info.Iterations, info.FuncEvals = res.iterations, res.evals
	if !res.converged {
		return fallback(fmt.Sprintf("optimiser did not converge (|grad|=%.3g after %d iterations)", res.gradNorm, res.iterations)), nil
	}
	if atBoundary(res.x) {
		m := fallback(fmt.Sprintf("MLE at parameter boundary (r=%.3g α=%.3g a=%.3g b=%.3g)",
			math.Exp(res.x[0]), math.Exp(res.x[1]), math.Exp(res.x[2]), math.Exp(res.x[3])))
		m.Boundary = true
		m.BoundaryReason = boundaryReason([4]string{"r", "α", "a", "b"}, res.x)
		m.NoDropoutLogLik = d.noDropoutLogLik()
		return m, nil
	}
	m := info
	m.R, m.Alpha, m.A, m.B = math.Exp(res.x[0]), math.Exp(res.x[1]), math.Exp(res.x[2]), math.Exp(res.x[3])
	m.LogLik = -d.negLogLik(res.x, nil) * d.n
	m.Converged = true
	m.NoDropoutLogLik = d.noDropoutLogLik()
	if reason := d.dropoutNotIdentified(m.LogLik); reason != "" {
		m.Boundary, m.BoundaryReason = true, reason
	}
	return m, nil
}

// bgLogLikAt is the total BG/NBD log-likelihood at natural parameters
// (a > 0), for holdout scoring.
func (d *bgData) bgLogLikAt(r, alpha, a, b float64) float64 {
	if d.n == 0 {
		return 0
	}
	return -d.negLogLik([]float64{math.Log(r), math.Log(alpha), math.Log(a), math.Log(b)}, nil) * d.n
}

// parallelMinTuples is the tuple count above which the likelihood is
// evaluated on all CPUs.
const parallelMinTuples = 20000

// negLogLik returns the mean negative BG/NBD log-likelihood at
// logTheta = log(r, α, a, b) and, if grad != nil, its gradient w.r.t.
// logTheta. Per customer (FHL 2005, eq. 6, in logs):
//
//	ℓ = lnΓ(r+x) − lnΓ(r) + r ln α + lnB(a, b+x) − lnB(a, b)
//	    + ln[(α+T)^{−(r+x)} + δ_{x>0} a/(b+x−1) (α+t_x)^{−(r+x)}].
//
// The first line depends on x only and is computed once per distinct x.
func (d *bgData) negLogLik(logTheta, grad []float64) float64 {
	if grad != nil {
		clear(grad)
	}
	if outOfRange(logTheta) {
		return math.Inf(1)
	}
	r, alpha, a, b := math.Exp(logTheta[0]), math.Exp(logTheta[1]), math.Exp(logTheta[2]), math.Exp(logTheta[3])
	// log(α+v) and 1/(α+v) per distinct time value.
	lv := make([]float64, len(d.vals))
	iv := make([]float64, len(d.vals))
	for i, v := range d.vals {
		lv[i] = math.Log(alpha + v)
		iv[i] = 1 / (alpha + v)
	}
	lnAlpha := math.Log(alpha)
	var ll float64
	var g [4]float64 // d/dr, d/dα, d/da, d/db
	wantGrad := grad != nil
	var psiR, psiAB float64
	if wantGrad {
		psiR, psiAB = mathext.Digamma(r), mathext.Digamma(a+b)
	}
	lgR, lgB, lgAB := lgamma(r), lgamma(b), lgamma(a+b)
	for _, grp := range d.groups {
		x, w := grp.x, grp.w
		if x == 0 {
			ll += w * r * lnAlpha
			if wantGrad {
				g[0] += w * lnAlpha
				g[1] += w * r / alpha
			}
		} else {
			ll += w * (lgamma(r+x) - lgR + r*lnAlpha + lgAB + lgamma(b+x) - lgB - lgamma(a+b+x))
			if wantGrad {
				psiABX := mathext.Digamma(a + b + x)
				g[0] += w * (mathext.Digamma(r+x) - psiR + lnAlpha)
				g[1] += w * r / alpha
				g[2] += w * (psiAB - psiABX)
				g[3] += w * (psiAB + mathext.Digamma(b+x) - mathext.Digamma(b) - psiABX)
			}
		}
		tl, tg := d.tupleTerms(grp, r, a, b, lv, iv, wantGrad)
		ll += tl
		for i := range g {
			g[i] += tg[i]
		}
	}
	if !finite(ll) {
		return math.Inf(1)
	}
	if wantGrad {
		// Chain rule to log-parameters and sign/scale to mean negative LL.
		theta := [4]float64{r, alpha, a, b}
		for i := range grad {
			grad[i] = -g[i] * theta[i] / d.n
		}
	}
	return -ll / d.n
}

// tupleTerms sums the bracketed (t_x, T)-dependent term of the
// log-likelihood over one frequency group, in parallel for large groups.
func (d *bgData) tupleTerms(grp bgGroup, r, a, b float64, lv, iv []float64, wantGrad bool) (float64, [4]float64) {
	tuples := d.tuples[grp.lo:grp.hi]
	workers := runtime.GOMAXPROCS(0)
	if len(tuples) < parallelMinTuples || workers < 2 {
		return bgTupleSum(tuples, grp.x, r, a, b, lv, iv, wantGrad)
	}
	type part struct {
		ll float64
		g  [4]float64
	}
	parts := make([]part, workers)
	chunk := (len(tuples) + workers - 1) / workers
	var wg sync.WaitGroup
	for i := range workers {
		lo := i * chunk
		hi := min(lo+chunk, len(tuples))
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[i].ll, parts[i].g = bgTupleSum(tuples[lo:hi], grp.x, r, a, b, lv, iv, wantGrad)
		}()
	}
	wg.Wait()
	var ll float64
	var g [4]float64
	for _, p := range parts {
		ll += p.ll
		for j := range g {
			g[j] += p.g[j]
		}
	}
	return ll, g
}

// bgTupleSum is the serial kernel of tupleTerms. Derivatives are w.r.t.
// (r, α, a, b) on the natural scale.
func bgTupleSum(tuples []bgTuple, x, r, a, b float64, lv, iv []float64, wantGrad bool) (float64, [4]float64) {
	var ll float64
	var g [4]float64
	if x == 0 {
		for _, t := range tuples {
			ll -= t.w * r * lv[t.iT]
			if wantGrad {
				g[0] -= t.w * lv[t.iT]
				g[1] -= t.w * r * iv[t.iT]
			}
		}
		return ll, g
	}
	rx := r + x
	lRatio := math.Log(a) - math.Log(b+x-1) // log a/(b+x−1)
	invA, invB := 1/a, 1/(b+x-1)
	for _, t := range tuples {
		a3 := -rx * lv[t.iT]
		a4 := lRatio - rx*lv[t.iTx]
		// log(e^{a3} + e^{a4}) and the softmax weight of a4.
		var lse, w4 float64
		if a3 >= a4 {
			e := math.Exp(a4 - a3)
			lse = a3 + math.Log1p(e)
			w4 = e / (1 + e)
		} else {
			e := math.Exp(a3 - a4)
			lse = a4 + math.Log1p(e)
			w4 = 1 / (1 + e)
		}
		ll += t.w * lse
		if wantGrad {
			w3 := 1 - w4
			g[0] -= t.w * (w3*lv[t.iT] + w4*lv[t.iTx])
			g[1] -= t.w * rx * (w3*iv[t.iT] + w4*iv[t.iTx])
			g[2] += t.w * w4 * invA
			g[3] -= t.w * w4 * invB
		}
	}
	return ll, g
}
