package clv

import "math"

// Limits on CLV arguments; beyond them the input is treated as invalid.
const maxHorizonMonths = 1200 // 100 years

// CLV returns the discounted expected value of a customer's purchases over
// the next horizonMonths months:
//
//	Σ_{i=1..H} [E(i·u) − E((i−1)·u)] · S / (1+d)^i
//
// where E(t) = bg.ExpectedPurchases(t, x, tx, T), u = timeUnitsPerMonth
// (the number of model time units in a month: 30 or 365.25/12 for models
// fitted in days, 4.345 or 52.1775/12 for weeks), S =
// gg.ConditionalExpectedSpend(x, mbar) and d = monthlyDiscount (0.01 is
// ~12.7% a year). This is the discounted-cash-flow approach of lifetimes'
// customer_lifetime_value, whose freq argument fixes u at 30 ("D"), 4.345
// ("W") or 1 ("M").
//
// Invalid input (negative or too large horizon, u ≤ 0, d ≤ −1, non-finite
// values, or what ExpectedPurchases and ConditionalExpectedSpend reject)
// yields 0; the result is never NaN or ±Inf.
func CLV(bg BGNBD, gg GammaGamma, x, tx, T, mbar float64, horizonMonths int, monthlyDiscount float64, timeUnitsPerMonth float64) float64 {
	v, ok := clv(bg, gg, x, tx, T, mbar, horizonMonths, monthlyDiscount, timeUnitsPerMonth, true)
	if !ok {
		return 0
	}
	return v
}

// CLVPareto is CLV with a Pareto/NBD purchase model.
func CLVPareto(pn ParetoNBD, gg GammaGamma, x, tx, T, mbar float64, horizonMonths int, monthlyDiscount float64, timeUnitsPerMonth float64) float64 {
	v, ok := clv(pn, gg, x, tx, T, mbar, horizonMonths, monthlyDiscount, timeUnitsPerMonth, true)
	if !ok {
		return 0
	}
	return v
}

// purchaseModel is a fitted "buy till you die" model: BGNBD or ParetoNBD.
type purchaseModel interface {
	validParams() bool
	// pAliveNorm and expectedNorm take validated input (normalizeRFM).
	pAliveNorm(x, tx, T float64) float64
	expectedNorm(alive, t, x, T float64) (float64, bool)
}

// clv implements CLV; usePopMean selects whether gg.PopulationMean may be
// used for x = 0 when gg.Q ≤ 1 (the UDF has no access to it).
func clv(bg purchaseModel, gg GammaGamma, x, tx, T, mbar float64, horizonMonths int, d, u float64, usePopMean bool) (float64, bool) {
	if horizonMonths < 0 || horizonMonths > maxHorizonMonths || !finite(d) || d <= -1 ||
		!finite(u) || u <= 0 || float64(horizonMonths)*u > maxTime {
		return 0, false
	}
	spend, ok, needPop := gg.spend(x, mbar)
	if !ok {
		if !needPop || !usePopMean || !finite(gg.PopulationMean) {
			return 0, false
		}
		spend = gg.PopulationMean
	}
	if !bg.validParams() {
		return 0, false
	}
	x, tx, T, ok = normalizeRFM(x, tx, T)
	if !ok {
		return 0, false
	}
	// The checks and P(alive) once, not per month: the horizon is within
	// maxTime (checked above).
	alive := bg.pAliveNorm(x, tx, T)
	var total, prev float64
	disc := 1.0
	for i := 1; i <= horizonMonths; i++ {
		cur, ok := bg.expectedNorm(alive, float64(i)*u, x, T)
		if !ok {
			return 0, false
		}
		disc /= 1 + d
		// Cumulative expectations are non-decreasing in t; clamp rounding.
		total += math.Max(0, cur-prev) * disc
		prev = cur
	}
	v := total * spend
	if !finite(v) {
		return 0, false
	}
	return v, true
}
