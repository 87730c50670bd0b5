package clv

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mathext"
)

// The hypergeometric series agrees with gonum's Cephes-based Hypergeo where
// the latter is reliable (moderate parameters).
func TestHyp2F1MatchesGonum(t *testing.T) {
	for _, a := range []float64{-1.7, -0.2, 0.243, 1.5, 4} {
		for _, b := range []float64{-0.207, 0.5, 2.4, 6} {
			for _, c := range []float64{0.8, 2.2, 5.5, 30} {
				for _, z := range []float64{1e-6, 0.1, 0.47, 0.8, 0.95} {
					s, ok := hyp2f1Tail(a, b, c, z, 100000)
					if !ok {
						t.Errorf("2F1(%v,%v;%v;%v): series did not converge", a, b, c, z)
						continue
					}
					want := mathext.Hypergeo(a, b, c, z)
					if math.Abs(1+s-want) > 1e-11*math.Max(1, math.Abs(want)) {
						t.Errorf("2F1(%v,%v;%v;%v) = %.15g, gonum %.15g", a, b, c, z, 1+s, want)
					}
				}
			}
		}
	}
	if _, ok := hyp2f1Tail(1, 1, -2, 0.5, 100); ok {
		t.Error("pole c = -2 not reported")
	}
}

// The z-series of the conditional expectation (Euler-transformed ₂F₁) and
// tanh-sinh quadrature of the Beta expectation agree to 1e-9 over a wide
// grid (z ≤ 0.95, beyond the z ≤ 0.8 where condG uses the series), which
// checks both.
func TestCondGSeriesMatchesQuadrature(t *testing.T) {
	var checked, rejected int
	for _, r := range []float64{0.05, 0.243, 2, 15} {
		for _, alpha := range []float64{0.5, 4.414, 60} {
			for _, a := range []float64{0.1, 0.793, 1.5, 4, 25} {
				for _, b := range []float64{0.3, 2.426, 12} {
					for _, x := range []float64{0, 1, 3, 40, 400} {
						for _, T := range []float64{0, 5, 38.86, 300} {
							for _, tt := range []float64{1e-4, 1, 39, 500} {
								k := tt / (alpha + T)
								z := tt / (alpha + T + tt)
								if z > 0.95 || a+b+x-1 < seriesMinC {
									continue
								}
								gs, ok := gSeries(r, a, b, x, k, z)
								if !ok {
									rejected++ // ill-conditioned: condG would use quadrature
									continue
								}
								gq := gBeta(r+x, a, b+x, k)
								if relErr(gs, gq) > 1e-9 {
									t.Errorf("r=%v α=%v a=%v b=%v x=%v T=%v t=%v: series %.15g quadrature %.15g",
										r, alpha, a, b, x, T, tt, gs, gq)
								}
								checked++
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d parameter combinations checked, %d rejected as ill-conditioned", checked, rejected)
	if rejected > checked/20 {
		t.Errorf("series rejected too often")
	}
}

// FHL (2005) eq. 7, E[X(t)] with the un-transformed ₂F₁ from gonum, for
// moderate parameters.
func TestExpectedPurchasesNewMatchesEq7(t *testing.T) {
	for _, p := range [][4]float64{{0.243, 4.414, 0.793, 2.426}, {1.2, 10, 2.5, 3}, {0.5, 1, 0.3, 0.9}} {
		m := BGNBD{R: p[0], Alpha: p[1], A: p[2], B: p[3]}
		for _, tt := range []float64{0.5, 5, 39, 78} {
			r, alpha, a, b := p[0], p[1], p[2], p[3]
			want := (a + b - 1) / (a - 1) * (1 - math.Pow(alpha/(alpha+tt), r)*mathext.Hypergeo(r, b, a+b-1, tt/(alpha+tt)))
			if got := m.ExpectedPurchasesNew(tt); relErr(got, want) > 1e-9 {
				t.Errorf("%v t=%v: E[X(t)] = %.12g, eq. 7 %.12g", p, tt, got, want)
			}
		}
	}
}

// E[X(t)] against a simulation of the model (300k customers): the
// closed form and the simulator used by benchmarks check each other.
func TestExpectedPurchasesNewMatchesSimulation(t *testing.T) {
	sp := cdnowLike
	m := BGNBD{R: sp.r, Alpha: sp.alpha, A: sp.a, B: sp.b}
	cs := simulate(7, 300000, sp, false)
	// Each simulated x_i is a draw of X(T_i), so mean(x) should match
	// mean(E[X(T_i)]) within sampling error.
	var sumX, sumE, sumSq float64
	for _, c := range cs {
		sumX += c.Frequency
		sumSq += c.Frequency * c.Frequency
		sumE += m.ExpectedPurchasesNew(c.T)
	}
	n := float64(len(cs))
	sd := math.Sqrt((sumSq/n - (sumX/n)*(sumX/n)) / n)
	t.Logf("mean repeat purchases: simulated %.5f ± %.5f, model %.5f", sumX/n, sd, sumE/n)
	if math.Abs(sumX/n-sumE/n) > 4*sd {
		t.Errorf("simulation mean %.5f vs model %.5f (sd %.5f)", sumX/n, sumE/n, sd)
	}
}

// Limits and continuity of the conditional expectation.
func TestExpectedPurchasesLimits(t *testing.T) {
	// a = 0: no dropout, NBD posterior mean rate (r+x)/(α+T).
	nbd := BGNBD{R: 0.7, Alpha: 3, A: 0, B: 1}
	if got, want := nbd.ExpectedPurchases(10, 4, 20, 30), 10*(0.7+4)/(3+30); relErr(got, want) > 1e-12 {
		t.Errorf("a=0: %v, want %v", got, want)
	}
	tiny := BGNBD{R: 0.7, Alpha: 3, A: 1e-9, B: 1}
	if got, want := tiny.ExpectedPurchases(10, 4, 30, 30), 10*(0.7+4)/(3+30); relErr(got, want) > 1e-6 {
		t.Errorf("a→0: %v, want %v", got, want)
	}
	// Continuity across a = 1 (quadrature near, series away from it).
	for _, x := range []float64{0, 2} {
		at := BGNBD{R: 0.5, Alpha: 4, A: 1, B: 2}.ExpectedPurchases(39, x, 10, 38)
		for _, da := range []float64{-2e-3, -1e-3, 1e-3, 2e-3} {
			near := BGNBD{R: 0.5, Alpha: 4, A: 1 + da, B: 2}.ExpectedPurchases(39, x, 10, 38)
			if relErr(near, at) > 5*math.Abs(da) {
				t.Errorf("x=%v: E at a=1 %.10g, at a=1%+g %.10g", x, at, da, near)
			}
		}
	}
	// Long horizons (z → 1, quadrature path) continue the series path.
	m := BGNBD{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
	zSwitch := seriesMaxZ / (1 - seriesMaxZ) * (m.Alpha + 0) // t where z = seriesMaxZ at T = 0
	below, above := m.ExpectedPurchases(zSwitch*(1-1e-9), 0, 0, 0), m.ExpectedPurchases(zSwitch*(1+1e-9), 0, 0, 0)
	if relErr(below, above) > 1e-8 {
		t.Errorf("discontinuity at the series/quadrature switch: %.12g vs %.12g", below, above)
	}
}

// Properties of P(alive) and E[Y(t)] over a grid.
func TestPredictionProperties(t *testing.T) {
	models := []BGNBD{
		{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426},
		{R: 2, Alpha: 30, A: 1.8, B: 5},
		{R: 0.1, Alpha: 0.5, A: 0.2, B: 0.4},
	}
	for _, m := range models {
		for _, T := range []float64{0, 1, 10, 40, 400} {
			if p := m.ProbabilityAlive(0, 0, T); p != 1 {
				t.Errorf("%+v: P(alive|x=0,T=%v) = %v, want 1", m, T, p)
			}
		}
		for _, x := range []float64{1, 2, 7, 60} {
			for _, tx := range []float64{0, 5, 20} {
				prevP := 2.0
				for _, T := range []float64{20, 21, 30, 50, 100, 1000} {
					p := m.ProbabilityAlive(x, tx, T)
					if !(p >= 0 && p <= 1) {
						t.Fatalf("P(alive) = %v out of [0,1]", p)
					}
					if p > prevP {
						t.Errorf("%+v x=%v tx=%v: P(alive) increases with T (%v → %v at T=%v)", m, x, tx, prevP, p, T)
					}
					prevP = p
				}
				if m.ProbabilityAlive(x, tx, 20) > m.ProbabilityAlive(x, 20, 20) {
					t.Errorf("%+v: P(alive) should increase with recency", m)
				}
				prevE := 0.0
				for _, tt := range []float64{0, 0.1, 1, 10, 39, 200, 2000, 1e5} {
					e := m.ExpectedPurchases(tt, x, tx, 20)
					if !finite(e) || e < prevE*(1-1e-12) {
						t.Errorf("%+v x=%v tx=%v: E[Y(%v)] = %v not increasing (prev %v)", m, x, tx, tt, e, prevE)
					}
					// (1−e^{−λpt})/p ≤ λt, so E ≤ P(alive)·t·(r+x)/(α+T).
					if bound := m.ProbabilityAlive(x, tx, 20) * tt * (m.R + x) / (m.Alpha + 20); e > bound*(1+1e-9)+1e-300 {
						t.Errorf("%+v: E[Y(%v)] = %v exceeds the no-dropout bound %v", m, tt, e, bound)
					}
					prevE = e
				}
			}
		}
	}
}

// Analytic gradients of both likelihoods match central differences.
func TestLikelihoodGradients(t *testing.T) {
	cs := simulate(3, 3000, cdnowLike, true)
	acc := newBGAccumulator()
	gacc := newGGAccumulator()
	for _, c := range cs {
		acc.add(c.Frequency, c.Recency, c.T)
		gacc.add(c.Frequency, c.Monetary)
	}
	check := func(name string, f objective, x []float64) {
		g := make([]float64, len(x))
		f(x, g)
		for i := range x {
			h := 1e-6
			xp := append([]float64(nil), x...)
			xm := append([]float64(nil), x...)
			xp[i] += h
			xm[i] -= h
			num := (f(xp, nil) - f(xm, nil)) / (2 * h)
			if math.Abs(num-g[i]) > 1e-6*math.Max(1, math.Abs(num)) {
				t.Errorf("%s: d/dθ%d analytic %.9g numeric %.9g", name, i, g[i], num)
			}
		}
	}
	bg := acc.build()
	check("BG/NBD", bg.negLogLik, []float64{math.Log(0.3), math.Log(5), math.Log(0.6), math.Log(3)})
	check("BG/NBD", bg.negLogLik, []float64{math.Log(2), math.Log(0.5), math.Log(3), math.Log(0.4)})
	gg := gacc.build()
	check("Gamma-Gamma", gg.negLogLik, []float64{math.Log(5), math.Log(3), math.Log(12)})
	check("Gamma-Gamma", gg.negLogLik, []float64{math.Log(0.7), math.Log(0.8), math.Log(100)})
}

// Gamma-Gamma conditional expectation: weighted average, limits, fallback.
func TestConditionalExpectedSpend(t *testing.T) {
	gg := GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44}
	pop := gg.P * gg.Gamma / (gg.Q - 1)
	if got := gg.ConditionalExpectedSpend(0, 123); relErr(got, pop) > 1e-12 {
		t.Errorf("x=0: %v, want population mean %v", got, pop)
	}
	for _, x := range []float64{1, 5, 50} {
		got := gg.ConditionalExpectedSpend(x, 10)
		w := gg.P * x / (gg.P*x + gg.Q - 1)
		if want := w*10 + (1-w)*pop; relErr(got, want) > 1e-12 {
			t.Errorf("x=%v: %v, want %v", x, got, want)
		}
	}
	if got := gg.ConditionalExpectedSpend(1e6, 10); math.Abs(got-10) > 1e-3 {
		t.Errorf("large x should give own mean, got %v", got)
	}
	// q ≤ 1: infinite population mean; x=0 uses PopulationMean.
	heavy := GammaGamma{P: 2, Q: 0.8, Gamma: 5, PopulationMean: 42}
	if got := heavy.ConditionalExpectedSpend(0, 0); got != 42 {
		t.Errorf("q<1, x=0: %v, want PopulationMean 42", got)
	}
	if got := heavy.ConditionalExpectedSpend(3, 10); relErr(got, 2*(5+30)/(6+0.8-1)) > 1e-12 {
		t.Errorf("q<1, x=3: %v", got)
	}
	// Fallback parameters reproduce own mean and population mean.
	fb := GammaGamma{P: fallbackP, Q: 2, Gamma: 35.0 / fallbackP}
	if got := fb.ConditionalExpectedSpend(1, 20); math.Abs(got-20) > 1e-6 {
		t.Errorf("fallback x=1: %v, want 20", got)
	}
	if got := fb.ConditionalExpectedSpend(0, 0); math.Abs(got-35) > 1e-9 {
		t.Errorf("fallback x=0: %v, want 35", got)
	}
}

// CLV equals the explicit discounted sum and scales with spend.
func TestCLVDefinition(t *testing.T) {
	bg := BGNBD{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
	gg := GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44}
	x, tx, T, m := 3.0, 20.0, 38.0, 30.0
	u, d := 4.345, 0.01
	var want, prev float64
	for i := 1; i <= 24; i++ {
		cur := bg.ExpectedPurchases(float64(i)*u, x, tx, T)
		want += (cur - prev) / math.Pow(1+d, float64(i))
		prev = cur
	}
	want *= gg.ConditionalExpectedSpend(x, m)
	if got := CLV(bg, gg, x, tx, T, m, 24, d, u); relErr(got, want) > 1e-12 {
		t.Errorf("CLV = %v, want %v", got, want)
	}
	if got := CLV(bg, gg, x, tx, T, m, 0, d, u); got != 0 {
		t.Errorf("0-month horizon: %v", got)
	}
	// No discount: CLV = E[Y(H·u)] · spend.
	if got, want := CLV(bg, gg, x, tx, T, m, 12, 0, u), bg.ExpectedPurchases(12*u, x, tx, T)*gg.ConditionalExpectedSpend(x, m); relErr(got, want) > 1e-12 {
		t.Errorf("undiscounted CLV %v, want %v", got, want)
	}
}

// Where condG uses quadrature (z > 0.95, small a+b+x−1, a ≈ 1) the series
// still converges if given enough terms; compare the two there.
func TestQuadratureOutsideSeriesRegion(t *testing.T) {
	type tc struct{ r, alpha, a, b, x, T, t float64 }
	var cases []tc
	for _, x := range []float64{0, 1, 10} {
		for _, tt := range []float64{100, 400, 2000} { // z up to 0.9989 at T=0
			cases = append(cases, tc{0.243, 4.414, 0.793, 2.426, x, 0, tt}, tc{1.5, 2, 2.5, 0.8, x, 1, tt})
		}
	}
	cases = append(cases,
		tc{0.4, 3, 0.3, 0.85, 0, 10, 20},      // a+b−1 = 0.15
		tc{0.4, 3, 0.2, 0.81, 0, 10, 20},      // a+b−1 = 0.01
		tc{0.4, 3, 1 + 5e-4, 2, 0, 10, 20},    // a ≈ 1
		tc{0.4, 3, 1 - 5e-4, 2, 3, 10, 20},    // a ≈ 1
		tc{0.4, 3, 0.793, 2.426, 200, 50, 30}, // heavy buyer
	)
	for _, c := range cases {
		k := c.t / (c.alpha + c.T)
		z := c.t / (c.alpha + c.T + c.t)
		cc := c.a + c.b + c.x - 1
		s, ok := hyp2f1Tail(c.a+c.b-1-c.r, c.a-1, cc, z, 5_000_000)
		if !ok {
			t.Fatalf("%+v: long series did not converge", c)
		}
		series := cc / (c.a - 1) * -math.Expm1(-(c.a-1)*math.Log1p(k)+math.Log1p(s))
		quad := gBeta(c.r+c.x, c.a, c.b+c.x, k)
		tol := 1e-9
		if math.Abs(c.a-1) < 1e-3 {
			tol = 1e-7 // the series loses digits to the 1/(a−1) cancellation
		}
		if relErr(quad, series) > tol {
			t.Errorf("%+v: quadrature %.15g, long series %.15g", c, quad, series)
		}
	}
}

// The 1−z connection formula (used for z > 0.8) agrees with quadrature
// wherever it reports success, and it does succeed for most of the grid;
// and condG as a whole (whatever path it picks) agrees with quadrature.
func TestConnectionMatchesQuadrature(t *testing.T) {
	var checked, used int
	worst, worstG := 0.0, 0.0
	for _, r := range []float64{0.05, 0.243, 2, 15} {
		for _, a := range []float64{0.1, 0.793, 1.5, 4, 25} {
			for _, b := range []float64{0.3, 2.426, 12, 300} {
				for _, x := range []float64{0, 1, 3, 40, 400} {
					for _, z := range []float64{0.81, 0.9, 0.97, 0.995, 0.99999} {
						const alpha, T = 4.414, 10.0
						tt := z / (1 - z) * (alpha + T)
						gq := gBeta(r+x, a, b+x, tt/(alpha+T))
						g := condG(r, alpha, a, b, tt, x, T)
						worstG = math.Max(worstG, relErr(g, gq))
						if relErr(g, gq) > 1e-9 {
							t.Errorf("condG r=%v a=%v b=%v x=%v z=%v: %.15g, quadrature %.15g", r, a, b, x, z, g, gq)
						}
						s := x + r - a + 1
						if a+b+x-1 < seriesMinC || math.Abs(s-math.Round(s)) < minSDist {
							continue
						}
						checked++
						gc, ok := gConnection(r, alpha, a, b, tt, x, T)
						if !ok {
							continue
						}
						used++
						e := relErr(gc, gq)
						worst = math.Max(worst, e)
						if e > 1e-9 {
							t.Errorf("r=%v a=%v b=%v x=%v z=%v: connection %.15g quadrature %.15g", r, a, b, x, z, gc, gq)
						}
					}
				}
			}
		}
	}
	t.Logf("connection usable for %d of %d combinations, worst relative difference %.2g; condG worst %.2g", used, checked, worst, worstG)
	if used < checked/2 {
		t.Errorf("connection formula rejected too often (%d of %d)", checked-used, checked)
	}
}

// Changing the time unit (weeks → days) scales α and leaves r, a, b and
// all predictions unchanged.
func TestTimeUnitInvariance(t *testing.T) {
	weeks := loadSummaryCSV(t, "cdnow_customers_summary.csv")
	days := make([]Customer, len(weeks))
	for i, c := range weeks {
		days[i] = Customer{Frequency: c.Frequency, Recency: 7 * c.Recency, T: 7 * c.T}
	}
	w, _ := FitBGNBD(weeks, FitOptions{})
	d, _ := FitBGNBD(days, FitOptions{})
	if d.Fallback != "" || relErr(d.R, w.R) > 1e-5 || relErr(d.Alpha, 7*w.Alpha) > 1e-5 || relErr(d.A, w.A) > 1e-4 || relErr(d.B, w.B) > 1e-4 {
		t.Fatalf("weeks %+v\ndays %+v", w, d)
	}
	gg := GammaGamma{P: 6.25, Q: 3.74, Gamma: 15.44}
	cw := CLV(w, gg, 2, 30.43, 38.86, 22.35, 24, 0.01, 52.1775/12)
	cd := CLV(d, gg, 2, 7*30.43, 7*38.86, 22.35, 24, 0.01, 365.25/12)
	if relErr(cd, cw) > 1e-4 {
		t.Errorf("24-month CLV in weeks %v, in days %v", cw, cd)
	}
}
