package models_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/pipelines"
)

// segmentsAt reads every customer's segment fields: from customer_segments,
// or from segment_history at one period end.
func segmentsAt(t *testing.T, db *sql.DB, asOf string) (now, history map[string][]string) {
	t.Helper()
	const cols = `business_unit, recency_days::VARCHAR, frequency::VARCHAR, monetary::VARCHAR, r_score::VARCHAR, f_score::VARCHAR, m_score::VARCHAR, segment, abc_class, lifecycle_stage`
	now = rows(t, db, `SELECT customer_id, `+cols+` FROM customer_segments`)
	history = rows(t, db, `SELECT customer_id, `+cols+` FROM segment_history WHERE as_of = CAST(? AS DATE)`, asOf)
	return now, history
}

// TestSegmentHistoryMatchesSegments checks that segment_history applies
// customer_segments' rules: its row at a period end equals what
// customer_segments gives when as_of is that day — at the month end the
// fixture is built at, and at an earlier Sunday from a second build.
func TestSegmentHistoryMatchesSegments(t *testing.T) {
	db := fixture(t, nil) // as_of 2024-12-31, a month end
	if n := scalar[int](t, db, `SELECT count(DISTINCT as_of) FROM segment_history WHERE as_of = DATE '2024-12-31' AND month_end AND NOT week_end`); n != 1 {
		t.Fatalf("segment_history has no month-end row for 2024-12-31")
	}
	now, history := segmentsAt(t, db, "2024-12-31")
	if len(now) == 0 {
		t.Fatal("customer_segments is empty")
	}
	expectRows(t, "segment_history at 2024-12-31", history, now)
	if len(history) != len(now) {
		t.Errorf("segment_history has %d customers at 2024-12-31, customer_segments %d", len(history), len(now))
	}

	sunday := fixture(t, map[string]string{"as_of": "2024-12-29"})
	then, _ := segmentsAt(t, sunday, "2024-12-29")
	_, past := segmentsAt(t, db, "2024-12-29")
	if len(then) == 0 {
		t.Fatal("customer_segments at 2024-12-29 is empty")
	}
	expectRows(t, "segment_history at 2024-12-29", past, then)
	if len(past) != len(then) {
		t.Errorf("segment_history has %d customers at 2024-12-29, customer_segments built then %d", len(past), len(then))
	}
	if n := scalar[int](t, db, `SELECT count(*) FROM segment_history WHERE as_of = DATE '2024-12-29' AND NOT week_end`); n != 0 {
		t.Errorf("2024-12-29 is a Sunday, but %d rows say it is not a week end", n)
	}
}

// TestSegmentHistoryChurnBand checks that segment_history scores a period
// end with churn_risk's formula: at the fixture's as_of (a month end) its
// churn score is churn_risk's lapse and value points over their weights,
// and where churn_risk has no other signal (P(repurchase) weighted 0, no
// ticket or rating signal in the unit) the two bands are equal.
func TestSegmentHistoryChurnBand(t *testing.T) {
	const orderWeights = 55 + 10 // churn_weight_lapse + churn_weight_value, sql/macros/churn.sql
	const hist = `SELECT customer_id, churn_score::VARCHAR, churn_band FROM segment_history WHERE as_of = DATE '2024-12-31'`
	db := fixture(t, nil)
	want := rows(t, db, fmt.Sprintf(`SELECT customer_id, s::VARCHAR,
  CASE WHEN s >= 75 THEN 'critical' WHEN s >= 60 THEN 'high' WHEN s >= 40 THEN 'medium' ELSE 'low' END
FROM (SELECT customer_id, least(100, greatest(0, round(100 * (points_lapse + points_value) / %d)))::INTEGER AS s
      FROM churn_risk WHERE has_orders)`, orderWeights))
	got := rows(t, db, hist)
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("segment_history has %d scored customers at 2024-12-31, churn_risk %d with orders", len(got), len(want))
	}
	expectRows(t, "segment_history churn score and band at 2024-12-31", got, want)
	if n := scalar[int](t, db, `SELECT count(DISTINCT churn_band) FROM segment_history`); n < 3 {
		t.Errorf("segment_history has %d churn bands over all periods, want a spread of at least 3", n)
	}

	alone := fixture(t, map[string]string{"churn_weight_alive": "0"})
	same := rows(t, alone, fmt.Sprintf(`SELECT customer_id, churn_score::VARCHAR, churn_band FROM churn_risk WHERE has_orders AND weight_present = %d`, orderWeights))
	if len(same) == 0 {
		t.Fatal("churn_risk has no customer scored on the order signals alone")
	}
	all := rows(t, alone, hist)
	for id := range all {
		if _, ok := same[id]; !ok {
			delete(all, id)
		}
	}
	expectRows(t, "segment_history band = churn_risk band (same inputs)", all, same)
}

