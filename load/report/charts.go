package report

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Charts are plain SVG with fixed width/height attributes (not only a
// viewBox), so mail clients that ignore CSS still give them a size, and with
// no script or external reference.

const (
	chartW    = 640
	colorA    = "#2f6db5"
	colorB    = "#e08a1e"
	colorGrid = "#d9dde3"
	colorText = "#333"
	fontAttrs = `font-family="Helvetica,Arial,'Noto Sans CJK SC','Microsoft YaHei',sans-serif" fill="` + colorText + `"`
)

func svgOpen(b *strings.Builder, w, h int, label string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, w, h, w, h, html.EscapeString(label))
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="#fff"/>`, w, h)
}

func text(b *strings.Builder, x, y float64, anchor string, size int, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d" %s>%s</text>`, x, y, anchor, size, fontAttrs, html.EscapeString(s))
}

// pairBars draws one row per label with two horizontal bars (a and b, both
// shares in [0,1]), e.g. share of customers vs share of revenue.
func pairBars(label string, labels []string, a, b []float64, nameA, nameB string) string {
	var s strings.Builder
	const left, right, rowH, top = 170.0, 60.0, 34.0, 30.0
	h := int(top + rowH*float64(len(labels)) + 10)
	svgOpen(&s, chartW, h, label)
	maxV := 0.0
	for i := range labels {
		maxV = math.Max(maxV, math.Max(a[i], b[i]))
	}
	if maxV <= 0 {
		maxV = 1
	}
	scale := (chartW - left - right) / maxV
	// legend
	fmt.Fprintf(&s, `<rect x="%.0f" y="8" width="12" height="12" fill="%s"/>`, left, colorA)
	text(&s, left+18, 18, "start", 12, nameA)
	fmt.Fprintf(&s, `<rect x="%.0f" y="8" width="12" height="12" fill="%s"/>`, left+200, colorB)
	text(&s, left+218, 18, "start", 12, nameB)
	for i, l := range labels {
		y := top + rowH*float64(i)
		text(&s, left-8, y+20, "end", 12, l)
		wa, wb := math.Max(a[i]*scale, 1), math.Max(b[i]*scale, 1)
		fmt.Fprintf(&s, `<rect x="%.0f" y="%.1f" width="%.1f" height="12" fill="%s"/>`, left, y+4, wa, colorA)
		fmt.Fprintf(&s, `<rect x="%.0f" y="%.1f" width="%.1f" height="12" fill="%s"/>`, left, y+17, wb, colorB)
		text(&s, left+wa+4, y+14, "start", 10, pct(a[i]))
		text(&s, left+wb+4, y+27, "start", 10, pct(b[i]))
	}
	s.WriteString(`</svg>`)
	return s.String()
}

// columns draws vertical bars with labels; ref > 0 draws a dashed reference
// line at that value (1.0 for a seasonal index).
func columns(label string, labels []string, values []float64, ref float64, format func(float64) string) string {
	var s strings.Builder
	const left, bottom, top, h = 50.0, 40.0, 20.0, 260
	svgOpen(&s, chartW, h, label)
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
	slot := (chartW - left - 10) / n
	yOf := func(v float64) float64 { return top + plotH - v/maxV*plotH }
	fmt.Fprintf(&s, `<line x1="%.0f" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`, left, yOf(0), chartW-10, yOf(0), colorGrid)
	for i, v := range values {
		x := left + slot*float64(i) + slot*0.15
		bh := math.Max(v/maxV*plotH, 1)
		fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, yOf(0)-bh, slot*0.7, bh, colorA)
		text(&s, x+slot*0.35, yOf(0)-bh-4, "middle", 10, format(v))
		text(&s, x+slot*0.35, yOf(0)+16, "middle", 11, labels[i])
	}
	if ref > 0 {
		fmt.Fprintf(&s, `<line x1="%.0f" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-dasharray="5,4"/>`, left, yOf(ref), chartW-10, yOf(ref), colorB)
		text(&s, left-4, yOf(ref)+4, "end", 10, format(ref))
	}
	s.WriteString(`</svg>`)
	return s.String()
}

// curve draws a Pareto curve: x and y both shares in [0,1], with the
// diagonal of perfect equality and markers at 75% and 95% of revenue.
func curve(label string, pts []point, xLabel, yLabel string) string {
	var s strings.Builder
	const left, bottom, top, right, h = 60.0, 45.0, 15.0, 20.0, 340
	svgOpen(&s, chartW, h, label)
	pw, ph := chartW-left-right, float64(h)-top-bottom
	X := func(v float64) float64 { return left + v*pw }
	Y := func(v float64) float64 { return top + ph - v*ph }
	for _, g := range []float64{0, 0.25, 0.5, 0.75, 0.95, 1} {
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`, X(0), Y(g), X(1), Y(g), colorGrid)
		text(&s, X(0)-6, Y(g)+4, "end", 10, pct(g))
	}
	for _, g := range []float64{0, 0.2, 0.4, 0.6, 0.8, 1} {
		text(&s, X(g), Y(0)+16, "middle", 10, pct(g))
	}
	fmt.Fprintf(&s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="4,4"/>`, X(0), Y(0), X(1), Y(1), colorGrid)
	var path strings.Builder
	for i, p := range pts {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&path, "%s%.1f,%.1f ", cmd, X(p.X), Y(p.Y))
	}
	fmt.Fprintf(&s, `<path d="%s" fill="none" stroke="%s" stroke-width="2.5"/>`, strings.TrimSpace(path.String()), colorA)
	text(&s, X(0.5), float64(h)-8, "middle", 11, xLabel)
	fmt.Fprintf(&s, `<text x="14" y="%.1f" transform="rotate(-90 14 %.1f)" text-anchor="middle" font-size="11" %s>%s</text>`, Y(0.5), Y(0.5), fontAttrs, html.EscapeString(yLabel))
	s.WriteString(`</svg>`)
	return s.String()
}

func pct(v float64) string {
	if v != 0 && math.Abs(v) < 0.1 {
		return fmt.Sprintf("%.1f%%", v*100)
	}
	return fmt.Sprintf("%.0f%%", v*100)
}
