package clv

import (
	"math"
	"sort"
	"testing"
)

// unmerged builds the fitting data with one tuple of weight 1 per customer
// (no merging of identical (x, t_x, T)), the reference for the merged fit.
func unmerged(cs []Customer) *bgData {
	var rows [][3]float64
	valSet := map[float64]bool{}
	for _, c := range cs {
		x, tx, T, ok := normalizeRFM(c.Frequency, c.Recency, c.T)
		if !ok {
			continue
		}
		rows = append(rows, [3]float64{x, tx, T})
		valSet[tx], valSet[T] = true, true
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	var vals []float64
	for v := range valSet {
		vals = append(vals, v)
	}
	sort.Float64s(vals)
	index := map[float64]int32{}
	for i, v := range vals {
		index[v] = int32(i)
	}
	d := &bgData{vals: vals}
	for i, k := range rows {
		d.tuples = append(d.tuples, bgTuple{iT: index[k[2]], iTx: index[k[1]], w: 1})
		if len(d.groups) == 0 || d.groups[len(d.groups)-1].x != k[0] {
			d.groups = append(d.groups, bgGroup{x: k[0], lo: i})
		}
		g := &d.groups[len(d.groups)-1]
		g.hi, g.w = i+1, g.w+1
		d.n++
		d.sumX += k[0]
		d.sumT += k[2]
		if k[0] > 0 {
			d.rep++
		}
	}
	return d
}

// weightedPopulations are the data sets the equivalence tests run on: the
// CDNOW sample (weeks, fractional times) and a generated population at day
// resolution (many identical tuples).
func weightedPopulations(t *testing.T) map[string][]Customer {
	return map[string][]Customer{
		"CDNOW sample": loadSummaryCSV(t, "cdnow_customers_summary.csv"),
		"generated":    simulate(11, 30_000, cdnowLike, true),
	}
}

// The fits on merged (x, t_x, T) tuples with a count weight give the same
// estimates as the fits on one tuple per customer, to 1e-6 relative.
func TestWeightedFitEqualsUnweighted(t *testing.T) {
	for name, cs := range weightedPopulations(t) {
		acc := newBGAccumulator()
		for _, c := range cs {
			acc.add(c.Frequency, c.Recency, c.T)
		}
		merged, each := acc.build(), unmerged(cs)
		if len(merged.tuples) >= len(each.tuples) && name == "generated" {
			t.Errorf("%s: %d merged tuples for %d customers: nothing merged", name, len(merged.tuples), len(each.tuples))
		}
		bgM, _ := fitBG(merged, 0, FitOptions{})
		bgU, _ := fitBG(each, 0, FitOptions{})
		pnM, _ := fitPareto(merged, FitOptions{})
		pnU, _ := fitPareto(each, FitOptions{})
		t.Logf("%s: %d customers, %d merged tuples; BG/NBD %.6g %.6g %.6g %.6g; Pareto/NBD %.6g %.6g %.6g %.6g",
			name, len(each.tuples), len(merged.tuples), bgM.R, bgM.Alpha, bgM.A, bgM.B, pnM.R, pnM.Alpha, pnM.S, pnM.Beta)
		for _, c := range []struct {
			what      string
			got, want [5]float64
		}{
			{"BG/NBD", [5]float64{bgM.R, bgM.Alpha, bgM.A, bgM.B, bgM.LogLik}, [5]float64{bgU.R, bgU.Alpha, bgU.A, bgU.B, bgU.LogLik}},
			{"Pareto/NBD", [5]float64{pnM.R, pnM.Alpha, pnM.S, pnM.Beta, pnM.LogLik}, [5]float64{pnU.R, pnU.Alpha, pnU.S, pnU.Beta, pnU.LogLik}},
		} {
			for i := range c.got {
				if !(relErr(c.got[i], c.want[i]) <= 1e-6) {
					t.Errorf("%s %s: merged %v, one tuple per customer %v", name, c.what, c.got, c.want)
					break
				}
			}
		}
	}
}

// The Pareto/NBD likelihood through the groups' death tables equals the
// per-tuple quadrature, value and gradient, at the fit and around it, and
// the fits agree to 1e-6 relative.
func TestParetoDeathTablesMatchPerTuple(t *testing.T) {
	for name, cs := range weightedPopulations(t) {
		acc := newBGAccumulator()
		for _, c := range cs {
			acc.add(c.Frequency, c.Recency, c.T)
		}
		d := acc.build()
		pn, _ := fitPareto(d, FitOptions{})
		if pn.Fallback != "" {
			t.Fatalf("%s: %s", name, pn.Fallback)
		}
		base := []float64{math.Log(pn.R), math.Log(pn.Alpha), math.Log(pn.S), math.Log(pn.Beta)}
		for _, shift := range [][4]float64{{}, {0.5, -0.5, 1, 2}, {-1, 1, -2, -3}, {1, 2, 0.5, -1}} {
			lt := make([]float64, 4)
			for i := range lt {
				lt[i] = base[i] + shift[i]
			}
			g1, g2 := make([]float64, 4), make([]float64, 4)
			f1, f2 := d.paretoNLL(lt, g1, true), d.paretoNLL(lt, g2, false)
			if relErr(f1, f2) > 1e-10 {
				t.Errorf("%s at %v: tables %.15g, per tuple %.15g", name, shift, f1, f2)
			}
			for i := range g1 {
				if math.Abs(g1[i]-g2[i]) > 1e-9*(1+math.Abs(g2[i])) {
					t.Errorf("%s at %v: gradient tables %v, per tuple %v", name, shift, g1, g2)
					break
				}
			}
		}
		res := minimise(func(lt, g []float64) float64 { return d.paretoNLL(lt, g, false) },
			[]float64{0, math.Log(d.sumT / d.sumX), 0, math.Log(d.sumT / d.n)}, 1000)
		for i, v := range []float64{pn.R, pn.Alpha, pn.S, pn.Beta} {
			if relErr(v, math.Exp(res.x[i])) > 1e-6 {
				t.Errorf("%s: parameter %d: tables %.9g, per tuple %.9g", name, i, v, math.Exp(res.x[i]))
			}
		}
	}
}
