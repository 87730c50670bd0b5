package httpapi

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestCompositeKey maps a helpdesk whose ticket numbers restart per desk:
// ticket_id: [desk.code, number] joins both (a number alone collides), and a
// record missing a part is quarantined naming it.
func TestCompositeKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data": [
			{"desk": {"code": "EU"}, "number": 1, "created_at": "2025-03-01T10:00:00Z"},
			{"desk": {"code": "US"}, "number": 1, "created_at": "2025-03-01T11:00:00Z"},
			{"desk": {"code": "US"}, "number": "2", "created_at": "2025-03-01T12:00:00Z"},
			{"number": 3, "created_at": "2025-03-01T13:00:00Z"},
			{"desk": {"code": ["EU"]}, "number": 4, "created_at": "2025-03-01T14:00:00Z"}]}`))
	}))
	defer srv.Close()
	yml := "base_url: " + srv.URL + `
entities:
  tickets:
    path: /tickets
    records: data
    pagination: {type: none}
    fields: {ticket_id: [desk.code, number], created_at: created_at}
`
	x := newExtractor(t)
	res, err := runExtract(context.Background(), x, yml)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 3 || res.Rejected != 2 {
		t.Fatalf("%d rows, %d rejected; want 3, 2", res.Rows, res.Rejected)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ids string
	if err := db.QueryRow("SELECT string_agg(replace(ticket_id, chr(31), '|'), ',' ORDER BY ticket_id) FROM read_parquet(" +
		fileList(x.Dir, committedState(t, x.Dir).Files) + ")").Scan(&ids); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(ids, ",")
	if want := []string{"EU|1", "US|1", "US|2"}; !slices.Equal(got, want) {
		t.Fatalf("ticket ids %q, want %q", got, want)
	}
	q := readQuarantine(t, x.Dir)
	if len(q) != 2 || !strings.Contains(q[0].Reason, "key part desk.code is empty") ||
		!strings.Contains(q[1].Reason, "key part desk.code: expected a string or number") {
		t.Fatalf("quarantine %+v", q)
	}
	for fields, want := range map[string]string{
		"{ticket_id: [a, a], created_at: c}":                  `JSON path "a" listed twice`,
		"{ticket_id: [a], created_at: c}":                     "at least two JSON paths",
		"{ticket_id: a, created_at: c, satisfaction: [a, b]}": "only text columns",
	} {
		_, err := openSource(context.Background(), t.TempDir(), strings.Replace(yml, "{ticket_id: [desk.code, number], created_at: created_at}", fields, 1))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", fields, err, want)
		}
	}
}
