package clv

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// GammaGamma is a fitted (or fallback) Gamma-Gamma spend model (Fader &
// Hardie 2013): transaction values are Gamma(P, ν) with ν ~ Gamma(Q, Gamma)
// across customers. The expected value of a random customer's transaction
// is P·Gamma/(Q−1) (finite when Q > 1). lifetimes calls Gamma "v".
type GammaGamma struct {
	P, Q, Gamma float64

	// LogLik is the maximised log-likelihood (without penalty) of the
	// repeat customers' mean spends; 0 when Fallback is set.
	LogLik float64
	// Customers is the number of repeat customers (x > 0, mbar > 0) used.
	Customers int
	// Skipped counts repeat customers left out for a non-positive or
	// non-finite mean spend.
	Skipped int
	// PopulationMean is the customer-weighted mean of mbar over those
	// customers. It is the expected spend of customers with x = 0 when
	// Q ≤ 1 makes the model's population mean infinite.
	PopulationMean float64
	// Iterations and FuncEvals are summed over optimiser stages.
	Iterations, FuncEvals int
	// Converged reports that the gradient norm at the estimate met the
	// tolerance. It is false when Fallback is set.
	Converged bool
	// Fallback is empty when the parameters are the MLE; otherwise it
	// describes the fallback used and why.
	Fallback string
}

// fallbackP is the shape used by the Gamma-Gamma fallback: the p → ∞ limit
// (no within-customer variation of transaction values), where the
// conditional expected spend is the customer's own mean.
const fallbackP = 1e9

// ConditionalExpectedSpend returns E[M | x, mbar], the expected value of a
// future transaction of a customer with x repeat transactions of mean value
// mbar (Fader & Hardie 2013, eq. 5; lifetimes'
// conditional_expected_average_profit):
//
//	p(γ + x·mbar)/(p·x + q − 1)
//
// a credibility-weighted average of mbar and the population mean
// pγ/(q−1). For x = 0, or a negative or non-finite mbar, it returns the
// population mean (PopulationMean when q ≤ 1). For x > 0 with
// p·x + q ≤ 1 it returns mbar. Invalid parameters or x yield 0.
func (m GammaGamma) ConditionalExpectedSpend(x, mbar float64) float64 {
	v, ok, needPop := m.spend(x, mbar)
	switch {
	case ok:
		return v
	case needPop && finite(m.PopulationMean) && m.PopulationMean >= 0:
		return m.PopulationMean
	default:
		return 0
	}
}

func (m GammaGamma) validParams() bool {
	return finite(m.P) && finite(m.Q) && finite(m.Gamma) && m.P > 0 && m.Q > 0 && m.Gamma >= 0
}

// spend is the parameter-only part of ConditionalExpectedSpend, shared with
// the SQL UDF. ok is false for invalid input; needPop is additionally true
// when the answer is the population mean but Q ≤ 1 makes the model's
// population mean infinite.
func (m GammaGamma) spend(x, mbar float64) (v float64, ok, needPop bool) {
	if !m.validParams() || !finite(x) || x < 0 || math.Abs(x-math.Round(x)) > 1e-6 {
		return 0, false, false
	}
	x = math.Round(x)
	if x == 0 || !finite(mbar) || mbar < 0 {
		if m.Q <= 1 {
			return 0, false, true
		}
		v = m.P * m.Gamma / (m.Q - 1)
		return v, finite(v), false
	}
	den := m.P*x + m.Q - 1
	if den <= 0 {
		return mbar, true, false
	}
	if m.Q > 1 {
		// Credibility-weighted form; stays exact when P is huge (the
		// fallback), where P·x·mbar/den would lose nothing but is less
		// obviously bounded.
		w := m.P * x / den
		v = w*mbar + (1-w)*m.P*m.Gamma/(m.Q-1)
	} else {
		v = m.P * (m.Gamma + x*mbar) / den
	}
	return v, finite(v), false
}

// FitGammaGamma fits Gamma-Gamma by maximum likelihood on the customers
// with Frequency > 0 and Monetary > 0, using their mean repeat-transaction
// value (Fader & Hardie 2013, eq. 4). Identical (x, mbar) pairs are merged.
// Customers with x = 0 are ignored (their Monetary is meaningless);
// repeaters with Monetary ≤ 0 or non-finite are skipped and counted.
//
// The model assumes spend is independent of frequency; check
// FrequencyMonetaryCorrelation.
//
// Fallback rule: with fewer than opts.MinRepeaters usable customers, when
// all mean spends are equal (the spread that identifies the model is
// zero), when the optimiser does not converge or when an estimate lands at
// a parameter boundary, the parameters are set to the p → ∞ limit
// p = 1e9, q = 2, γ = PopulationMean/p: each customer's expected spend is
// their own mean (to within 1e-9 relative) and customers with x = 0 get the
// population mean. Again these are ordinary parameters, so
// gg_expected_spend in SQL gives the same numbers.
//
// The error is non-nil only for invalid options.
func FitGammaGamma(data []Customer, opts FitOptions) (GammaGamma, error) {
	acc := newGGAccumulator()
	for _, c := range data {
		x, _, _, ok := normalizeRFM(c.Frequency, c.Recency, c.T)
		if !ok {
			continue
		}
		acc.add(x, c.Monetary)
	}
	m, err := fitGG(acc.build(), acc.skipped, opts)
	if err != nil {
		return m, fmt.Errorf("fitting Gamma-Gamma: %w", err)
	}
	return m, nil
}

