package report

import (
	"fmt"
	"image/color"
	"math"
	"strings"
	"testing"
)

// box is where a text label lands, in layout pixels.
type box struct {
	x0, y0, x1, y1 float64
	s              string
}

// recorder is a surface that keeps the box of every label.
type recorder struct {
	m     measurer
	boxes []box
}

func (r *recorder) rect(x, y, w, h float64, fill color.RGBA)                     {}
func (r *recorder) line(x1, y1, x2, y2 float64, c color.RGBA, w float64, d bool) {}
func (r *recorder) polyline(pts []point, c color.RGBA, w float64)                {}
func (r *recorder) text(x, y float64, anchor string, size float64, s string, _ color.RGBA, vertical bool) {
	w := r.m(s, size)
	off := map[string]float64{"start": 0, "middle": 0.5, "end": 1}[anchor]
	if vertical {
		r.boxes = append(r.boxes, box{x - 0.8*size, y - w*(1-off), x + 0.2*size, y + w*off, s})
		return
	}
	r.boxes = append(r.boxes, box{x - w*off, y - 0.8*size, x + w*(1-off), y + 0.2*size, s})
}

// sample is a report's figures in the shapes the built-in marts give,
// including the cases that used to collide: 95% and 100% close together,
// a 75% point far right, long segment names and Chinese labels.
func sample(lang string, pareto75, pareto95 float64) *page {
	f := &figures{AsOf: "2026-11-30", Customers: 2357, Revenue: 1234567.5, RiskScore: 50, Skipped: map[string]string{},
		Segments: []segmentRow{{"champions", 300, 600000}, {"potential loyalist", 500, 300000}, {"can't lose", 40, 90000},
			{"need attention", 700, 150000}, {"hibernating", 817, 94567.5}},
		Pareto75: pareto75, Pareto95: pareto95,
		Churn:    []countRow{{"low", 1200}, {"medium", 700}, {"high", 400}, {"critical", 57}},
		Seasonal: []point{},
	}
	for i := 0; i <= 100; i++ {
		x := float64(i) / 100
		f.Pareto = append(f.Pareto, point{x, 1 - math.Pow(1-x, 4)})
	}
	for m := 1; m <= 12; m++ {
		f.Seasonal = append(f.Seasonal, point{float64(m), 0.6 + 0.07*float64(m)})
		c := cohortRow{Month: fmt.Sprintf("2025-%02d", m), Customers: 100}
		for k := 0; k <= 12-m; k++ {
			c.Retention = append(c.Retention, 1/float64(k+1))
		}
		f.Cohorts = append(f.Cohorts, c)
	}
	return &page{Lang: lang, F: f, t: languages[lang], m: estimateWidth}
}

func TestChartLabelsNeverOverlap(t *testing.T) {
	cf, err := loadFont("", "zh-CN")
	if err != nil {
		t.Fatalf("%v (CI installs fonts-wqy-microhei, see .ci/deps)", err)
	}
	for _, lang := range []string{"en", "zh-CN"} {
		for _, pr := range [][2]float64{{0.2, 0.55}, {0.9, 0.99}, {0.01, 0.02}} {
			p := sample(lang, pr[0], pr[1])
			charts := p.charts()
			if len(charts) != 5 {
				t.Fatalf("%s: %d charts, want 5", lang, len(charts))
			}
			for _, c := range charts {
				r := &recorder{m: cf.width}
				c.draw(r, r.m)
				for i, a := range r.boxes {
					if a.x0 < 0 || a.x1 > chartW || a.y0 < 0 || a.y1 > float64(c.Height) {
						t.Errorf("%s %s (Pareto %v): label %q at %.0f,%.0f–%.0f,%.0f is outside the %dx%d chart", lang, c.ID, pr, a.s, a.x0, a.y0, a.x1, a.y1, chartW, c.Height)
					}
					for _, b := range r.boxes[i+1:] {
						if a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1 {
							t.Errorf("%s %s (Pareto %v): labels %q and %q overlap", lang, c.ID, pr, a.s, b.s)
						}
					}
				}
			}
		}
	}
}

func TestSeasonalChartScaleAndMonths(t *testing.T) {
	for lang, jan := range map[string]string{"en": ">Jan<", "zh-CN": ">1月<"} {
		p := sample(lang, 0.2, 0.55)
		var svg string
		for _, c := range p.charts() {
			if c.ID == "seasonal" {
				svg = c.SVG(p.m)
			}
		}
		if !strings.Contains(svg, jan) {
			t.Errorf("%s seasonal chart has no month name %s", lang, jan)
		}
		// the reference line sits at 1.00 among bars of 0.67…1.44: above the
		// lowest bar's top, below the highest's
		if !strings.Contains(svg, ">1.00 =") || !strings.Contains(svg, ">1.44<") {
			t.Errorf("%s seasonal chart lacks the 1.00 reference label or the 1.44 bar:\n%s", lang, svg)
		}
	}
}

func TestAtRiskInPlainWords(t *testing.T) {
	// points in riskDrivers order: rhythm, alive, open, overdue, complaints, satisfaction
	vals := []float64{25, 275, 30, 0.05, 5, 1, 0, 0, 10, 3, 0, 0}
	rs := reasons(vals, 14)
	for lang, want := range map[string]string{
		"en":    "no order for 275 days; usually orders every 14 days; 3 recent complaint(s); 1 open ticket(s)",
		"zh-CN": "已 275 天未下单；通常每 14 天下单一次；近期投诉 3 次；1 个未关闭工单",
	} {
		p := &page{t: languages[lang]}
		if got := p.reasons(riskRow{Reasons: rs}); got != want {
			t.Errorf("%s: %q, want %q", lang, got, want)
		}
	}
}

func TestMoneyWithCurrency(t *testing.T) {
	for _, c := range []struct{ cur, want string }{{"", "1,234,568"}, {"EUR", "€1,234,568"}, {"gbp", "£1,234,568"}, {"CHF", "1,234,568 CHF"}} {
		p := &page{Currency: c.cur}
		if got := p.Money(1234567.5); got != c.want {
			t.Errorf("currency %q: %s, want %s", c.cur, got, c.want)
		}
	}
	if got := (&page{Currency: "USD"}).Money(-12.4); got != "-$12" {
		t.Errorf("negative: %s", got)
	}
}

// TestEveryLabelTranslated keeps zh-CN complete: a missing key would show
// its English-ish key in a Chinese report.
func TestEveryLabelTranslated(t *testing.T) {
	for k := range languages["en"] {
		if _, ok := languages["zh-CN"][k]; !ok {
			t.Errorf("zh-CN has no text for %q", k)
		}
	}
	for _, seg := range []string{"champions", "loyal", "potential loyalist", "new", "promising", "need attention", "at risk", "can't lose", "hibernating", "lost", "low", "medium", "high", "critical"} {
		if _, ok := languages["zh-CN"][seg]; !ok {
			t.Errorf("zh-CN has no name for %q", seg)
		}
	}
}
