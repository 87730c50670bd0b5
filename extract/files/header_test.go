package files_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract"
)

// TestHeaderDuplicatesAndRepeats reads a helpdesk event export whose header
// has "Variant" twice and which repeats its header row inside the file (it
// was concatenated from several exports).
func TestHeaderDuplicatesAndRepeats(t *testing.T) {
	dir, wh := "testdata/helpdesk", t.TempDir()
	const base = `
entities:
  tickets:
    path: events.csv
    timestamp_formats: ["2006/01/02 15:04:05.000"]
    columns: {ticket_id: Case ID, created_at: Complete Timestamp, status: Activity, customer_id: customer}
`
	// Mapping the repeated name alone is an error that says how to address each.
	n := strings.Replace(base, "status: Activity", "status: Variant", 1)
	_, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "desk", openSource(t, dir, n), "tickets", false)
	want := `events.csv: the header names 2 columns "Variant" (columns 5, 7); map the one you mean as "Variant#1" or "Variant#2"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("mapping a duplicate name: %v\nwant %q", err, want)
	}
	// Variant#2 and a column by position (#6) address them.
	n = strings.Replace(base, "status: Activity", "status: Variant#2, category: \"#6\"", 1)
	var logs bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	res, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "desk", openSource(t, dir, n), "tickets", false)
	slog.SetDefault(old)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `msg="skipped header rows repeated inside the file" source=shop file=testdata/helpdesk/events.csv rows=2`) {
		t.Errorf("no count of skipped header rows in the log:\n%s", logs.String())
	}
	// 12 lines after the header, 2 of them repeated headers: 10 events, no rejects.
	if res.Rows != 10 || res.Rejected != 0 {
		t.Fatalf("rows=%d rejected=%d, want 10 and 0", res.Rows, res.Rejected)
	}
	var status, category string
	var lines int
	if err := rawQuery(t, wh, "desk", "tickets", "SELECT min(status), min(category), max(_source_line) FROM RAW").Scan(&status, &category, &lines); err != nil {
		t.Fatal(err)
	}
	if status != "Variant 12" || category != "12" || lines != 13 {
		t.Fatalf("status=%q category=%q last line=%d", status, category, lines)
	}

	// An empty header name is addressed by position only.
	tmp := t.TempDir()
	write(t, filepath.Join(tmp, "e.csv"), "id,,ts\n1,x,2024-01-01\n")
	n = "entities:\n  tickets:\n    path: e.csv\n    columns: {ticket_id: id, created_at: ts, status: \"#2\"}\n"
	if _, err := (&extract.Extractor{Dir: wh}).Extract(context.Background(), "e", openSource(t, tmp, n), "tickets", false); err != nil {
		t.Fatal(err)
	}
	if err := rawQuery(t, wh, "e", "tickets", "SELECT min(status) FROM RAW").Scan(&status); err != nil || status != "x" {
		t.Fatalf("unnamed column by position: %q %v", status, err)
	}
}