// fitGG fits prepared data; see FitGammaGamma.
func fitGG(d *ggData, skipped int, opts FitOptions) (GammaGamma, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return GammaGamma{}, err
	}
	info := GammaGamma{Customers: int(d.n), Skipped: skipped, PopulationMean: d.meanM}
	fallback := func(reason string) GammaGamma {
		m := info
		m.P, m.Q, m.Gamma = fallbackP, 2, d.meanM/fallbackP
		m.Fallback = reason + "; using each customer's own mean spend (population mean for x=0)"
		return m
	}
	switch {
	case d.n < float64(opts.MinRepeaters):
		return fallback(fmt.Sprintf("only %d repeat customers with positive spend (< %d)", int(d.n), opts.MinRepeaters)), nil
	case d.maxM-d.minM <= 1e-9*d.maxM:
		return fallback("all mean spends are equal"), nil
	}
	obj := func(lt, grad []float64) float64 {
		f := d.negLogLik(lt, grad)
		return f + penalty(opts.Penalizer, lt, grad)
	}
	// Start at p = 1, q = 2 with γ matching the observed mean spend
	// (population mean pγ/(q−1) = meanM): scale-aware in the currency.
	x0 := []float64{0, math.Log(2), math.Log(d.meanM)}
	res := minimise(obj, x0, opts.MaxIterations)
	info.Iterations, info.FuncEvals = res.iterations, res.evals
	if !res.converged {
		return fallback(fmt.Sprintf("optimiser did not converge (|grad|=%.3g after %d iterations)", res.gradNorm, res.iterations)), nil
	}
	if atBoundary(res.x) {
		return fallback(fmt.Sprintf("MLE at parameter boundary (p=%.3g q=%.3g γ=%.3g)",
			math.Exp(res.x[0]), math.Exp(res.x[1]), math.Exp(res.x[2]))), nil
	}
	m := info
	m.P, m.Q, m.Gamma = math.Exp(res.x[0]), math.Exp(res.x[1]), math.Exp(res.x[2])
	m.LogLik = -d.negLogLik(res.x, nil) * d.n
	m.Converged = true
	return m, nil
}

// negLogLik returns the mean negative Gamma-Gamma log-likelihood at
// logTheta = log(p, q, γ) and optionally its gradient w.r.t. logTheta.
// The density of a customer's mean spend mbar over x transactions is
//
//	Γ(px+q)/(Γ(px)Γ(q)) · γ^q · x^{px} · mbar^{px−1} / (γ + x·mbar)^{px+q},
//
// whose x-only terms are computed once per distinct x.
func (d *ggData) negLogLik(logTheta, grad []float64) float64 {
	if grad != nil {
		clear(grad)
	}
	if outOfRange(logTheta) {
		return math.Inf(1)
	}
	p, q, gm := math.Exp(logTheta[0]), math.Exp(logTheta[1]), math.Exp(logTheta[2])
	lnG := math.Log(gm)
	lgQ := lgamma(q)
	wantGrad := grad != nil
	var psiQ float64
	if wantGrad {
		psiQ = mathext.Digamma(q)
	}
	var ll float64
	var g [3]float64
	for _, grp := range d.groups {
		x, w := grp.x, grp.w
		px := p * x
		lnX := math.Log(x)
		ll += w * (lgamma(px+q) - lgamma(px) - lgQ + q*lnG + px*lnX)
		if wantGrad {
			psiPXQ := mathext.Digamma(px + q)
			g[0] += w * x * (psiPXQ - mathext.Digamma(px) + lnX)
			g[1] += w * (psiPXQ - psiQ + lnG)
			g[2] += w * q / gm
		}
		for _, t := range d.tuples[grp.lo:grp.hi] {
			den := gm + x*t.m
			lden := math.Log(den)
			ll += t.w * ((px-1)*t.logM - (px+q)*lden)
			if wantGrad {
				g[0] += t.w * x * (t.logM - lden)
				g[1] -= t.w * lden
				g[2] -= t.w * (px + q) / den
			}
		}
	}
	if !finite(ll) {
		return math.Inf(1)
	}
	if wantGrad {
		theta := [3]float64{p, q, gm}
		for i := range grad {
			grad[i] = -g[i] * theta[i] / d.n
		}
	}
	return -ll / d.n
}
