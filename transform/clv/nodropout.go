package clv

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// lrCritical is half the 95 % point of χ²(1), 3.84: a fit whose
// log-likelihood exceeds the no-dropout limit's by less than this cannot
// reject "nobody drops out" in a likelihood-ratio test.
const lrCritical = 3.84 / 2

// noDropoutLogLik returns the maximised log-likelihood of the no-dropout
// limit both purchase models share (BG/NBD a → 0, Pareto/NBD s → 0): the
// NBD, in which every customer buys at a Gamma(r, α) distributed Poisson
// rate for ever,
//
//	ℓ = lnΓ(r+x) − lnΓ(r) + r ln α − (r+x) ln(α+T),
//
// fitted by plain maximum likelihood (no penalty), or the Poisson limit
// r → ∞ (one rate Σx/ΣT for everyone) when that is higher, as it is when
// the rates show no spread. It is computed once per data set (the BG/NBD
// and Pareto/NBD fits on the same rows share it) and is NaN when nobody
// repeated.
func (d *bgData) noDropoutLogLik() float64 {
	d.nbdOnce.Do(func() {
		d.nbdLL = math.NaN()
		if d.sumX <= 0 || d.sumT <= 0 {
			return
		}
		poisson := d.sumX*math.Log(d.sumX/d.sumT) - d.sumX
		res := minimise(d.nbdNegLogLik, []float64{0, math.Log(d.sumT / d.sumX)}, 1000)
		d.nbdLL = poisson
		if ll := -res.f * d.n; finite(ll) && ll > poisson {
			d.nbdLL = ll
		}
	})
	return d.nbdLL
}

// nbdNegLogLik is the mean negative NBD log-likelihood at
// logTheta = log(r, α) with its gradient w.r.t. logTheta (see
// noDropoutLogLik). It depends on (x, T) only.
func (d *bgData) nbdNegLogLik(logTheta, grad []float64) float64 {
	if grad != nil {
		clear(grad)
	}
	if outOfRange(logTheta) {
		return math.Inf(1)
	}
	r, alpha := math.Exp(logTheta[0]), math.Exp(logTheta[1])
	lnAlpha, lgR := math.Log(alpha), lgamma(r)
	var psiR float64
	if grad != nil {
		psiR = mathext.Digamma(r)
	}
	var ll, gr, ga float64
	for _, grp := range d.groups {
		x, w := grp.x, grp.w
		ll += w * (lgamma(r+x) - lgR + r*lnAlpha)
		if grad != nil {
			gr += w * (mathext.Digamma(r+x) - psiR + lnAlpha)
			ga += w * r / alpha
		}
		for _, t := range d.tuples[grp.lo:grp.hi] {
			v := alpha + d.vals[t.iT]
			ll -= t.w * (r + x) * math.Log(v)
			if grad != nil {
				gr -= t.w * math.Log(v)
				ga -= t.w * (r + x) / v
			}
		}
	}
	if !finite(ll) {
		return math.Inf(1)
	}
	if grad != nil {
		grad[0], grad[1] = -gr*r/d.n, -ga*alpha/d.n
	}
	return -ll / d.n
}

// dropoutNotIdentified is the likelihood-ratio half of the boundary flag: a
// maximum-likelihood fit with log-likelihood ll whose gain over the
// no-dropout NBD, ΔLL, is below lrCritical (2·ΔLL < 3.84) does not show
// that anybody drops out. It returns the reason, or "" when the test
// rejects the no-dropout model. The flag is informational: the fit is kept.
func (d *bgData) dropoutNotIdentified(ll float64) string {
	nd := d.noDropoutLogLik()
	if !finite(nd) {
		return ""
	}
	if delta := ll - nd; !(delta >= lrCritical) {
		if math.Abs(delta) < 0.005 {
			delta = 0 // the fit is the NBD: no "-0.00"
		}
		return fmt.Sprintf("ΔLL vs no-dropout NBD = %.2f < %.2f: dropout not identified", delta, lrCritical)
	}
	return ""
}

// boundaryReason names the log-parameter farthest beyond logParamBound,
// e.g. "|log a| = 23.1 > 20", for a fit at a parameter boundary.
func boundaryReason(names [4]string, logTheta []float64) string {
	worst := 0
	for i, v := range logTheta {
		if math.Abs(v) > math.Abs(logTheta[worst]) {
			worst = i
		}
	}
	return fmt.Sprintf("|log %s| = %.1f > %g", names[worst], math.Abs(logTheta[worst]), logParamBound)
}
