package clv

import (
	"math"
	"strings"
	"testing"
)

// A population drawn from the NBD (nobody ever drops out, known r and α):
// both purchase models' fits are flagged at_boundary, by the
// likelihood-ratio test against the no-dropout limit, and the NBD fit
// recovers the generating parameters. The fits themselves are kept.
func TestNoDropoutPopulationAtBoundary(t *testing.T) {
	sp := simParams{r: 0.5, alpha: 6, a: 0, b: 1, p: 6.25, q: 3.74, gamma: 15.44} // a = 0: p = 0, no dropout
	cs := simulate(7, 20_000, sp, false)
	acc := newBGAccumulator()
	for _, c := range cs {
		acc.add(c.Frequency, c.Recency, c.T)
	}
	d := acc.build()
	res := minimise(d.nbdNegLogLik, []float64{0, 0}, 1000)
	if !res.converged || relErr(math.Exp(res.x[0]), sp.r) > 0.1 || relErr(math.Exp(res.x[1]), sp.alpha) > 0.1 {
		t.Errorf("NBD fit r=%.4f α=%.4f (converged %v), generated from r=%g α=%g", math.Exp(res.x[0]), math.Exp(res.x[1]), res.converged, sp.r, sp.alpha)
	}
	bg, pn := fitBoth(t, cs)
	t.Logf("BG/NBD r=%.4g α=%.4g a=%.4g b=%.4g LL %.2f; Pareto/NBD r=%.4g α=%.4g s=%.4g β=%.4g LL %.2f; no-dropout LL %.2f",
		bg.R, bg.Alpha, bg.A, bg.B, bg.LogLik, pn.R, pn.Alpha, pn.S, pn.Beta, pn.LogLik, bg.NoDropoutLogLik)
	t.Logf("BG/NBD: %s (fallback %q); Pareto/NBD: %s (fallback %q)", bg.BoundaryReason, bg.Fallback, pn.BoundaryReason, pn.Fallback)
	for _, m := range []struct {
		name, reason, fallback string
		boundary               bool
	}{{"BG/NBD", bg.BoundaryReason, bg.Fallback, bg.Boundary}, {"Pareto/NBD", pn.BoundaryReason, pn.Fallback, pn.Boundary}} {
		if !m.boundary || !strings.Contains(m.reason, "ΔLL vs no-dropout NBD = ") || !strings.HasSuffix(m.reason, "< 1.92: dropout not identified") {
			t.Errorf("%s: boundary %v, reason %q; want the ΔLL reason", m.name, m.boundary, m.reason)
		}
		if m.fallback != "" {
			t.Errorf("%s: the flag must not replace the fit, fallback %q", m.name, m.fallback)
		}
	}
}

// On the CDNOW sample, where customers do drop out, neither fit is flagged:
// both beat the no-dropout NBD by far more than the test's 1.92.
func TestCDNOWDropoutIdentified(t *testing.T) {
	cs := loadSummaryCSV(t, "cdnow_customers_summary.csv")
	bg, pn := fitBoth(t, cs)
	t.Logf("LL BG/NBD %.2f, Pareto/NBD %.2f, no-dropout NBD %.2f", bg.LogLik, pn.LogLik, bg.NoDropoutLogLik)
	if bg.Boundary || bg.BoundaryReason != "" || pn.Boundary || pn.BoundaryReason != "" {
		t.Errorf("flagged: BG/NBD %v %q, Pareto/NBD %v %q", bg.Boundary, bg.BoundaryReason, pn.Boundary, pn.BoundaryReason)
	}
	if bg.NoDropoutLogLik != pn.NoDropoutLogLik || !(bg.LogLik-bg.NoDropoutLogLik > 100) {
		t.Errorf("no-dropout LL %v / %v against BG/NBD %v", bg.NoDropoutLogLik, pn.NoDropoutLogLik, bg.LogLik)
	}
}

// boundaryReason names the farthest log-parameter.
func TestBoundaryReason(t *testing.T) {
	if got := boundaryReason([4]string{"r", "α", "a", "b"}, []float64{0.1, 2, -23.14, 21}); got != "|log a| = 23.1 > 20" {
		t.Errorf("got %q", got)
	}
}

// fitBoth fits both purchase models to cs.
func fitBoth(t *testing.T, cs []Customer) (BGNBD, ParetoNBD) {
	t.Helper()
	bg, err := FitBGNBD(cs, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pn, err := FitParetoNBD(cs, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return bg, pn
}
