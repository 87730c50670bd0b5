package clv

import (
	"math"
	"strings"
	"testing"
)

// repeat returns n copies of c.
func repeat(c Customer, n int) []Customer {
	out := make([]Customer, n)
	for i := range out {
		out[i] = c
	}
	return out
}

// Degenerate data never panic, never produce NaN/Inf, and set Fallback.
func TestDegenerateData(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	varied := simulate(11, 400, cdnowLike, true)
	equalSpend := append([]Customer(nil), varied...)
	for i := range equalSpend {
		if equalSpend[i].Frequency > 0 {
			equalSpend[i].Monetary = 25
		}
	}
	cases := []struct {
		name       string
		data       []Customer
		opts       FitOptions
		bgFallback string // substring expected in BG Fallback; "" = must fit
		ggFallback string
	}{
		{"zero customers", nil, FitOptions{}, "zero-rate", "only 0 repeat"},
		{"one customer", []Customer{{3, 10, 20, 15}}, FitOptions{}, "only 1 valid", "only 1 repeat"},
		{"one customer no repeats", []Customer{{0, 0, 20, 0}}, FitOptions{}, "zero-rate", "only 0 repeat"},
		{"nobody repeats", repeat(Customer{0, 0, 30, 0}, 500), FitOptions{}, "zero-rate", "only 0 repeat"},
		{"all same day (T=0)", repeat(Customer{0, 0, 0, 0}, 500), FitOptions{}, "all customer ages T are 0", "only 0 repeat"},
		{"all invalid rows", repeat(Customer{nan, -1, inf, nan}, 50), FitOptions{}, "zero-rate", "only 0 repeat"},
		{"few repeaters", append(repeat(Customer{0, 0, 30, 0}, 100), repeat(Customer{2, 10, 30, 20}, 3)...), FitOptions{}, "only 3 repeat", "only 3 repeat"},
		{"identical repeaters (no dropout signal)", repeat(Customer{3, 30, 30, 20}, 200), FitOptions{}, "no-dropout NBD", "all mean spends are equal"},
		{"all spends equal", equalSpend, FitOptions{}, "", "all mean spends are equal"},
		{"optimiser stopped after 1 iteration", varied, FitOptions{MaxIterations: 1}, "optimiser did not converge", "optimiser did not converge"},
		{"huge values", []Customer{{1e6, 1e9, 1e9, 1e12}, {0, 0, 1e9, 0}, {5, 1, 2, 1e-9}}, FitOptions{MinCustomers: 1, MinRepeaters: 1}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bg, err := FitBGNBD(c.data, c.opts)
			if err != nil {
				t.Fatalf("FitBGNBD: %v", err)
			}
			gg, err := FitGammaGamma(c.data, c.opts)
			if err != nil {
				t.Fatalf("FitGammaGamma: %v", err)
			}
			t.Logf("BG: r=%.4g α=%.4g a=%.4g b=%.4g fallback=%q", bg.R, bg.Alpha, bg.A, bg.B, bg.Fallback)
			t.Logf("GG: p=%.4g q=%.4g γ=%.4g fallback=%q", gg.P, gg.Q, gg.Gamma, gg.Fallback)
			if c.bgFallback != "" && !strings.Contains(bg.Fallback, c.bgFallback) {
				t.Errorf("BG fallback %q, want it to mention %q", bg.Fallback, c.bgFallback)
			}
			if c.ggFallback != "" && !strings.Contains(gg.Fallback, c.ggFallback) {
				t.Errorf("GG fallback %q, want it to mention %q", gg.Fallback, c.ggFallback)
			}
			if bg.Fallback != "" && (bg.Converged || bg.LogLik != 0) {
				t.Errorf("fallback model reports Converged=%v LogLik=%v", bg.Converged, bg.LogLik)
			}
			checkFinitePredictions(t, bg, gg, c.data)
		})
	}
}

