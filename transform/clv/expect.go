package clv

import "math"

// Numerical kernels for the BG/NBD conditional expectation.
//
// Given that a customer is alive at age T, the posterior of the purchase rate
// is λ ~ Gamma(m, α+T) with m = r+x and that of the dropout probability is
// p ~ Beta(a, β) with β = b+x, independently. A live customer with (λ, p)
// makes (1 − e^{−λpt})/p purchases in expectation over the next t time
// units, so
//
//	E[Y(t) | x, t_x, T] = P(alive | x, t_x, T) · G(t; x, T)
//	G = E_p[(1 − (1 + p·k)^{−m}) / p],  k = t/(α+T).
//
// Integrating over p gives the closed form of Fader, Hardie & Lee (2005,
// eq. 10):
//
//	G = (a+b+x−1)/(a−1) · [1 − (1−z)^{m} ₂F₁(m, b+x; a+b+x−1; z)],
//	z = t/(α+T+t).
//
// We evaluate the ₂F₁ after Euler's transformation
// ₂F₁(A,B;C;z) = (1−z)^{C−A−B} ₂F₁(C−A, C−B; C; z), which turns the bracket
// into 1 − (1−z)^{a−1} ₂F₁(a+b−1−r, a−1; a+b+x−1; z). In this form the
// function stays bounded as z → 1 for heavy buyers (large x) instead of
// growing like (1−z)^{a−1−r−x}, so nothing overflows. (lifetimes passes the
// un-transformed form to scipy's hyp2f1.)
//
// For z ≤ 0.8 the power series in z converges quickly. Closer to 1 we use
// the linear transformation to 1−z (Abramowitz & Stegun 15.3.6), whose two
// series converge like (1−z)ⁿ; it needs Γ(±s), s = C−A−B = x+r−a+1, so it
// is skipped when s is within 0.02 of an integer (the two terms would cancel
// catastrophically), and rejected when its terms cancel too much (large b
// or x); in both cases the z-series is used up to z = 0.99.
//
// The closed form has further weak spots: a ≈ 1 (0/0 in the prefactor) and
// a+b+x−1 ≈ 0 or negative (poles of the ₂F₁). There, for z > 0.99 with
// near-integer s, and whenever a series fails, gBeta integrates the
// p-expectation directly with double-exponential (tanh-sinh) quadrature,
// which is robust for any a, β > 0 but ~10× slower. Tests check that all
// paths agree.

// Limits of the regions where each path is used.
const (
	seriesMaxZ      = 0.8   // z-series below, 1−z connection above
	seriesMaxZNearS = 0.99  // z-series limit when the connection is unusable
	minSDist        = 0.02  // min distance of s from an integer for the connection
	seriesMinAm1    = 1e-3  // |a−1| below this uses quadrature
	seriesMinC      = 0.25  // a+b+x−1 below this uses quadrature
	seriesMaxTerms  = 20000 // z ≤ 0.99 needs < 5000 terms
)

// condG returns G(t; x, T) defined above, the expected purchases in the next
// t time units of a customer known to be alive at age T with x repeat
// purchases. Parameters must be valid (r ≥ 0, α > 0, a ≥ 0, b > 0) and
// t, T ≥ 0; the result is finite and ≥ 0 for such inputs.
func condG(r, alpha, a, b, t, x, T float64) float64 {
	m := r + x
	if t == 0 || m == 0 {
		return 0
	}
	k := t / (alpha + T)
	if a == 0 {
		// Beta(0, β) is a point mass at p = 0: nobody ever drops out, and
		// the model is the NBD with posterior mean rate m/(α+T).
		return m * k
	}
	z := t / (alpha + T + t)
	c := a + b + x - 1
	if math.Abs(a-1) >= seriesMinAm1 && c >= seriesMinC {
		if z <= seriesMaxZ {
			if g, ok := gSeries(r, a, b, x, k, z); ok {
				return g
			}
		} else {
			s := x + r - a + 1
			if math.Abs(s-math.Round(s)) >= minSDist {
				if g, ok := gConnection(r, alpha, a, b, t, x, T); ok {
					return g
				}
			}
			if z <= seriesMaxZNearS {
				if g, ok := gSeries(r, a, b, x, k, z); ok {
					return g
				}
			}
		}
		// Large a and b (a fit where almost nobody repeats lands at
		// a ≈ 3e6): the Euler-transformed series needs ~a·z terms and
		// (1−z)^{a−1} underflows, and quadrature misses the narrow Beta
		// peak. The untransformed series converges like (b+x)/c·z there.
		if z <= seriesMaxZNearS {
			if g, ok := gSeriesDirect(r, a, b, x, k, z); ok {
				return g
			}
		}
	}
	return gBeta(m, a, b+x, k)
}

