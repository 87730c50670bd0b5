package models_test

import (
	"database/sql"
	"fmt"
	"testing"
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
