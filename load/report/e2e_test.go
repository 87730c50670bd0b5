package report_test

import (
	"context"
	"database/sql"
	"math"
	"path/filepath"
	"regexp"
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
		"High-value customers at high risk", "Do new customers come back? (cohort retention)", "Seasonal index by month", "Change since the previous report"}
	if len(order) < 2 || !strings.HasPrefix(order[0], "What moved since ") || order[1] != "Champions lost and gained" ||
		strings.Join(order[2:], "\n") != strings.Join(want, "\n") {
		t.Fatalf("sections %q, want the movement, champions, then %q", order, want)
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
	// all-units version: customer, unit, segment, net revenue, churn score, why
	named := `coalesce(nullif(concat_ws(' · ', nullif(trim(c.name), ''), nullif(trim(c.company), '')), ''), CAST(r.customer_id AS VARCHAR))`
	for _, r := range rows[want[4]][1:] {
		if len(r) != 6 {
			t.Fatalf("at-risk row %v: want 6 columns", r)
		}
		score := num(t, r[4])
		if score < 50 || one("SELECT count(*) FROM churn_risk r LEFT JOIN customer_360 c USING (customer_id) WHERE r.churn_score = ? AND "+named+" = ?", score, r[0]) < 1 {
			t.Errorf("at-risk row %v: score %v is not that customer's churn_score, or is below 50", r, score)
		}
		if !strings.HasPrefix(r[5], "no order for ") || !strings.Contains(r[5], "usually orders every") {
			t.Errorf("at-risk row %v does not say why in plain words", r)
		}
	}
	seasonal := html[strings.Index(html, "<h2>Seasonal index by month</h2>"):]
	seasonal = seasonal[:strings.Index(seasonal, "<h2>Change since")]
	if !strings.Contains(seasonal, "<svg") {
		t.Error("seasonal section has no chart")
	}
	// months by name, each bar the mart's index ÷ 100 (the mart stores ×100)
	for m, name := range []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"} {
		if !strings.Contains(seasonal, ">"+name+"<") {
			t.Errorf("seasonal chart has no month %s", name)
		}
		v := one("SELECT avg(seasonal_index) / 100 FROM seasonal_index WHERE month = ?", m+1)
		if label := ">" + strconv.FormatFloat(v, 'f', 2, 64) + "<"; !strings.Contains(seasonal, label) {
			t.Errorf("seasonal chart lacks %s's index %s", name, label)
		}
	}
	// cohorts: the last 12 first-purchase months, month-1 retention as in
	// the mart (all units added up)
	cohorts := rows[want[5]]
	if len(cohorts) < 2 || len(cohorts)-1 > 12 {
		t.Fatalf("cohort table has %d rows, want 1–12", len(cohorts)-1)
	}
	for _, r := range cohorts[1:] {
		size := one("SELECT sum(cohort_customers) FROM cohort_retention WHERE strftime(cohort_month, '%Y-%m') = ? AND months_since = 0", r[0])
		if num(t, r[1]) != size {
			t.Errorf("cohort %s: %s customers, mart has %v", r[0], r[1], size)
		}
		if r[2] == "—" {
			continue
		}
		m1 := one("SELECT sum(active_customers) / sum(cohort_customers) FROM cohort_retention WHERE strftime(cohort_month, '%Y-%m') = ? AND months_since = 1", r[0])
		if got := num(t, strings.TrimSuffix(r[2], "%")) / 100; math.Abs(got-m1) > 0.0051 {
			t.Errorf("cohort %s: month-1 retention %s, mart gives %.4f", r[0], r[2], m1)
		}
	}
	if one("SELECT count(*) FROM cohort_retention WHERE months_since = 0 AND active_customers <> cohort_customers") != 0 {
		t.Error("cohort_retention: month 0 must have every cohort customer active")
	}
	checkMovement(t, db, order[0], rows[order[0]], body[order[0]], rows[order[1]])
	change := rows[want[7]]
	if len(change) < 3 || change[0][1] != "Previous (2026-05-04)" || change[1][0] != "Customers" || change[1][3] != "+0.0%" {
		t.Errorf("change section does not compare with the report a week earlier (same data, so +0.0%%): %v", change)
	}
	if strings.Count(html, "<svg") < 5 {
		t.Errorf("report has %d charts, want at least 5 (segments, Pareto, churn, cohorts, seasonal)", strings.Count(html, "<svg"))
	}
}

