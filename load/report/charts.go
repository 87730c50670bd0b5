package report

import (
	"fmt"
	"image/color"
	"math"
)

// A chart is laid out once, on a surface: the saved HTML gets it as SVG, the
// e-mail as a PNG drawn by the same code (mail clients such as Gmail and
// Outlook drop inline SVG), so both always show the same figures.

const (
	chartW     = 640
	fontFamily = `Helvetica,Arial,'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif`
)

var (
	colorA    = color.RGBA{0x2f, 0x6d, 0xb5, 0xff}
	colorB    = color.RGBA{0xe0, 0x8a, 0x1e, 0xff}
	colorGrid = color.RGBA{0xd9, 0xdd, 0xe3, 0xff}
	colorText = color.RGBA{0x33, 0x33, 0x33, 0xff}
	colorBG   = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

// surface is what a chart draws on; coordinates are pixels, y grows down,
// text y is the baseline.
type surface interface {
	rect(x, y, w, h float64, fill color.RGBA)
	line(x1, y1, x2, y2 float64, stroke color.RGBA, width float64, dashed bool)
	polyline(pts []point, stroke color.RGBA, width float64)
	// text draws s anchored "start", "middle" or "end" at x; vertical text
	// is rotated -90° around (x, y).
	text(x, y float64, anchor string, size float64, s string, fill color.RGBA, vertical bool)
}

// measurer gives the width of a text in pixels, so labels that would not
// fit are left out instead of drawn over each other.
type measurer func(s string, size float64) float64

// chart is one figure of the report.
type chart struct {
	ID     string // the image's name in the mail (cid:<ID>)
	Label  string // alt text
	Height int
	draw   func(s surface, m measurer)
}

// pairBars draws one row per label with two horizontal bars (a and b, both
// shares in [0,1]), e.g. share of customers vs share of revenue.
func pairBars(id, label string, labels []string, a, b []float64, nameA, nameB string) *chart {
	const left, right, rowH, top = 170.0, 60.0, 34.0, 30.0
	h := int(top + rowH*float64(len(labels)) + 10)
	return &chart{ID: id, Label: label, Height: h, draw: func(s surface, m measurer) {
		maxV := 0.0
		for i := range labels {
			maxV = math.Max(maxV, math.Max(a[i], b[i]))
		}
		if maxV <= 0 {
			maxV = 1
		}
		scale := (chartW - left - right) / maxV
		s.rect(left, 8, 12, 12, colorA)
		s.text(left+18, 18, "start", 12, nameA, colorText, false)
		xb := left + 18 + m(nameA, 12) + 24
		s.rect(xb, 8, 12, 12, colorB)
		s.text(xb+18, 18, "start", 12, nameB, colorText, false)
		for i, l := range labels {
			y := top + rowH*float64(i)
			s.text(left-8, y+20, "end", 12, fitText(m, l, 12, left-12), colorText, false)
			wa, wb := math.Max(a[i]*scale, 1), math.Max(b[i]*scale, 1)
			s.rect(left, y+4, wa, 12, colorA)
			s.rect(left, y+17, wb, 12, colorB)
			s.text(left+wa+4, y+14, "start", 10, pct(a[i]), colorText, false)
			s.text(left+wb+4, y+27, "start", 10, pct(b[i]), colorText, false)
		}
	}}
}

// columns draws vertical bars with labels; ref > 0 draws a dashed reference
// line at that value (1.00 for a seasonal index), labelled at the right end
// so it never sits on an axis label.
func columns(id, label string, labels []string, values []float64, ref float64, refLabel string, format func(float64) string) *chart {
	const left, right, bottom, top, h = 20.0, 110.0, 40.0, 22.0, 260
	return &chart{ID: id, Label: label, Height: h, draw: func(s surface, m measurer) {
		maxV := ref
		for _, v := range values {
			maxV = math.Max(maxV, v)
		}
		if maxV <= 0 {
			maxV = 1
		}
		maxV *= 1.1
		plotH := float64(h) - top - bottom
		n := math.Max(float64(len(values)), 1)
		slot := (chartW - left - right) / n
		yOf := func(v float64) float64 { return top + plotH - v/maxV*plotH }
		s.line(left, yOf(0), chartW-right, yOf(0), colorGrid, 1, false)
		// Value labels only when every one fits its slot: the table beside
		// the chart has the exact figures.
		showValues := true
		for _, v := range values {
			if m(format(v), 10) > slot-2 {
				showValues = false
			}
		}
		showLabels := true
		for _, l := range labels {
			if m(l, 11) > slot-2 {
				showLabels = false
			}
		}
		// the reference line goes behind the bars, and value labels get a
		// white backing so the line never runs through them
		if ref > 0 {
			s.line(left, yOf(ref), chartW-right, yOf(ref), colorB, 1.5, true)
			s.text(chartW-right+6, yOf(ref)+4, "start", 10, fitText(m, refLabel, 10, right-8), colorB, false)
		}
		for i, v := range values {
			x := left + slot*float64(i) + slot*0.15
			bh := math.Max(v/maxV*plotH, 1)
			s.rect(x, yOf(0)-bh, slot*0.7, bh, colorA)
			if showValues {
				lw := m(format(v), 10)
				s.rect(x+slot*0.35-lw/2-2, yOf(0)-bh-14, lw+4, 12, colorBG)
				s.text(x+slot*0.35, yOf(0)-bh-4, "middle", 10, format(v), colorText, false)
			}
			if showLabels {
				s.text(x+slot*0.35, yOf(0)+16, "middle", 11, labels[i], colorText, false)
			}
		}
	}}
}

// mark is a labelled point on a curve.
type mark struct {
	X, Y  float64
	Label string
}

// curve draws a Pareto curve: x and y both shares in [0,1], with the
// diagonal of perfect equality and labelled marks (e.g. where the curve
// reaches 75% and 95% of revenue). Axis ticks are 25 points apart so their
// labels cannot collide; the marks carry the other shares.
func curve(id, label string, pts []point, marks []mark, xLabel, yLabel string) *chart {
	const left, bottom, top, right, h = 60.0, 45.0, 15.0, 20.0, 340
	return &chart{ID: id, Label: label, Height: h, draw: func(s surface, m measurer) {
		pw, ph := chartW-left-right, float64(h)-top-bottom
		X := func(v float64) float64 { return left + v*pw }
		Y := func(v float64) float64 { return top + ph - v*ph }
		for _, g := range []float64{0, 0.25, 0.5, 0.75, 1} {
			s.line(X(0), Y(g), X(1), Y(g), colorGrid, 1, false)
			s.text(X(0)-6, Y(g)+4, "end", 10, pct(g), colorText, false)
		}
		for _, g := range []float64{0, 0.2, 0.4, 0.6, 0.8, 1} {
			s.text(X(g), Y(0)+16, "middle", 10, pct(g), colorText, false)
		}
		s.line(X(0), Y(0), X(1), Y(1), colorGrid, 1, true)
		xy := make([]point, len(pts))
		for i, p := range pts {
			xy[i] = point{X(p.X), Y(p.Y)}
		}
		s.polyline(xy, colorA, 2.5)
		for _, mk := range marks {
			s.line(X(mk.X), Y(mk.Y), X(mk.X), Y(0), colorB, 1, true)
			s.rect(X(mk.X)-3, Y(mk.Y)-3, 6, 6, colorB)
			// below-right of the point (the curve rises to its left); left
			// of it when the label would run off the chart
			if X(mk.X)+8+m(mk.Label, 11) <= chartW-4 {
				s.text(X(mk.X)+8, Y(mk.Y)+14, "start", 11, mk.Label, colorB, false)
			} else {
				s.text(X(mk.X)-8, Y(mk.Y)+14, "end", 11, mk.Label, colorB, false)
			}
		}
		s.text(X(0.5), float64(h)-8, "middle", 11, xLabel, colorText, false)
		s.text(14, Y(0.5), "middle", 11, yLabel, colorText, true)
	}}
}

// heat draws a table of shares in [0,1] (NaN = no value) as shaded cells,
// e.g. cohort retention: one row per cohort, one column per month since.
func heat(id, label string, rows, cols []string, cells [][]float64, xLabel string) *chart {
	const left, top, right, cellH = 80.0, 34.0, 10.0, 22.0
	h := int(top + cellH*float64(len(rows)) + 10)
	return &chart{ID: id, Label: label, Height: h, draw: func(s surface, m measurer) {
		cw := (chartW - left - right) / math.Max(float64(len(cols)), 1)
		s.text(left, 12, "start", 11, xLabel, colorText, false)
		showCols := true
		for _, c := range cols {
			if m(c, 10) > cw-2 {
				showCols = false
			}
		}
		for j, c := range cols {
			if showCols {
				s.text(left+cw*float64(j)+cw/2, top-6, "middle", 10, c, colorText, false)
			}
		}
		for i, r := range rows {
			y := top + cellH*float64(i)
			s.text(left-6, y+15, "end", 10, fitText(m, r, 10, left-8), colorText, false)
			for j := range cols {
				v := math.NaN()
				if j < len(cells[i]) {
					v = cells[i][j]
				}
				if math.IsNaN(v) {
					continue
				}
				s.rect(left+cw*float64(j)+1, y+1, cw-2, cellH-2, shade(v))
				if t := pct(v); m(t, 9) <= cw-4 {
					fg := colorText
					if v > 0.5 {
						fg = colorBG
					}
					s.text(left+cw*float64(j)+cw/2, y+15, "middle", 9, t, fg, false)
				}
			}
		}
	}}
}

// shade maps a share in [0,1] onto white → colorA.
func shade(v float64) color.RGBA {
	v = math.Max(0, math.Min(1, v))
	mix := func(a, b uint8) uint8 { return uint8(float64(a) + (float64(b)-float64(a))*v) }
	return color.RGBA{mix(0xee, colorA.R), mix(0xf3, colorA.G), mix(0xfa, colorA.B), 0xff}
}

// fitText shortens s with an ellipsis until it is at most w pixels wide.
func fitText(m measurer, s string, size, w float64) string {
	if m(s, size) <= w {
		return s
	}
	r := []rune(s)
	for len(r) > 1 {
		r = r[:len(r)-1]
		if t := string(r) + "…"; m(t, size) <= w {
			return t
		}
	}
	return string(r)
}

func pct(v float64) string {
	if v != 0 && math.Abs(v) < 0.1 {
		return fmt.Sprintf("%.1f%%", v*100)
	}
	return fmt.Sprintf("%.0f%%", v*100)
}
