package clv

import (
	"math"
	"math/big"
	"testing"
)

// bigExpected evaluates FHL 2005 eq. 10 for a customer alive at T,
// (a+b+x−1)/(a−1) · [1 − (1−z)^{r+x} ₂F₁(r+x, b+x; a+b+x−1; z)], with the
// ₂F₁ series summed in 512-bit floats, so that neither underflow nor the
// cancellation in the bracket can hide: the reference for extreme fits.
func bigExpected(r, alpha, a, b, t, x, T float64) float64 {
	const prec = 512
	f := func(v float64) *big.Float { return new(big.Float).SetPrec(prec).SetFloat64(v) }
	m, bx, c := r+x, b+x, a+b+x-1
	z := t / (alpha + T + t)
	sum, term := f(1), f(1)
	zb := f(z)
	for k := 0; k < 200000; k++ {
		kf := float64(k)
		term.Mul(term, f((m+kf)*(bx+kf)))
		term.Quo(term, f((c+kf)*(kf+1)))
		term.Mul(term, zb)
		sum.Add(sum, term)
		if term.Sign() == 0 || new(big.Float).Quo(term, sum).Cmp(f(1e-40)) < 0 {
			break
		}
	}
	// (1−z)^m in float64 is exact to ~1e-16 relative; the bracket below
	// stays far from 1 for these inputs, so that suffices.
	y := new(big.Float).SetPrec(prec).Mul(sum, f(math.Exp(m*math.Log1p(-z))))
	br := new(big.Float).SetPrec(prec).Sub(f(1), y)
	br.Mul(br, f(c))
	br.Quo(br, f(a-1))
	v, _ := br.Float64()
	return v
}

// TestExtremeDropoutParameters: a marketplace where 97 % buy once drove the
// BG/NBD fit to a ≈ 2.85e6, b ≈ 5.0e6; expected purchases must stay finite,
// non-zero and right against the high-precision evaluation, and so must CLV.
func TestExtremeDropoutParameters(t *testing.T) {
	for _, m := range []BGNBD{
		{R: 0.5, Alpha: 30, A: 2.85e6, B: 5.0e6},
		{R: 0.02, Alpha: 900, A: 2.85e6, B: 5.0e6},
		{R: 3, Alpha: 5, A: 1e9, B: 3e9},
	} {
		for _, c := range []struct{ x, tx, T float64 }{{0, 0, 1}, {0, 0, 200}, {0, 0, 700}, {1, 30, 400}, {3, 300, 600}} {
			for _, h := range []float64{30, 365} {
				got := m.ExpectedPurchases(h, c.x, c.tx, c.T)
				want := m.ProbabilityAlive(c.x, c.tx, c.T) * bigExpected(m.R, m.Alpha, m.A, m.B, h, c.x, c.T)
				if !(got > 0) || math.IsInf(got, 0) || math.Abs(got-want) > 1e-9*want {
					t.Errorf("%+v E[Y(%v) | x=%v, t_x=%v, T=%v] = %v, high precision %v", m, h, c.x, c.tx, c.T, got, want)
				}
			}
			gg := GammaGamma{P: 2, Q: 3, Gamma: 50}
			if v := CLV(m, gg, c.x, c.tx, c.T, 40, 12, 0.01, 30); !(v > 0) || math.IsInf(v, 0) {
				t.Errorf("%+v CLV(x=%v, T=%v) = %v, want finite and > 0", m, c.x, c.T, v)
			}
		}
	}
}
