package report

import (
	"bytes"
	"fmt"
	"html"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgimg"
)

// pngScale is the PNG's pixels per layout pixel: charts are drawn at twice
// the size they are shown at, so they stay sharp on high-density screens.
const pngScale = 2

// SVG renders the chart as inline SVG with fixed width/height attributes (not
// only a viewBox), so clients that ignore CSS still give it a size.
func (c *chart) SVG(m measurer) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		chartW, c.Height, chartW, c.Height, html.EscapeString(c.Label))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`, chartW, c.Height)
	c.draw(&svgSurface{&b}, m)
	b.WriteString(`</svg>`)
	return b.String()
}

// PNG renders the chart as an image drawn with f.
func (c *chart) PNG(f *chartFont) ([]byte, error) {
	w, h := vg.Length(chartW), vg.Length(c.Height)
	cv := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(72*pngScale))
	cv.SetColor(colorBG)
	cv.Fill(rectPath(0, 0, float64(w), float64(h)))
	c.draw(&pngSurface{c: cv, h: float64(h), f: f}, f.width)
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: cv}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encoding chart %s as PNG: %w", c.ID, err)
	}
	return buf.Bytes(), nil
}

func hexColor(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

type svgSurface struct{ b *strings.Builder }

func (s *svgSurface) rect(x, y, w, h float64, fill color.RGBA) {
	fmt.Fprintf(s.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, y, w, h, hexColor(fill))
}

func (s *svgSurface) line(x1, y1, x2, y2 float64, stroke color.RGBA, width float64, dashed bool) {
	dash := ""
	if dashed {
		dash = ` stroke-dasharray="5,4"`
	}
	fmt.Fprintf(s.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"%s/>`, x1, y1, x2, y2, hexColor(stroke), width, dash)
}

func (s *svgSurface) polyline(pts []point, stroke color.RGBA, width float64) {
	var d strings.Builder
	for i, p := range pts {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&d, "%s%.1f,%.1f ", cmd, p.X, p.Y)
	}
	fmt.Fprintf(s.b, `<path d="%s" fill="none" stroke="%s" stroke-width="%.1f"/>`, strings.TrimSpace(d.String()), hexColor(stroke), width)
}

func (s *svgSurface) text(x, y float64, anchor string, size float64, t string, fill color.RGBA, vertical bool) {
	rot := ""
	if vertical {
		rot = fmt.Sprintf(` transform="rotate(-90 %.1f %.1f)"`, x, y)
	}
	fmt.Fprintf(s.b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%g" font-family="%s" fill="%s"%s>%s</text>`,
		x, y, anchor, size, fontFamily, hexColor(fill), rot, html.EscapeString(t))
}

// pngSurface draws on a gonum/plot image canvas, whose y axis grows up.
type pngSurface struct {
	c *vgimg.Canvas
	h float64
	f *chartFont
}

func rectPath(x, y, w, h float64) vg.Path {
	var p vg.Path
	p.Move(vg.Point{X: vg.Length(x), Y: vg.Length(y)})
	p.Line(vg.Point{X: vg.Length(x + w), Y: vg.Length(y)})
	p.Line(vg.Point{X: vg.Length(x + w), Y: vg.Length(y + h)})
	p.Line(vg.Point{X: vg.Length(x), Y: vg.Length(y + h)})
	p.Close()
	return p
}

func (s *pngSurface) rect(x, y, w, h float64, fill color.RGBA) {
	s.c.SetColor(fill)
	s.c.Fill(rectPath(x, s.h-y-h, w, h))
}

func (s *pngSurface) line(x1, y1, x2, y2 float64, stroke color.RGBA, width float64, dashed bool) {
	s.polyDash([]point{{x1, y1}, {x2, y2}}, stroke, width, dashed)
}

func (s *pngSurface) polyline(pts []point, stroke color.RGBA, width float64) {
	s.polyDash(pts, stroke, width, false)
}

func (s *pngSurface) polyDash(pts []point, stroke color.RGBA, width float64, dashed bool) {
	if len(pts) < 2 {
		return
	}
	var p vg.Path
	for i, pt := range pts {
		q := vg.Point{X: vg.Length(pt.X), Y: vg.Length(s.h - pt.Y)}
		if i == 0 {
			p.Move(q)
		} else {
			p.Line(q)
		}
	}
	s.c.SetColor(stroke)
	s.c.SetLineWidth(vg.Length(width))
	if dashed {
		s.c.SetLineDash([]vg.Length{5, 4}, 0)
	} else {
		s.c.SetLineDash(nil, 0)
	}
	s.c.Stroke(p)
}

func (s *pngSurface) text(x, y float64, anchor string, size float64, t string, fill color.RGBA, vertical bool) {
	w := s.f.width(t, size)
	dx := 0.0
	switch anchor {
	case "middle":
		dx = -w / 2
	case "end":
		dx = -w
	}
	s.c.SetColor(fill)
	s.c.Push()
	s.c.Translate(vg.Point{X: vg.Length(x), Y: vg.Length(s.h - y)})
	if vertical {
		s.c.Rotate(math.Pi / 2)
	}
	for _, r := range s.f.runs(t) {
		face := s.f.face(r.font, size)
		s.c.FillString(face, vg.Point{X: vg.Length(dx)}, r.s)
		dx += float64(face.Width(r.s))
	}
	s.c.Pop()
}

// face returns font i at size points (= layout pixels).
func (f *chartFont) face(i int, size float64) font.Face {
	return font.Face{Font: font.Font{Typeface: font.Typeface(fmt.Sprintf("cdw%d", i)), Size: font.Points(size)}, Face: f.fonts[i]}
}

// width measures t in layout pixels.
func (f *chartFont) width(t string, size float64) float64 {
	w := 0.0
	for _, r := range f.runs(t) {
		face := f.face(r.font, size)
		w += float64(face.Width(r.s))
	}
	return w
}
