package pipelines_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/pipelines"
)

// loadConfigText parses a cdw.yaml given as text.
func loadConfigText(t *testing.T, text string) (*pipelines.Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cdw.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return pipelines.LoadConfig(p)
}

// A helpdesk event log (one row per ticket event, as process-mining
// exports have): stg_tickets kept the last row per ticket, so created_at
// was the last event's time and no ticket was ever resolved. With shape:
// events the events fold into tickets, and a later file's events update
// an earlier ticket.
func TestTicketEventLog(t *testing.T) {
	cfg := `vars:
  as_of: 2024-01-31
sources:
  - name: helpdesk
    kind: files
    entities:
      tickets:
        path: events_*.csv
        shape: events
        resolved_when: [Resolved, Closed, Cancelled]
        columns: {ticket_id: case_id, created_at: ts, status: activity, customer_id: customer,
                  priority: priority, satisfaction: csat}
`
	dir := t.TempDir()
	_, db := runFilesIn(t, dir, cfg, map[string]string{"events_1.csv": "case_id,ts,activity,customer,priority,csat\n" +
		"T1,2024-01-01 09:00:00,Open,A,high,\n" +
		"T1,2024-01-02 09:00:00,In progress,,,\n" +
		"T1,2024-01-03 09:00:00,Resolved,,,\n" +
		"T1,2024-01-05 09:00:00,Closed,,,2\n" +
		"T2,2024-01-04 09:00:00,Open,A,,\n" +
		"T2,2024-01-06 09:00:00,Waiting,,low,\n"})
	want := map[string]string{
		"T1": "A | 2024-01-01 09:00:00 | 2024-01-03 09:00:00 | closed | high | 2 | 4",
		"T2": "A | 2024-01-04 09:00:00 | NULL | waiting | low | NULL | 2",
	}
	check := func(want map[string]string) {
		t.Helper()
		r, err := db.Query(`SELECT ticket_id, concat_ws(' | ', customer_id, strftime(created_at, '%Y-%m-%d %H:%M:%S'),
		                           coalesce(strftime(resolved_at, '%Y-%m-%d %H:%M:%S'), 'NULL'), status, priority,
		                           coalesce(satisfaction::VARCHAR, 'NULL'), events) FROM stg_tickets`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got := map[string]string{}
		for r.Next() {
			var id, row string
			if err := r.Scan(&id, &row); err != nil {
				t.Fatal(err)
			}
			got[id] = row
		}
		if len(got) != len(want) {
			t.Errorf("stg_tickets has %d tickets, want %d: %v", len(got), len(want), got)
		}
		for id, w := range want {
			if got[id] != w {
				t.Errorf("ticket %s:\n got  %s\n want %s", id, got[id], w)
			}
		}
	}
	check(want)
	var open int
	if err := db.QueryRow(`SELECT open_tickets FROM customer_tickets WHERE customer_key = 'A'`).Scan(&open); err != nil {
		t.Fatal(err)
	}
	if open != 1 {
		t.Errorf("customer A: %d open tickets at as_of, want 1 (T2)", open)
	}
	db.Close()

	// the next export carries T2's later events only
	_, db = runFilesIn(t, dir, cfg, map[string]string{"events_2.csv": "case_id,ts,activity,customer,priority,csat\n" +
		"T2,2024-01-08 09:00:00,closed,,,5\n"})
	want["T2"] = "A | 2024-01-04 09:00:00 | 2024-01-08 09:00:00 | closed | low | 5 | 3"
	check(want)
}

// shape and resolved_when are checked where they are written.
func TestTicketShapeConfigErrors(t *testing.T) {
	for name, c := range map[string]struct{ entity, want string }{
		"unknown shape":       {"shape: event", `unknown shape "event"`},
		"resolved_when alone": {"resolved_when: [done]", "resolved_when needs shape: events"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfigText(t, `sources:
  - name: helpdesk
    kind: files
    entities:
      tickets:
        path: t.csv
        `+c.entity+`
        columns: {ticket_id: id, created_at: ts}
`)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