// gSeriesDirect evaluates G with the untransformed series of FHL eq. 10,
// 1 − (1−z)^{r+x} ₂F₁(r+x, b+x; a+b+x−1; z), the bracket formed through
// expm1 so it keeps its relative precision when G is small.
func gSeriesDirect(r, a, b, x, k, z float64) (float64, bool) {
	m, c := r+x, a+b+x-1
	s, ok := hyp2f1Tail(m, b+x, c, z, seriesMaxTerms)
	if !ok || 1+s <= 0 {
		return 0, false
	}
	bracket := -math.Expm1(-m*math.Log1p(k) + math.Log1p(s))
	g := c / (a - 1) * bracket
	if math.IsNaN(g) || math.IsInf(g, 0) || g <= 0 {
		return 0, false
	}
	return g, true
}

// gSeries evaluates G with the Euler-transformed hypergeometric series.
func gSeries(r, a, b, x, k, z float64) (float64, bool) {
	c := a + b + x - 1
	s, ok := hyp2f1Tail(a+b-1-r, a-1, c, z, seriesMaxTerms)
	if !ok || 1+s <= 0 {
		return 0, false
	}
	// log(1−z) = −log1p(k) since 1−z = (α+T)/(α+T+t).
	bracket := -math.Expm1(-(a-1)*math.Log1p(k) + math.Log1p(s))
	g := c / (a - 1) * bracket
	if math.IsNaN(g) || math.IsInf(g, 0) || g < 0 {
		return 0, false
	}
	return g, true
}

// gConnection evaluates G for z close to 1 via the 1−z transformation of
// F = ₂F₁(A, B; C; z), A = a+b−1−r, B = a−1, C = a+b+x−1, s = C−A−B:
//
//	F = Γ(C)Γ(s)/(Γ(C−A)Γ(C−B)) ₂F₁(A, B; 1−s; w)
//	  + w^s Γ(C)Γ(−s)/(Γ(A)Γ(B)) ₂F₁(C−A, C−B; 1+s; w),   w = 1−z,
//
// with C−A = r+x and C−B = b+x, so that
//
//	w^{a−1}F = w^{a−1}·K1·F1 + w^{r+x}·K2·F2.
//
// Gamma ratios are formed in logs (heavy buyers have huge Γ values).
func gConnection(r, alpha, a, b, t, x, T float64) (float64, bool) {
	A, B, C := a+b-1-r, a-1, a+b+x-1
	s := C - A - B
	w := (alpha + T) / (alpha + T + t)
	lw := -math.Log1p(t / (alpha + T))
	f1, ok1 := hyp2f1Tail(A, B, 1-s, w, seriesMaxTerms)
	f2, ok2 := hyp2f1Tail(r+x, b+x, 1+s, w, seriesMaxTerms)
	if !ok1 || !ok2 {
		return 0, false
	}
	lgC, sgC := math.Lgamma(C)
	lgS, sgS := math.Lgamma(s)
	lgNS, sgNS := math.Lgamma(-s)
	lgRX, lgBX := lgamma(r+x), lgamma(b+x)
	e1 := lgC + lgS - lgRX - lgBX + (a-1)*lw
	term1 := float64(sgC*sgS) * math.Exp(e1) * (1 + f1)
	// The exponent is a sum of log-gammas that can be large (heavy
	// buyers); its rounding error, relative to |term|, is ~ε·Σ|summands|.
	errEst := math.Abs(term1) * (math.Abs(lgC) + math.Abs(lgS) + lgRX + lgBX + math.Abs((a-1)*lw) + 1)
	term2 := 0.0
	if !isPole(A) && !isPole(B) { // 1/Γ at a pole is 0: the term vanishes
		lgA, sgA := math.Lgamma(A)
		lgB, sgB := math.Lgamma(B)
		term2 = float64(sgC*sgNS*sgA*sgB) * math.Exp(lgC+lgNS-lgA-lgB+(r+x)*lw) * (1 + f2)
		errEst += math.Abs(term2) * (math.Abs(lgC) + math.Abs(lgNS) + math.Abs(lgA) + math.Abs(lgB) + math.Abs((r+x)*lw) + 1)
	}
	bracket := 1 - term1 - term2
	// Reject when the terms cancel so much that fewer than ~10 digits
	// survive; the caller then uses the z-series or quadrature.
	if 4e-16*(errEst+1) > 1e-10*math.Abs(bracket) {
		return 0, false
	}
	g := C / (a - 1) * bracket
	if math.IsNaN(g) || math.IsInf(g, 0) || g < 0 {
		return 0, false
	}
	return g, true
}

