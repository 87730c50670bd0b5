package clv

import "math"

// ProbabilityPurchase returns P(at least one purchase in the next t | x,
// t_x, T): P(alive) × P(a purchase within t at the posterior rate
// λ ~ Gamma(r+x, α+T)) = P(alive)·[1 − ((α+T)/(α+T+t))^{r+x}], formed
// through expm1. A BG/NBD customer alive at T can only drop out right after
// a purchase, so nothing else enters. Invalid input or parameters yield 0.
func (m BGNBD) ProbabilityPurchase(t, x, tx, T float64) float64 {
	return orZero(m.pPurchase(t, x, tx, T))
}

func (m BGNBD) pPurchase(t, x, tx, T float64) (float64, bool) {
	if !finite(t) || t < 0 || t > maxTime {
		return 0, false
	}
	alive, ok := m.pAlive(x, tx, T)
	if !ok {
		return 0, false
	}
	x, _, T, _ = normalizeRFM(x, tx, T)
	return alive * noDeathPurchase(m.R+x, m.Alpha+T, t), true
}

// noDeathPurchase is 1 − (a/(a+t))^k = 1 − E[e^{−λt}], λ ~ Gamma(k, a).
func noDeathPurchase(k, a, t float64) float64 {
	return -math.Expm1(-k * math.Log1p(t/a))
}

// ProbabilityPurchase returns P(at least one purchase in the next t | x,
// t_x, T). A Pareto/NBD customer alive at T may also die within t before
// buying, so it is P(alive) × ∫_0^t E[λe^{−λu}]·E[e^{−μu}] du with the
// alive posteriors λ ~ Gamma(r+x, α+T), μ ~ Gamma(s, β+T):
//
//	P(alive) · (r+x)(α+T)^{r+x}(β+T)^s ∫_T^{T+t} (α+τ)^{−(r+x+1)}(β+τ)^{−s} dτ,
//
// the integral of logDeathIntegral's kind (positive integrand, summed in
// logs), so it stays exact for heavy buyers and extreme fits. It is below
// the no-dropout value P(alive)·[1 − ((α+T)/(α+T+t))^{r+x}], which it
// equals at s = 0. Invalid input or parameters yield 0.
func (m ParetoNBD) ProbabilityPurchase(t, x, tx, T float64) float64 {
	return orZero(m.pPurchase(t, x, tx, T))
}

func (m ParetoNBD) pPurchase(t, x, tx, T float64) (float64, bool) {
	if !finite(t) || t < 0 || t > maxTime {
		return 0, false
	}
	alive, ok := m.pAlive(x, tx, T)
	if !ok {
		return 0, false
	}
	x, _, T, _ = normalizeRFM(x, tx, T)
	k := m.R + x
	if m.S == 0 || t == 0 || k == 0 {
		return alive * noDeathPurchase(k, m.Alpha+T, t), true
	}
	// exponents k+1 of (α+τ) and s of (β+τ): logDeathIntegral's r+x and
	// s+1
	li, _ := logDeathIntegral(0, k+1, m.Alpha, m.S-1, m.Beta, T, T+t)
	p := math.Exp(math.Log(k) + k*math.Log(m.Alpha+T) + m.S*math.Log(m.Beta+T) + li)
	if !finite(p) {
		return 0, false
	}
	// the quadrature's last digits must not lift it above the bound
	return alive * math.Min(p, noDeathPurchase(k, m.Alpha+T, t)), true
}

// orZero is the exported evaluators' contract: 0 where the input or the
// parameters are invalid.
func orZero(v float64, ok bool) float64 {
	if !ok {
		return 0
	}
	return v
}
