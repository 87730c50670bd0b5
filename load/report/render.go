package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
)

// page is one rendered report version.
type page struct {
	Lang, Title, Scope, Generated string
	F                             *figures
	Prev                          *scopeSnapshot
	PrevDate                      string
	t                             texts
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"html": func(s string) template.HTML { return template.HTML(s) }, // our own SVG, built with escaped text
}).Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:Helvetica,Arial,'Noto Sans CJK SC','Microsoft YaHei',sans-serif;color:#222;max-width:760px;margin:24px auto;padding:0 12px}
h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:4px 10px;border-bottom:1px solid #e5e5e5;text-align:left}
td.n,th.n{text-align:right}.note{color:#666;font-size:13px}.kpi{font-size:20px;font-weight:bold}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="note">{{.Scope}} · {{.T "as_of"}} {{.F.AsOf}} · {{.T "generated"}} {{.Generated}}</p>
<table><tr><th>{{.T "customers"}}</th><th>{{.T "revenue"}}</th></tr>
<tr><td class="kpi">{{.Int .F.Customers}}</td><td class="kpi">{{.Money .F.Revenue}}</td></tr></table>
{{range .Sections}}<h2>{{.Title}}</h2>
{{if .Note}}<p class="note">{{.Note}}</p>{{end}}{{if .Chart}}<div>{{html .Chart}}</div>{{end}}
{{if .Head}}<table><tr>{{range $i, $h := .Head}}<th{{if $.Num $i}} class="n"{{end}}>{{$h}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range $i, $c := .}}<td{{if $.Num $i}} class="n"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{end}}</body></html>
`))

// section is one titled block: an optional note, chart and table. Tables
// also make the plain-text alternative.
type section struct {
	Title, Note, Chart string
	Head               []string
	Rows               [][]string
}

// T translates a label.
func (p *page) T(key string) string { return p.t.t(key) }

// Num right-aligns every column but the first.
func (p *page) Num(i int) bool { return i > 0 }

// Int formats a count with thousands separators.
func (p *page) Int(v int64) string { return group(strconv.FormatInt(v, 10)) }

// Money formats an amount with thousands separators and no cents.
func (p *page) Money(v float64) string { return money(v) }

func money(v float64) string {
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = group(strings.TrimPrefix(s, "-"))
	if neg {
		return "-" + s
	}
	return s
}

func group(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func signedPct(now, prev float64) string {
	if prev == 0 {
		return "—"
	}
	return fmt.Sprintf("%+.1f%%", (now-prev)/prev*100)
}

// Sections builds the report body in order; skipped marts become a note.
func (p *page) Sections() []section {
	f, t := p.F, p.t
	var out []section
	if len(f.Segments) == 0 {
		return []section{{Title: t.t("segments"), Note: t.t("no_data")}}
	}
	seg := section{Title: t.t("segments"), Head: []string{t.t("segment"), t.t("customers"), t.t("customer_sh"), t.t("revenue"), t.t("revenue_sh")}}
	var labels []string
	var cs, rs []float64
	for _, s := range f.Segments {
		c, r := share(float64(s.Customers), float64(f.Customers)), share(s.Revenue, f.Revenue)
		labels = append(labels, t.t(s.Segment))
		cs, rs = append(cs, c), append(rs, r)
		seg.Rows = append(seg.Rows, []string{t.t(s.Segment), p.Int(s.Customers), pct(c), money(s.Revenue), pct(r)})
	}
	seg.Chart = pairBars(t.t("segments"), labels, cs, rs, t.t("customer_sh"), t.t("revenue_sh"))
	out = append(out, seg)
	if len(f.Units) > 0 {
		u := section{Title: t.t("units"), Head: []string{t.t("unit"), t.t("customers"), t.t("revenue"), t.t("revenue_sh")}}
		for _, r := range f.Units {
			u.Rows = append(u.Rows, []string{r.Unit, p.Int(r.Customers), money(r.Revenue), pct(share(r.Revenue, f.Revenue))})
		}
		out = append(out, u)
	}
	out = append(out, p.paretoSection(), p.churnSection(), p.riskSection(), p.seasonalSection(), p.changeSection())
	return out
}

func share(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (p *page) skipped(key, title string) (section, bool) {
	if what, ok := p.F.Skipped[key]; ok {
		return section{Title: title, Note: fmt.Sprintf(p.t.t("skipped"), what)}, true
	}
	return section{}, false
}

func (p *page) paretoSection() section {
	t := p.t
	if s, ok := p.skipped("pareto", t.t("pareto")); ok {
		return s
	}
	s := section{Title: t.t("pareto"), Note: fmt.Sprintf(t.t("pareto_note"), pct(p.F.Pareto75), pct(p.F.Pareto95))}
	s.Chart = curve(t.t("pareto"), p.F.Pareto, t.t("pareto_x"), t.t("pareto_y"))
	if len(p.F.ABC) > 0 {
		s.Head = []string{t.t("abc_class"), t.t("customers")}
		for _, r := range p.F.ABC {
			s.Rows = append(s.Rows, []string{r.Label, p.Int(r.Count)})
		}
	}
	return s
}

func (p *page) churnSection() section {
	t := p.t
	if s, ok := p.skipped("churn", t.t("churn")); ok {
		return s
	}
	s := section{Title: t.t("churn"), Head: []string{t.t("band"), t.t("customers")}}
	var labels []string
	var vals []float64
	for _, r := range p.F.Churn {
		labels, vals = append(labels, t.t(r.Label)), append(vals, float64(r.Count))
		s.Rows = append(s.Rows, []string{t.t(r.Label), p.Int(r.Count)})
	}
	s.Chart = columns(t.t("churn"), labels, vals, 0, func(v float64) string { return p.Int(int64(v)) })
	return s
}

func (p *page) riskSection() section {
	t := p.t
	if s, ok := p.skipped("at_risk", t.t("at_risk")); ok {
		return s
	}
	s := section{Title: t.t("at_risk")}
	if len(p.F.AtRisk) == 0 {
		s.Note = fmt.Sprintf(t.t("at_risk_none"), p.F.RiskScore)
		return s
	}
	s.Head = []string{t.t("customer"), t.t("unit"), t.t("segment"), t.t("score"), t.t("value"), t.t("drivers")}
	for _, r := range p.F.AtRisk {
		s.Rows = append(s.Rows, []string{r.Customer, r.Unit, t.t(r.Segment), fmt.Sprintf("%.0f", r.Score), money(r.Value), r.Drivers})
	}
	return s
}

func (p *page) seasonalSection() section {
	t := p.t
	if s, ok := p.skipped("seasonal", t.t("seasonal")); ok {
		return s
	}
	s := section{Title: t.t("seasonal"), Note: t.t("seasonal_note")}
	var labels []string
	var vals []float64
	for _, pt := range p.F.Seasonal {
		labels, vals = append(labels, strconv.Itoa(int(pt.X))), append(vals, pt.Y)
	}
	s.Chart = columns(t.t("seasonal"), labels, vals, 1, func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) })
	return s
}

func (p *page) changeSection() section {
	t := p.t
	s := section{Title: t.t("change")}
	if p.Prev == nil {
		s.Note = t.t("change_none")
		return s
	}
	s.Head = []string{"", fmt.Sprintf(t.t("previous"), p.PrevDate), t.t("now"), t.t("delta")}
	s.Rows = append(s.Rows,
		[]string{t.t("customers"), p.Int(p.Prev.Customers), p.Int(p.F.Customers), signedPct(float64(p.F.Customers), float64(p.Prev.Customers))},
		[]string{t.t("revenue"), money(p.Prev.Revenue), money(p.F.Revenue), signedPct(p.F.Revenue, p.Prev.Revenue)})
	for _, sg := range p.F.Segments {
		prev := p.Prev.Segments[sg.Segment]
		s.Rows = append(s.Rows, []string{t.t(sg.Segment) + " · " + t.t("customers"), p.Int(prev.Customers), p.Int(sg.Customers), signedPct(float64(sg.Customers), float64(prev.Customers))})
	}
	return s
}

// writeHTML renders the page.
func (p *page) writeHTML(w io.Writer) error {
	if err := pageTmpl.Execute(w, p); err != nil {
		return fmt.Errorf("rendering report HTML: %w", err)
	}
	return nil
}

// writeText renders the plain-text alternative: the same figures as tables.
func (p *page) writeText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%s · %s %s\n\n%s: %s   %s: %s\n", p.Title, p.Scope, p.T("as_of"), p.F.AsOf,
		p.T("customers"), p.Int(p.F.Customers), p.T("revenue"), money(p.F.Revenue))
	for _, s := range p.Sections() {
		fmt.Fprintf(&b, "\n== %s ==\n", s.Title)
		if s.Note != "" {
			fmt.Fprintln(&b, s.Note)
		}
		if len(s.Head) > 0 {
			fmt.Fprintln(&b, strings.Join(s.Head, " | "))
			for _, r := range s.Rows {
				fmt.Fprintln(&b, strings.Join(r, " | "))
			}
		}
	}
	fmt.Fprintf(&b, "\n%s\n", p.T("text_intro"))
	_, err := io.WriteString(w, b.String())
	return err
}
