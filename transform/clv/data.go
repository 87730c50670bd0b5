package clv

import (
	"math"
	"sort"
	"sync"
)

// Customer is one customer's summary over the calibration window. All times
// share the caller's time unit (see the package documentation).
type Customer struct {
	// Frequency (x) is the number of repeat purchases: distinct purchase
	// periods after the first one. It must be a non-negative integer.
	Frequency float64
	// Recency (t_x) is the time between the first and the last purchase;
	// 0 when Frequency is 0.
	Recency float64
	// T is the customer's age: time from the first purchase to the end of
	// the calibration window.
	T float64
	// Monetary (mbar) is the mean value of the repeat transactions. It is
	// only used by Gamma-Gamma, and only when Frequency > 0.
	Monetary float64
}

// Largest accepted time value or horizon; beyond it predictions are treated
// as invalid input (1e12 is ~30,000 years even in seconds).
const maxTime = 1e12

// finite reports whether v is neither NaN nor ±Inf.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// normalizeRFM validates one (x, t_x, T) triple and returns it cleaned: x is
// snapped to the nearest integer (float noise up to 1e-6 is tolerated),
// t_x is clamped into [0, T] (summaries rounded to 2 decimals may have
// t_x slightly above T) and set to 0 when x = 0. ok is false for negative,
// non-integer or non-finite input.
func normalizeRFM(x, tx, T float64) (nx, ntx, nT float64, ok bool) {
	if !finite(x) || !finite(tx) || !finite(T) || x < 0 || tx < 0 || T < 0 || T > maxTime {
		return 0, 0, 0, false
	}
	rx := math.Round(x)
	if math.Abs(x-rx) > 1e-6 {
		return 0, 0, 0, false
	}
	if rx == 0 {
		return 0, 0, T, true
	}
	return rx, math.Min(tx, T), T, true
}

// bgTuple is a unique (x, t_x, T) combination with its customer count.
// Times are stored as indices into bgData.vals so the likelihood can compute
// log(α+v) once per distinct time value rather than once per tuple.
type bgTuple struct {
	iT, iTx int32
	w       float64
}

// bgGroup is the run of tuples sharing one frequency x.
type bgGroup struct {
	x      float64
	w      float64
	lo, hi int
}

// bgData is the compressed BG/NBD fitting data.
type bgData struct {
	vals   []float64 // distinct time values (both T and t_x)
	tuples []bgTuple
	groups []bgGroup
	n      float64 // total customers (sum of weights)
	rep    float64 // customers with x > 0
	sumX   float64
	sumT   float64

	// nbdOnce guards nbdLL, the no-dropout log-likelihood (see
	// noDropoutLogLik), shared by the fits on these data.
	nbdOnce sync.Once
	nbdLL   float64
}

// bgAccumulator collects customers for BG/NBD, merging identical
// (x, t_x, T) tuples. Memory is proportional to the number of distinct
// tuples, which for day-resolution data is far below the customer count.
type bgAccumulator struct {
	counts  map[[3]float64]float64
	skipped int
}

func newBGAccumulator() *bgAccumulator {
	return &bgAccumulator{counts: make(map[[3]float64]float64)}
}

// add records one customer; invalid rows are counted in skipped and
// otherwise ignored. It reports whether the row was used.
func (acc *bgAccumulator) add(x, tx, T float64) bool {
	x, tx, T, ok := normalizeRFM(x, tx, T)
	if !ok {
		acc.skipped++
		return false
	}
	acc.counts[[3]float64{x, tx, T}]++
	return true
}

// build freezes the accumulator into bgData, sorted by (x, T, t_x) so that
// the result (and floating-point summation order) is deterministic.
func (acc *bgAccumulator) build() *bgData {
	keys := make([][3]float64, 0, len(acc.counts))
	for k := range acc.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		if a[2] != b[2] {
			return a[2] < b[2]
		}
		return a[1] < b[1]
	})
	// Distinct time values.
	valSet := make(map[float64]struct{}, 64)
	for _, k := range keys {
		valSet[k[1]] = struct{}{}
		valSet[k[2]] = struct{}{}
	}
	vals := make([]float64, 0, len(valSet))
	for v := range valSet {
		vals = append(vals, v)
	}
	sort.Float64s(vals)
	index := make(map[float64]int32, len(vals))
	for i, v := range vals {
		index[v] = int32(i)
	}

	d := &bgData{vals: vals, tuples: make([]bgTuple, len(keys))}
	for i, k := range keys {
		w := acc.counts[k]
		d.tuples[i] = bgTuple{iT: index[k[2]], iTx: index[k[1]], w: w}
		if len(d.groups) == 0 || d.groups[len(d.groups)-1].x != k[0] {
			d.groups = append(d.groups, bgGroup{x: k[0], lo: i})
		}
		g := &d.groups[len(d.groups)-1]
		g.hi = i + 1
		g.w += w
		d.n += w
		d.sumX += w * k[0]
		d.sumT += w * k[2]
		if k[0] > 0 {
			d.rep += w
		}
	}
	return d
}

