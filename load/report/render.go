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
	Currency                      string
	// Mail makes charts <img src="cid:…"> references to PNG parts instead
	// of inline SVG, which Gmail and Outlook do not show.
	Mail bool
	t    texts
	m    measurer
}

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:Helvetica,Arial,'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif;color:#222;max-width:760px;margin:24px auto;padding:0 12px}
h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:4px 10px;border-bottom:1px solid #e5e5e5;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;white-space:nowrap}td.c{white-space:nowrap}.note{color:#666;font-size:13px}.kpi{font-size:20px;font-weight:bold}
img.chart{display:block;border:0;max-width:100%;height:auto}
</style></head><body>
<h1>{{.Title}}</h1>
<p class="note">{{.Scope}} · {{.T "as_of"}} {{.F.AsOf}} · {{.T "generated"}} {{.Generated}}</p>
<table><tr><th>{{.T "customers"}}</th><th>{{.T "revenue"}}</th></tr>
<tr><td class="kpi">{{.Int .F.Customers}}</td><td class="kpi">{{.Money .F.Revenue}}</td></tr></table>
{{range $s := .Sections}}<h2>{{.Title}}</h2>
{{if .Note}}<p class="note">{{.Note}}</p>{{end}}{{with .Chart}}<div>{{$.ChartHTML .}}</div>{{end}}
{{if .Head}}<table><tr>{{range $i, $h := .Head}}<th{{if $s.Num $i}} class="n"{{end}}>{{$h}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range $i, $c := .}}<td{{if $s.Num $i}} class="n"{{else if $s.Compact $i}} class="c"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{end}}</body></html>
`))

// section is one titled block: an optional note, chart and table. Tables
// also make the plain-text alternative.
type section struct {
	Title, Note string
	Chart       *chart
	Head        []string
	Rows        [][]string
	// Align is one letter per column: l (text, may wrap), c (short text,
	// kept on one line) or r (figure); empty: the first column is text, the
	// others figures.
	Align string
}

// Num tells whether column i holds figures (right-aligned, never wrapped).
func (s section) Num(i int) bool {
	if s.Align != "" {
		return i < len(s.Align) && s.Align[i] == 'r'
	}
	return i > 0
}

// Compact tells whether column i is short text kept on one line.
func (s section) Compact(i int) bool { return i < len(s.Align) && s.Align[i] == 'c' }

// ChartHTML is a chart as inline SVG (saved file) or as a cid: image (mail).
func (p *page) ChartHTML(c *chart) template.HTML {
	if p.Mail {
		return template.HTML(fmt.Sprintf(`<img class="chart" src="cid:%s" width="%d" height="%d" alt="%s">`,
			c.ID, chartW, c.Height, template.HTMLEscapeString(c.Label)))
	}
	return template.HTML(c.SVG(p.m)) // our own SVG, built with escaped text
}

// charts lists the page's charts in order (the mail's image parts).
func (p *page) charts() []*chart {
	var out []*chart
	for _, s := range p.Sections() {
		if s.Chart != nil {
			out = append(out, s.Chart)
		}
	}
	return out
}

// T translates a label.
func (p *page) T(key string) string { return p.t.t(key) }

// Num right-aligns every column but the first.
func (p *page) Num(i int) bool { return i > 0 }

// Int formats a count with thousands separators.
func (p *page) Int(v int64) string { return group(strconv.FormatInt(v, 10)) }

// Money formats an amount with thousands separators, no cents and the
// configured currency (none when report.currency is not set).
func (p *page) Money(v float64) string { return withCurrency(money(v), p.Currency) }

// currencySymbols are written before the amount; other codes after it.
var currencySymbols = map[string]string{"USD": "$", "EUR": "€", "GBP": "£", "CNY": "¥", "RMB": "¥", "JPY": "¥", "INR": "₹", "KRW": "₩"}

func withCurrency(amount, currency string) string {
	if currency == "" {
		return amount
	}
	if sym, ok := currencySymbols[strings.ToUpper(currency)]; ok {
		if strings.HasPrefix(amount, "-") {
			return "-" + sym + amount[1:]
		}
		return sym + amount
	}
	return amount + " " + currency
}

func money(v float64) string {
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = group(strings.TrimPrefix(s, "-"))
	if neg && s != "0" {
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
	out = append(out, p.movementSections()...)
	seg := section{Title: t.t("segments"), Head: []string{t.t("segment"), t.t("customers"), t.t("customer_sh"), t.t("revenue"), t.t("revenue_sh")}}
	var labels []string
	var cs, rs []float64
	for _, s := range f.Segments {
		c, r := share(float64(s.Customers), float64(f.Customers)), share(s.Revenue, f.Revenue)
		labels = append(labels, t.t(s.Segment))
		cs, rs = append(cs, c), append(rs, r)
		seg.Rows = append(seg.Rows, []string{t.t(s.Segment), p.Int(s.Customers), pct(c), p.Money(s.Revenue), pct(r)})
	}
	seg.Chart = pairBars("segments", t.t("segments"), labels, cs, rs, t.t("customer_sh"), t.t("revenue_sh"))
	out = append(out, seg)
	if len(f.Units) > 0 {
		u := section{Title: t.t("units"), Head: []string{t.t("unit"), t.t("customers"), t.t("revenue"), t.t("revenue_sh")}}
		for _, r := range f.Units {
			u.Rows = append(u.Rows, []string{r.Unit, p.Int(r.Customers), p.Money(r.Revenue), pct(share(r.Revenue, f.Revenue))})
		}
		out = append(out, u)
	}
	out = append(out, p.paretoSection(), p.churnSection(), p.riskSection(), p.cohortSection(), p.seasonalSection(), p.changeSection())
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
	marks := []mark{
		{p.F.Pareto75, 0.75, fmt.Sprintf(t.t("pareto_mark"), pct(p.F.Pareto75), "75%")},
		{p.F.Pareto95, 0.95, fmt.Sprintf(t.t("pareto_mark"), pct(p.F.Pareto95), "95%")},
	}
	s.Chart = curve("pareto", t.t("pareto"), p.F.Pareto, marks, t.t("pareto_x"), t.t("pareto_y"))
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
	s.Chart = columns("churn", t.t("churn"), labels, vals, 0, "", func(v float64) string { return p.Int(int64(v)) })
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
	s.Note = fmt.Sprintf(t.t("at_risk_note"), p.F.RiskScore)
	s.Head = []string{t.t("customer"), t.t("segment"), t.t("value"), t.t("score"), t.t("why")}
	s.Align = "lcrrl"
	if p.F.Scope == "" {
		s.Head = append([]string{s.Head[0], t.t("unit")}, s.Head[1:]...)
		s.Align = "lccrrl"
	}
	for _, r := range p.F.AtRisk {
		row := []string{r.Name, t.t(r.Segment), p.Money(r.Value), fmt.Sprintf("%.0f", r.Score), p.reasons(r)}
		if p.F.Scope == "" {
			row = append([]string{row[0], r.Unit}, row[1:]...)
		}
		s.Rows = append(s.Rows, row)
	}
	return s
}

// reasons says in plain words why a customer is at risk: recency against
// their own rhythm first, then the other drivers by their weight in the
// score. Without those columns it falls back to the mart's drivers text.
func (p *page) reasons(r riskRow) string {
	t := p.t
	if r.Reasons == nil {
		return r.Drivers
	}
	var out []string
	for _, d := range r.Reasons {
		switch d.Kind {
		case "rhythm":
			out = append(out, fmt.Sprintf(t.t("why_rhythm"), d.N, d.M))
		case "alive":
			out = append(out, fmt.Sprintf(t.t("why_alive"), d.N))
		default:
			out = append(out, fmt.Sprintf(t.t("why_"+d.Kind), d.N))
		}
	}
	return strings.Join(out, t.t("why_sep"))
}

// movementSections open the report with what changed since the previous
// week: the migration matrix (from → to, customers and revenue) and the
// named champions who left or arrived.
func (p *page) movementSections() []section {
	t := p.t
	if s, ok := p.skipped("movement", t.t("movement")); ok {
		return []section{s}
	}
	mv := p.F.Movement
	if mv == nil {
		return []section{{Title: t.t("movement"), Note: t.t("movement_none")}}
	}
	seg := func(s string) string {
		if s == "" {
			return t.t("new_customer")
		}
		return t.t(s)
	}
	s := section{Title: fmt.Sprintf(t.t("movement_since"), mv.From),
		Note: fmt.Sprintf(t.t("movement_note"), mv.To, mv.From, p.Int(mv.Changed), p.Int(mv.New), p.Int(mv.RiskCount), p.Money(mv.IntoRisk)),
		Head: []string{t.t("from"), t.t("to"), t.t("customers"), t.t("revenue")}, Align: "ccrr"}
	if mv.Banded {
		s.Note += " " + fmt.Sprintf(t.t("movement_churn"), p.Int(mv.HighChurnCount), p.Money(mv.IntoHighChurn))
	}
	for i, m := range mv.Moves {
		if i == 12 {
			break
		}
		s.Rows = append(s.Rows, []string{seg(m.From), seg(m.To), p.Int(m.Customers), p.Money(m.Revenue)})
	}
	c := section{Title: t.t("champions_moves"), Head: []string{"", t.t("customer"), t.t("segment"), t.t("revenue")}, Align: "clcr"}
	for _, n := range mv.Champions.Lost {
		c.Rows = append(c.Rows, []string{t.t("champion_lost"), n.Name, "→ " + seg(n.Segment), p.Money(n.Revenue)})
	}
	for _, n := range mv.Champions.Gained {
		c.Rows = append(c.Rows, []string{t.t("champion_gained"), n.Name, seg(n.Segment) + " →", p.Money(n.Revenue)})
	}
	if len(c.Rows) == 0 {
		c.Head, c.Note = nil, t.t("champions_none")
	}
	return []section{s, c}
}

// cohortSection answers "do new customers come back": a heat map of the
// share of each first-purchase month buying again N months later, and a
// table of months 1, 3 and 6 for the text version.
func (p *page) cohortSection() section {
	t := p.t
	if s, ok := p.skipped("cohorts", t.t("cohorts")); ok {
		return s
	}
	s := section{Title: t.t("cohorts"), Note: t.t("cohorts_note")}
	if len(p.F.Cohorts) == 0 {
		s.Note = t.t("no_data")
		return s
	}
	var rows, cols []string
	var cells [][]float64
	for i := 0; i < cohortSpan; i++ {
		cols = append(cols, strconv.Itoa(i))
	}
	s.Head = []string{t.t("cohort"), t.t("customers"), fmt.Sprintf(t.t("month_n"), 1), fmt.Sprintf(t.t("month_n"), 3), fmt.Sprintf(t.t("month_n"), 6)}
	for _, c := range p.F.Cohorts {
		rows = append(rows, c.Month)
		cells = append(cells, c.Retention)
		row := []string{c.Month, p.Int(c.Customers)}
		for _, k := range []int{1, 3, 6} {
			if k < len(c.Retention) && !math.IsNaN(c.Retention[k]) {
				row = append(row, pct(c.Retention[k]))
			} else {
				row = append(row, "—")
			}
		}
		s.Rows = append(s.Rows, row)
	}
	s.Chart = heat("cohorts", t.t("cohorts"), rows, cols, cells, t.t("cohorts_x"))
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
		labels, vals = append(labels, t.month(int(pt.X))), append(vals, pt.Y)
	}
	s.Chart = columns("seasonal", t.t("seasonal"), labels, vals, 1, t.t("seasonal_ref"), func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) })
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
		[]string{t.t("revenue"), p.Money(p.Prev.Revenue), p.Money(p.F.Revenue), signedPct(p.F.Revenue, p.Prev.Revenue)})
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