// checkFinitePredictions evaluates every public prediction on the data
// and on a grid of edge inputs (including invalid ones) and fails on any
// NaN, Inf or out-of-range value.
func checkFinitePredictions(t *testing.T, bg BGNBD, gg GammaGamma, data []Customer) {
	t.Helper()
	nan, inf := math.NaN(), math.Inf(1)
	inputs := append([]Customer(nil), data...)
	for _, v := range []float64{0, 1e-300, 1, 39, 1e6, 1e13, -1, nan, inf} {
		inputs = append(inputs, Customer{v, v, v, v}, Customer{2, 1, v, v}, Customer{v, 0, 10, 5})
	}
	for _, c := range inputs {
		p := bg.ProbabilityAlive(c.Frequency, c.Recency, c.T)
		if !finite(p) || p < 0 || p > 1 {
			t.Fatalf("P(alive|%+v) = %v", c, p)
		}
		for _, tt := range []float64{0, 1, 52, 1e4, -1, nan} {
			if e := bg.ExpectedPurchases(tt, c.Frequency, c.Recency, c.T); !finite(e) || e < 0 {
				t.Fatalf("E[Y(%v)|%+v] = %v", tt, c, e)
			}
		}
		if s := gg.ConditionalExpectedSpend(c.Frequency, c.Monetary); !finite(s) {
			t.Fatalf("spend(%+v) = %v", c, s)
		}
		for _, h := range []int{0, 1, 12, -1} {
			if v := CLV(bg, gg, c.Frequency, c.Recency, c.T, c.Monetary, h, 0.01, 4.345); !finite(v) {
				t.Fatalf("CLV(%+v, %d) = %v", c, h, v)
			}
		}
	}
	if e := bg.ExpectedPurchasesNew(52); !finite(e) || e < 0 {
		t.Fatalf("E[X(52)] = %v", e)
	}
}

// Fallback predictions follow the documented rules.
func TestFallbackRules(t *testing.T) {
	// Few customers: NBD without dropout, rate (x+1)/(α+T), α = ΣT/Σx.
	data := []Customer{{3, 10, 20, 15}, {1, 5, 10, 30}, {0, 0, 10, 0}}
	bg, _ := FitBGNBD(data, FitOptions{})
	alpha := 40.0 / 4
	if bg.R != 1 || bg.A != 0 || bg.B != 1 || bg.Alpha != alpha {
		t.Fatalf("fallback params %+v", bg)
	}
	if got, want := bg.ExpectedPurchases(10, 3, 10, 20), 10*(3+1)/(alpha+20); relErr(got, want) > 1e-12 {
		t.Errorf("fallback E = %v, want %v", got, want)
	}
	if p := bg.ProbabilityAlive(3, 1, 20); p != 1 {
		t.Errorf("fallback P(alive) = %v, want 1", p)
	}
	// Nobody repeats: zero purchases.
	zero, _ := FitBGNBD(repeat(Customer{0, 0, 30, 0}, 100), FitOptions{})
	if e := zero.ExpectedPurchases(52, 0, 0, 30); e != 0 {
		t.Errorf("zero-rate E = %v", e)
	}
	// Gamma-Gamma: own mean, population mean for x = 0.
	gg, _ := FitGammaGamma(data, FitOptions{})
	if gg.Fallback == "" {
		t.Fatal("expected Gamma-Gamma fallback")
	}
	if got := gg.ConditionalExpectedSpend(3, 15); math.Abs(got-15) > 1e-6 {
		t.Errorf("fallback spend for x=3 = %v, want 15", got)
	}
	if got := gg.ConditionalExpectedSpend(0, 0); math.Abs(got-22.5) > 1e-9 {
		t.Errorf("fallback spend for x=0 = %v, want population mean 22.5", got)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []FitOptions{{Penalizer: -1}, {Penalizer: math.NaN()}, {MaxIterations: -3}} {
		if _, err := FitBGNBD(nil, o); err == nil || !strings.Contains(err.Error(), "fitting BG/NBD") {
			t.Errorf("%+v: err = %v", o, err)
		}
		if _, err := FitGammaGamma(nil, o); err == nil || !strings.Contains(err.Error(), "fitting Gamma-Gamma") {
			t.Errorf("%+v: err = %v", o, err)
		}
	}
}

// The penalizer shrinks log-parameters towards 0 and still converges.
func TestPenalizer(t *testing.T) {
	cs := loadSummaryCSV(t, "cdnow_customers_summary.csv")
	plain, _ := FitBGNBD(cs, FitOptions{})
	pen, err := FitBGNBD(cs, FitOptions{Penalizer: 0.01})
	if err != nil || pen.Fallback != "" {
		t.Fatalf("penalized fit: %v %q", err, pen.Fallback)
	}
	norm := func(m BGNBD) float64 {
		return math.Hypot(math.Hypot(math.Log(m.R), math.Log(m.Alpha)), math.Hypot(math.Log(m.A), math.Log(m.B)))
	}
	if norm(pen) >= norm(plain) || pen.LogLik >= plain.LogLik {
		t.Errorf("penalty did not shrink: plain %+v penalized %+v", plain, pen)
	}
}