// TestSegmentHistoryIncremental checks that a run adds only new period
// ends: new orders inside the current week (no new Sunday or month end)
// change nothing, new orders past a Sunday add that Sunday alone and leave
// the earlier periods as they were, and the table equals a full rebuild.
func TestSegmentHistoryIncremental(t *testing.T) {
	dir := t.TempDir()
	const head = "order_id,line_no,customer_id,order_ts,status,quantity,unit_price,business_unit\n"
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(head+body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// six customers over three months, the last order on Wednesday 2024-06-12
	var first strings.Builder
	for c := 1; c <= 6; c++ {
		for m := 0; m < c%4+1; m++ {
			fmt.Fprintf(&first, "o%d%d,1,C%d,2024-0%d-%02d 10:00:00,completed,1,%d,U\n", c, m, c, 3+m, 2+2*c, 10*c)
		}
	}
	first.WriteString("last,1,C1,2024-06-12 10:00:00,completed,1,5,U\n")
	write("orders-1.csv", first.String())
	cfgPath := filepath.Join(dir, "cdw.yaml")
	if err := os.WriteFile(cfgPath, []byte(`warehouse: wh
sources:
  - name: shop
    kind: files
    entities:
      orders:
        path: orders-*.csv
        columns: {order_id: order_id, line_no: line_no, customer_id: customer_id, order_ts: order_ts, status: status,
                  quantity: quantity, unit_price: unit_price, business_unit: business_unit}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := pipelines.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	runner := &pipelines.Runner{Cfg: cfg}
	// run extracts and transforms, and returns segment_history's build note
	run := func(full bool) string {
		t.Helper()
		rep, err := runner.Run(context.Background(), pipelines.Options{Steps: pipelines.Steps{Extract: true, Transform: true},
			FullRefresh: full, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatalf("pipeline: %v", err)
		}
		for _, m := range rep.Transform.Models {
			if m.Model == "segment_history" {
				return m.Notes
			}
		}
		t.Fatal("no segment_history in the run")
		return ""
	}
	// snapshot reads segment_history, keyed by period end and customer
	snapshot := func() map[string][]string {
		t.Helper()
		db, err := sql.Open("duckdb", filepath.Join(cfg.Warehouse, "warehouse.duckdb")+"?access_mode=read_only")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		return rows(t, db, `SELECT as_of::VARCHAR || ' ' || customer_id, business_unit, segment, abc_class, lifecycle_stage, churn_score::VARCHAR, churn_band,
			recency_days::VARCHAR, frequency::VARCHAR, monetary::VARCHAR FROM segment_history`)
	}
	periods := func(s map[string][]string) map[string]bool {
		out := map[string]bool{}
		for k := range s {
			out[strings.Fields(k)[0]] = true
		}
		return out
	}

	run(false)
	before := snapshot()
	if !periods(before)["2024-06-09"] || periods(before)["2024-06-16"] {
		t.Fatalf("first build: periods %v, want up to Sunday 2024-06-09", periods(before))
	}

	// a new order on Thursday: as_of moves to 2024-06-13, no new period end
	write("orders-2.csv", "thu,1,C2,2024-06-13 10:00:00,completed,1,7,U\n")
	if n := run(false); n != "incremental: 1 new raw file(s); merged 0 rows" {
		t.Errorf("an order inside the week: segment_history %q, want an incremental run that merges nothing", n)
	}
	same := snapshot()
	if len(same) != len(before) {
		t.Errorf("an order inside the week changed segment_history from %d to %d rows", len(before), len(same))
	}
	expectRows(t, "segment_history after an order inside the week", same, before)

	// an order on Thursday 2024-06-20: Sunday 2024-06-16 is new
	write("orders-3.csv", "next,1,C3,2024-06-20 10:00:00,completed,1,9,U\n")
	note := run(false)
	after := snapshot()
	added := 0
	for k, v := range after {
		if strings.HasPrefix(k, "2024-06-16 ") {
			added++
			continue
		}
		if w, ok := before[k]; !ok || strings.Join(w, "|") != strings.Join(v, "|") {
			t.Errorf("period row %s changed: %v, was %v", k, v, w)
		}
	}
	if added == 0 || len(after) != len(before)+added {
		t.Errorf("the run past a Sunday added %d rows at 2024-06-16 and has %d rows, had %d", added, len(after), len(before))
	}
	if want := fmt.Sprintf("incremental: 1 new raw file(s); merged %d rows", added); note != want {
		t.Errorf("the run past a Sunday: segment_history %q, want %q", note, want)
	}

	// C5 moves to unit V (most of its order lines now name it): every
	// period of C5 and of both units changes, without a new period
	write("orders-4.csv", "move,1,C5,2024-06-21 10:00:00,completed,1,3,V\nmove,2,C5,2024-06-21 10:00:00,completed,1,3,V\nmove,3,C5,2024-06-21 10:00:00,completed,1,3,V\n")
	if n := run(false); !strings.HasPrefix(n, "incremental: ") {
		t.Errorf("a unit change: segment_history %q, want an incremental run", n)
	}
	moved := snapshot()
	if u := moved["2024-06-16 C5"]; len(u) == 0 || u[0] != "V" {
		t.Fatalf("C5 at 2024-06-16 is %v, want it in unit V", u)
	}
	if n := run(true); n != "full build: --full-refresh" {
		t.Fatalf("full refresh: segment_history %q", n)
	}
	full := snapshot()
	expectRows(t, "segment_history incremental = full rebuild", moved, full)
	if len(full) != len(moved) {
		t.Errorf("full rebuild has %d rows, the incremental build %d", len(full), len(moved))
	}
}
