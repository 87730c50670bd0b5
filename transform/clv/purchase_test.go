package clv

import (
	"math"
	"testing"
)

// simpsonPurchase is the reference for ParetoNBD.ProbabilityPurchase given
// alive: ∫_0^t E[λe^{−λu}]·E[e^{−μu}] du with λ ~ Gamma(r+x, α+T) and
// μ ~ Gamma(s, β+T), the posteriors of an alive customer, by a composite
// Simpson rule of n panels directly in u (the implementation integrates in
// another variable with Gauss-Legendre).
func simpsonPurchase(r, alpha, s, beta, t, x, T float64, n int) float64 {
	k := r + x
	f := func(u float64) float64 {
		return math.Exp(math.Log(k) - math.Log(alpha+T) - (k+1)*math.Log1p(u/(alpha+T)) - s*math.Log1p(u/(beta+T)))
	}
	h := t / float64(n)
	sum := f(0) + f(t)
	for i := 1; i < n; i++ {
		w := 2.0
		if i%2 == 1 {
			w = 4
		}
		sum += w * f(float64(i)*h)
	}
	return sum * h / 3
}

// TestProbabilityPurchase: P(a purchase in the next t) for Pareto/NBD counts
// the chance of dying before buying within t (the customer churn_risk calls
// lapsed), checked against an independent quadrature over moderate and
// extreme parameters, against the no-dropout closed form at s = 0, and
// against BG/NBD's closed form P(alive)·(1 − ((α+T)/(α+T+t))^{r+x})
// (BG/NBD customers die only right after a purchase).
func TestProbabilityPurchase(t *testing.T) {
	for _, m := range []ParetoNBD{
		{R: 0.4, Alpha: 100, S: 0.8, Beta: 240},
		{R: 0.553, Alpha: 10.578 * 7, S: 0.606, Beta: 11.669 * 7},
		{R: 5, Alpha: 2, S: 3, Beta: 10},
		{R: 0.01, Alpha: 5000, S: 20, Beta: 50},
		{R: 200, Alpha: 1, S: 0.001, Beta: 1e6},
	} {
		for _, c := range []struct{ x, tx, T float64 }{{0, 0, 1}, {0, 0, 400}, {2, 50, 300}, {40, 700, 730}, {150, 300, 365}} {
			for _, h := range []float64{7, 90, 365} {
				got := m.ProbabilityPurchase(h, c.x, c.tx, c.T)
				want := m.ProbabilityAlive(c.x, c.tx, c.T) * simpsonPurchase(m.R, m.Alpha, m.S, m.Beta, h, c.x, c.T, 400000)
				if !(got >= 0 && got <= 1) || math.Abs(got-want) > 1e-9+1e-7*want {
					t.Errorf("%+v P(purchase in %v | x=%v, t_x=%v, T=%v) = %v, reference %v", m, h, c.x, c.tx, c.T, got, want)
				}
				// dying within the horizon only lowers it
				noDeath := m.ProbabilityAlive(c.x, c.tx, c.T) * -math.Expm1(-(m.R+c.x)*math.Log1p(h/(m.Alpha+c.T)))
				if got > noDeath*(1+1e-12) {
					t.Errorf("%+v: %v above the no-dropout bound %v", m, got, noDeath)
				}
			}
		}
	}
	nbd := ParetoNBD{R: 0.7, Alpha: 40, S: 0, Beta: 1}
	if got, want := nbd.ProbabilityPurchase(90, 3, 100, 200), 1-math.Pow(240.0/330, 3.7); math.Abs(got-want) > 1e-12 {
		t.Errorf("s = 0: %v, want the closed form %v", got, want)
	}
	bg := BGNBD{R: 0.24, Alpha: 30, A: 0.79, B: 2.4}
	for _, c := range []struct{ x, tx, T float64 }{{0, 0, 30}, {1, 40, 200}, {5, 150, 260}} {
		got := bg.ProbabilityPurchase(90, c.x, c.tx, c.T)
		want := bg.ProbabilityAlive(c.x, c.tx, c.T) * (1 - math.Pow((bg.Alpha+c.T)/(bg.Alpha+c.T+90), bg.R+c.x))
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("BG/NBD x=%v: %v, want %v", c.x, got, want)
		}
	}
	if v := (ParetoNBD{R: -1, Alpha: 1, S: 1, Beta: 1}).ProbabilityPurchase(90, 0, 0, 10); v != 0 {
		t.Errorf("invalid parameters: %v, want 0", v)
	}
}
