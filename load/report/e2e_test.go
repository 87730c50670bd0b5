package report_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdwhq/cdw/load/report"
)

// textSections splits the plain-text alternative into its "== title =="
// sections: the table rows (cells split on " | ") and the whole text.
func textSections(text string) (order []string, rows map[string][][]string, body map[string]string) {
	rows, body = map[string][][]string{}, map[string]string{}
	cur := ""
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "== ") && strings.HasSuffix(line, " ==") {
			cur = strings.TrimSuffix(strings.TrimPrefix(line, "== "), " ==")
			order = append(order, cur)
			continue
		}
		if cur == "" {
			continue
		}
		body[cur] += line + "\n"
		if strings.Contains(line, " | ") {
			rows[cur] = append(rows[cur], strings.Split(line, " | "))
		}
	}
	return order, rows, body
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	if err != nil {
		t.Fatalf("not a number in the report: %q", s)
	}
	return v
}

// TestReportFromRealPublish runs the demo pipeline to a real publish, then
// two reports a week apart, and checks every section against the published
// marts read independently.
func TestReportFromRealPublish(t *testing.T) {
	dir := warehouse(t)
	rc := parse(t, dir, "report: {to: [ceo@example.com], top_n: 5, risk_score: 50}\n")
	day1 := time.Date(2026, 5, 4, 7, 0, 0, 0, time.UTC)
	if _, err := report.Run(context.Background(), rc, report.RunOptions{Now: day1}); err != nil {
		t.Fatal(err)
	}
	res, err := report.Run(context.Background(), rc, report.RunOptions{Now: day1.AddDate(0, 0, 7)})
	if err != nil {
		t.Fatal(err)
	}
	html, text := string(res.Versions[0].HTML), string(res.Versions[0].Text)
	if strings.Contains(html, "Not available yet") || strings.Contains(text, "Not available yet") {
		t.Fatalf("a section fell back to its 'not available' note:\n%s", text)
	}
	order, rows, body := textSections(text)
	want := []string{"Segment sizes and revenue share", "Business units", "ABC analysis (Pareto curve)", "Churn-risk distribution",
		"High-value customers at high risk", "Seasonal index by month", "Change since the previous report"}
	if strings.Join(order, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sections %q, want %q", order, want)
	}

	db, err := sql.Open("duckdb", filepath.Join(dir, "marts.duckdb")+"?access_mode=read_only")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	one := func(q string, args ...any) float64 {
		var v float64
		if err := db.QueryRow(q, args...).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return v
	}
	// tableSum adds column col of a section's table rows (head excluded).
	tableSum := func(section string, col int) (float64, int) {
		r := rows[section]
		if len(r) < 2 {
			t.Fatalf("section %q has no table rows:\n%s", section, body[section])
		}
		total := 0.0
		for _, row := range r[1:] {
			total += num(t, row[col])
		}
		return total, len(r) - 1
	}

	customers := one("SELECT count(*) FROM customer_segments")
	if got, n := tableSum(want[0], 1); got != customers || float64(n) != one("SELECT count(DISTINCT segment) FROM customer_segments") {
		t.Errorf("segments table: %v customers in %d rows; marts have %v", got, n, customers)
	}
	if got, n := tableSum(want[1], 1); got != customers || float64(n) != one("SELECT count(DISTINCT business_unit) FROM customer_segments") {
		t.Errorf("units table: %v customers in %d rows; marts have %v", got, n, customers)
	}
	abc, _ := tableSum(want[2], 1)
	if abc != customers {
		t.Errorf("ABC classes count %v customers, marts have %v", abc, customers)
	}
	for _, class := range []string{"A", "B", "C"} {
		found := false
		for _, r := range rows[want[2]][1:] {
			if r[0] == class {
				found = true
				if c := num(t, r[1]); c != one("SELECT count(*) FROM customer_segments WHERE abc_class = ?", class) {
					t.Errorf("ABC class %s: report %v", class, c)
				}
			}
		}
		if !found {
			t.Errorf("ABC class %s missing from the report", class)
		}
	}
	if !strings.Contains(body[want[2]], "of customers bring 75% of revenue") {
		t.Errorf("Pareto note missing:\n%s", body[want[2]])
	}
	if got, _ := tableSum(want[3], 1); got != one("SELECT count(*) FROM churn_risk") {
		t.Errorf("churn bands add up to %v customers, churn_risk has %v", got, one("SELECT count(*) FROM churn_risk"))
	}
	n := len(rows[want[4]]) - 1
	atRisk := one("SELECT count(*) FROM churn_risk WHERE churn_score >= 50")
	if float64(n) != min(5, atRisk) {
		t.Errorf("at-risk list has %d rows, want min(top_n 5, %v at risk)", n, atRisk)
	}
	for _, r := range rows[want[4]][1:] {
		score := num(t, r[3])
		if score < 50 || score != one("SELECT churn_score FROM churn_risk WHERE CAST(customer_id AS VARCHAR) = ?", r[0]) {
			t.Errorf("at-risk row %v: score %v is not the customer's churn_score or is below 50", r, score)
		}
	}
	seasonal := html[strings.Index(html, "<h2>Seasonal index by month</h2>"):]
	seasonal = seasonal[:strings.Index(seasonal, "<h2>Change since")]
	if !strings.Contains(seasonal, "<svg") {
		t.Error("seasonal section has no chart")
	}
	for m := 1; m <= 12; m++ {
		if !strings.Contains(seasonal, ">"+strconv.Itoa(m)+"<") {
			t.Errorf("seasonal chart has no month %d", m)
		}
	}
	change := rows[want[6]]
	if len(change) < 3 || change[0][1] != "Previous (2026-05-04)" || change[1][0] != "Customers" || change[1][3] != "+0.0%" {
		t.Errorf("change section does not compare with the report a week earlier (same data, so +0.0%%): %v", change)
	}
	if strings.Count(html, "<svg") < 4 {
		t.Errorf("report has %d charts, want at least 4 (segments, Pareto, churn, seasonal)", strings.Count(html, "<svg"))
	}
}