// ggTuple is a unique (x, mbar) combination of a repeat customer.
type ggTuple struct {
	logM float64 // log(mbar), precomputed
	m    float64
	w    float64
}

// ggGroup is the run of tuples sharing one frequency x.
type ggGroup struct {
	x      float64
	w      float64
	lo, hi int
}

// ggData is the compressed Gamma-Gamma fitting data.
type ggData struct {
	tuples []ggTuple
	groups []ggGroup
	n      float64 // repeat customers used
	meanM  float64 // weighted mean of mbar
	minM   float64
	maxM   float64
}

// ggAccumulator collects repeat customers (x > 0, mbar > 0) for Gamma-Gamma.
type ggAccumulator struct {
	counts  map[[2]float64]float64
	skipped int // rows with x > 0 but unusable monetary value
}

func newGGAccumulator() *ggAccumulator {
	return &ggAccumulator{counts: make(map[[2]float64]float64)}
}

// add records a customer whose (x, t_x, T) already validated; customers
// with x = 0 are ignored, repeaters with a non-positive or non-finite mean
// spend are counted in skipped (Gamma-Gamma needs mbar > 0).
func (acc *ggAccumulator) add(x, mbar float64) {
	if x == 0 {
		return
	}
	if !finite(mbar) || mbar <= 0 {
		acc.skipped++
		return
	}
	acc.counts[[2]float64{x, mbar}]++
}

func (acc *ggAccumulator) build() *ggData {
	keys := make([][2]float64, 0, len(acc.counts))
	for k := range acc.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	d := &ggData{tuples: make([]ggTuple, len(keys)), minM: math.Inf(1), maxM: math.Inf(-1)}
	var sumM float64
	for i, k := range keys {
		w := acc.counts[k]
		d.tuples[i] = ggTuple{logM: math.Log(k[1]), m: k[1], w: w}
		if len(d.groups) == 0 || d.groups[len(d.groups)-1].x != k[0] {
			d.groups = append(d.groups, ggGroup{x: k[0], lo: i})
		}
		g := &d.groups[len(d.groups)-1]
		g.hi = i + 1
		g.w += w
		d.n += w
		sumM += w * k[1]
		d.minM = math.Min(d.minM, k[1])
		d.maxM = math.Max(d.maxM, k[1])
	}
	if d.n > 0 {
		d.meanM = sumM / d.n
	} else {
		d.minM, d.maxM = 0, 0
	}
	return d
}

// pearson accumulates the Pearson correlation of (frequency, monetary)
// over repeat customers in one streaming pass (Welford's update).
type pearson struct {
	n, mx, my, sxx, syy, sxy float64
}

func (p *pearson) add(x, y float64) {
	p.n++
	dx := x - p.mx
	p.mx += dx / p.n
	dy := y - p.my
	p.my += dy / p.n
	p.sxx += dx * (x - p.mx)
	p.syy += dy * (y - p.my)
	p.sxy += dx * (y - p.my)
}

// value returns the correlation, or (0, false) when it is undefined (fewer
// than two points or a constant variable).
func (p *pearson) value() (float64, bool) {
	if p.n < 2 || p.sxx <= 0 || p.syy <= 0 {
		return 0, false
	}
	r := p.sxy / math.Sqrt(p.sxx*p.syy)
	if !finite(r) {
		return 0, false
	}
	return math.Max(-1, math.Min(1, r)), true
}

// FrequencyMonetaryCorrelation returns the Pearson correlation between
// frequency and mean spend over repeat customers (x > 0, Monetary > 0).
// Gamma-Gamma assumes spend is independent of purchase frequency; a
// correlation far from 0 (rule of thumb: |ρ| > 0.3) means CLV estimates
// that multiply the two are biased, so pipelines should log this value.
// ok is false (and the value 0) when the correlation is undefined.
func FrequencyMonetaryCorrelation(data []Customer) (rho float64, ok bool) {
	var p pearson
	for _, c := range data {
		x, _, _, valid := normalizeRFM(c.Frequency, c.Recency, c.T)
		if !valid || x == 0 || !finite(c.Monetary) || c.Monetary <= 0 {
			continue
		}
		p.add(x, c.Monetary)
	}
	return p.value()
}
