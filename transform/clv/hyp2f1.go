package clv

import "math"

// hyp2f1Tail returns S = 2F1(a, b; c; z) − 1 for 0 ≤ z < 1 by summing the
// Gauss power series Σ_{n≥1} (a)_n (b)_n / ((c)_n n!) zⁿ.
//
// The leading 1 is left out on purpose: callers need 1 − (1−z)^k·2F1 and
// compute it as −expm1(k·log1p(−z) + log1p(S)), which keeps full relative
// precision for small z. The series converges for every |z| < 1 but slowly
// as z → 1, so the caller restricts z and falls back to quadrature when
// ok is false (no convergence within maxTerms, a pole of c, or a
// non-finite partial sum).
//
// Summation uses Neumaier compensation; the stopping rule bounds the
// remaining tail geometrically by |term|·ρ/(1−ρ) where ρ ≥ the current term
// ratio, so it is safe even when the ratio approaches z from above.
//
// ok is also false when the series is ill-conditioned: if the largest term
// exceeds maxCancel·|₂F₁| the alternating terms cancel and more than six
// digits would be lost (this happens for large parameters with z not
// small, e.g. in the 1−z connection formula); callers then use another
// method.
func hyp2f1Tail(a, b, c, z float64, maxTerms int) (s float64, ok bool) {
	if z == 0 {
		return 0, true
	}
	if !(z > 0 && z < 1) {
		return 0, false
	}
	var sum, comp, maxAbs float64
	term := 1.0
	// Past minN the tail bound below is valid. The ratio of consecutive
	// terms is R(n) = z·(a+n)(b+n)/((c+n)(n+1)), and
	// (a+n)(b+n) − (c+n)(n+1) = (a+b−c−1)n + ab − c. When a+b−c−1 < 0
	// this is negative for n > n0 = (ab−c)/(c+1−a−b), so once n also
	// exceeds −a, −b, −c (all factors positive) every later ratio is below
	// z. Otherwise R(n) → z from above, eventually decreasing; then a
	// conservative index is used, after which the current ratio bounds the
	// later ones.
	var minN float64
	if den := c + 1 - a - b; den > 0 {
		minN = math.Max(math.Max(0, (a*b-c)/den), math.Max(-a, math.Max(-b, -c))) + 1
	} else {
		minN = 2*(math.Abs(a)+math.Abs(b)+math.Abs(c)) + 2
	}
	for n := 0; n < maxTerms; n++ {
		fn := float64(n)
		den := (c + fn) * (fn + 1)
		if den == 0 {
			return 0, false // c is a non-positive integer: pole.
		}
		ratio := (a + fn) * (b + fn) / den * z
		term *= ratio
		if term == 0 {
			return sum + comp, wellConditioned(maxAbs, sum+comp)
		}
		// Comparisons, not math.Max: its NaN and ±0 handling cost a
		// fifth of CLV's time, and NaN ends the loop below anyway.
		abs := math.Abs(term)
		if abs > maxAbs {
			maxAbs = abs
		}
		// Neumaier summation.
		t := sum + term
		if math.Abs(sum) >= math.Abs(term) {
			comp += (sum - t) + term
		} else {
			comp += (term - t) + sum
		}
		sum = t
		if math.IsInf(sum, 0) || math.IsNaN(sum) {
			return 0, false
		}
		// Past minN, max(|ratio|, z) bounds all later ratios.
		rho := math.Abs(ratio)
		if z > rho {
			rho = z
		}
		if rho < 1 && fn >= minN {
			tail := abs * rho / (1 - rho)
			if tail <= 1e-16*math.Abs(sum+comp) {
				return sum + comp, wellConditioned(maxAbs, sum+comp)
			}
		}
	}
	return 0, false
}

// maxCancel bounds the ratio of the largest summand to the result.
const maxCancel = 1e6

// wellConditioned reports whether summands up to maxAbs produced 1+s
// without losing more than log10(maxCancel) digits.
func wellConditioned(maxAbs, s float64) bool {
	return maxAbs <= maxCancel*math.Abs(1+s)
}