// isPole reports whether y is a pole of Γ (0, −1, −2, …).
func isPole(y float64) bool { return y <= 0 && y == math.Trunc(y) }

// gIntegrand returns g(p) = (1 − (1+pk)^{−m})/p, with its limit m·k at p=0.
func gIntegrand(p, m, k float64) float64 {
	if p == 0 {
		return m * k
	}
	return -math.Expm1(-m*math.Log1p(p*k)) / p
}

// softplus returns log(1+e^y) without overflow.
func softplus(y float64) float64 {
	if y > 0 {
		return y + math.Log1p(math.Exp(-y))
	}
	return math.Log1p(math.Exp(y))
}

// gBeta returns E[g(p)] for p ~ Beta(a, beta) by tanh-sinh quadrature.
//
// Nodes are p = 1/(1+e^{−2u}), u = (π/2)·sinh(v), with log p and log(1−p)
// computed directly from u, so nothing cancels even next to 0 and 1. The
// integrand g·density is positive, so the result is accurate to a relative
// tolerance. The range |v| ≤ vMax reaches p and 1−p down to ~1e-275; the
// Beta mass beyond (not negligible when a or beta is tiny) is added
// analytically, using g ≈ g(0) and g ≈ g(1) there:
// P(p < ε) ≈ ε^a/(a·B(a,β)) and P(p > 1−ε) ≈ ε^β/(β·B(a,β)).
func gBeta(m, a, beta, k float64) float64 {
	lbeta := lgamma(a) + lgamma(beta) - lgamma(a+beta)
	f := func(v float64) float64 {
		u := math.Pi / 2 * math.Sinh(v)
		lp := -softplus(-2 * u) // log p
		lq := -softplus(2 * u)  // log(1−p)
		// g(p)·p^{a−1}(1−p)^{β−1}/B(a,β)·dp/dv with dp/dv = 2p(1−p)(π/2)cosh v.
		w := math.Exp(a*lp + beta*lq - lbeta)
		return gIntegrand(math.Exp(lp), m, k) * w * math.Pi * math.Cosh(v)
	}

	const vMax = 6.0
	uMax := math.Pi / 2 * math.Sinh(vMax)
	lEps := -softplus(2 * uMax) // log of the smallest p (and 1−p) reached
	tails := math.Exp(a*lEps-math.Log(a)-lbeta)*gIntegrand(0, m, k) +
		math.Exp(beta*lEps-math.Log(beta)-lbeta)*gIntegrand(1, m, k)

	h := 0.5
	sum := f(0)
	for j := 1; float64(j)*h <= vMax; j++ {
		sum += f(float64(j)*h) + f(-float64(j)*h)
	}
	integral := sum * h
	for level := 0; level < 10; level++ {
		h /= 2
		// Add the new odd nodes of the halved step.
		var add float64
		for j := 1; float64(j)*h <= vMax; j += 2 {
			add += f(float64(j)*h) + f(-float64(j)*h)
		}
		sum += add
		next := sum * h
		diff := math.Abs(next - integral)
		integral = next
		if level >= 1 && diff <= 1e-12*(integral+tails) {
			break
		}
	}
	g := integral + tails
	if math.IsNaN(g) || math.IsInf(g, 0) || g < 0 {
		// Cannot happen for valid inputs; keep the documented guarantee.
		return 0
	}
	return g
}

// lgamma is math.Lgamma without the sign (all our arguments are positive).
func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}
