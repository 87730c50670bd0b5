package clv

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// Synthetic data drawn from the models themselves, for parameter-recovery
// tests and benchmarks.

// gammaVariate draws Gamma(shape, rate=1) with gonum's sampler over rng.
func gammaVariate(rng *rand.Rand, shape float64) float64 {
	return distuv.Gamma{Alpha: shape, Beta: 1, Src: rng}.Rand()
}

// simParams are the generating parameters of a synthetic data set.
type simParams struct {
	r, alpha, a, b float64 // BG/NBD
	p, q, gamma    float64 // Gamma-Gamma
}

// cdnowLike are the CDNOW estimates (weeks, dollars).
var cdnowLike = simParams{r: 0.243, alpha: 4.414, a: 0.793, b: 2.426, p: 6.25, q: 3.74, gamma: 15.44}

// simulate draws n customers from BG/NBD + Gamma-Gamma in weeks. Customers
// are acquired uniformly over the first 52 weeks and observed until week
// 78. If dayRes, first-purchase days are integers and purchase times are
// rounded down to whole days (as in real data, which also makes many
// (x, t_x, T) tuples identical); otherwise times are exact.
func simulate(seed uint64, n int, sp simParams, dayRes bool) []Customer {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := make([]Customer, n)
	for i := range out {
		start := rng.Float64() * 52
		if dayRes {
			start = math.Floor(start*7) / 7
		}
		T := 78 - start
		lambda := gammaVariate(rng, sp.r) / sp.alpha
		var p float64 // dropout probability after each purchase; a = 0 is the no-dropout limit
		if sp.a > 0 {
			g1 := gammaVariate(rng, sp.a)
			p = g1 / (g1 + gammaVariate(rng, sp.b))
		}
		nu := gammaVariate(rng, sp.q) / sp.gamma
		var x, tx, spend, clock float64
		for {
			clock += rng.ExpFloat64() / lambda
			if clock > T {
				break
			}
			x++
			tx = clock
			spend += gammaVariate(rng, sp.p) / nu
			if rng.Float64() < p {
				break
			}
		}
		if dayRes {
			tx = math.Floor(tx*7) / 7
		}
		c := Customer{Frequency: x, Recency: tx, T: T}
		if x > 0 {
			c.Monetary = spend / x
		}
		out[i] = c
	}
	return out
}