// intoHighChurn finds the movement note's count of customers whose churn
// band rose to high or critical.
var intoHighChurn = regexp.MustCompile(`\. ([\d,]+) customers with .{1,40}? of revenue moved into high churn risk`)

// checkMovement compares the migration matrix of the report with a direct
// count over segment_history's last two week ends.
func checkMovement(t *testing.T, db *sql.DB, title string, moves [][]string, body string, champions [][]string) {
	t.Helper()
	var prev, cur string
	if err := db.QueryRow(`SELECT CAST(min(as_of) AS VARCHAR), CAST(max(as_of) AS VARCHAR)
		FROM (SELECT DISTINCT as_of FROM segment_history WHERE dayofweek(as_of) = 0 ORDER BY as_of DESC LIMIT 2)`).Scan(&prev, &cur); err != nil {
		t.Fatal(err)
	}
	if title != "What moved since "+prev {
		t.Errorf("movement section %q, want it since the week end %s", title, prev)
	}
	// the direct count: customers at cur whose segment at prev differs
	want := map[string][2]float64{}
	rows, err := db.Query(`SELECT coalesce(p.segment, '(new customer)'), c.segment, count(*), sum(c.monetary)
		FROM segment_history c LEFT JOIN segment_history p ON p.customer_id = c.customer_id AND p.as_of = CAST(? AS DATE)
		WHERE c.as_of = CAST(? AS DATE) AND p.segment IS DISTINCT FROM c.segment GROUP BY ALL`, prev, cur)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var from, to string
		var n, rev float64
		if err := rows.Scan(&from, &to, &n, &rev); err != nil {
			t.Fatal(err)
		}
		want[from+" → "+to] = [2]float64{n, rev}
	}
	if len(want) == 0 {
		t.Fatal("no customer changed segment between the last two week ends: the demo data should move some")
	}
	if len(moves) < 2 {
		t.Fatalf("migration table has no rows:\n%s", body)
	}
	for _, r := range moves[1:] {
		w, ok := want[r[0]+" → "+r[1]]
		if !ok {
			t.Errorf("migration %s → %s is not in segment_history", r[0], r[1])
			continue
		}
		if num(t, r[2]) != w[0] || math.Abs(num(t, r[3])-w[1]) > 0.5 {
			t.Errorf("migration %s → %s: report %s customers, %s revenue; direct count %v, %.0f", r[0], r[1], r[2], r[3], w[0], w[1])
		}
	}
	if n := len(moves) - 1; n != min(12, len(want)) {
		t.Errorf("migration table has %d moves, segment_history %d (the report shows up to 12)", n, len(want))
	}
	// revenue that moved into high churn risk: the band went from low or
	// medium to high or critical
	var banded int
	if err := db.QueryRow(`SELECT count(*) FROM segment_history c JOIN segment_history p ON p.customer_id = c.customer_id AND p.as_of = CAST(? AS DATE)
		WHERE c.as_of = CAST(? AS DATE) AND p.churn_band IN ('low', 'medium') AND c.churn_band IN ('high', 'critical')`, prev, cur).Scan(&banded); err != nil {
		t.Fatal(err)
	}
	if m := intoHighChurn.FindStringSubmatch(body); m == nil || num(t, m[1]) != float64(banded) {
		t.Errorf("movement note does not say that %d customers moved into high churn risk:\n%s", banded, body)
	}
	var lost float64
	if err := db.QueryRow(`SELECT count(*) FROM segment_history c JOIN segment_history p ON p.customer_id = c.customer_id AND p.as_of = CAST(? AS DATE)
		WHERE c.as_of = CAST(? AS DATE) AND p.segment = 'champions' AND c.segment <> 'champions'`, prev, cur).Scan(&lost); err != nil {
		t.Fatal(err)
	}
	got := 0
	if len(champions) == 0 {
		champions = [][]string{nil}
	}
	for _, r := range champions[1:] {
		if r[0] == "left" {
			got++
		}
	}
	if float64(got) != min(5, lost) {
		t.Errorf("champions table names %d who left, segment_history has %v", got, lost)
	}
}
