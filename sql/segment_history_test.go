package models_test

import (
	"database/sql"
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
