package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 17.3: fix the config, rerun, done. cdw quarantine lists the rejects
// grouped by reason with an example and what to change; after the change
// the next extract reads the file again and the quarantine is empty.
func TestQuarantineCommandAndRerunAfterAFix(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfgText := func(extra string) string {
		return "warehouse: wh\nsources:\n  - name: helpdesk\n    kind: files\n    entities:\n      tickets:\n" +
			"        path: tickets.csv\n        max_rejected: 100%\n" + extra +
			"        columns: {ticket_id: Case, created_at: Timestamp, status: Activity}\n"
	}
	write("tickets.csv", "Case,Timestamp,Activity\nT1,2011-04-02 14:15:17,open\nT2,02-Apr-2011 14h15,open\nT3,03-Apr-2011 09h00,closed\n")
	write("cdw.yaml", cfgText(""))
	cfg := filepath.Join(dir, "cdw.yaml")
	if code, _, stderr := cdw(t, "extract", "--config", cfg); code != 0 {
		t.Fatalf("extract: %s", stderr)
	}
	code, stdout, stderr := cdw(t, "quarantine", "--config", cfg, "--source", "helpdesk")
	if code != 0 {
		t.Fatalf("quarantine: %s", stderr)
	}
	for _, want := range []string{"helpdesk.tickets:", `2× column "created_at" (Timestamp): "…" is not a timestamp`,
		"tickets.csv line 3: T2,02-Apr-2011 14h15,open", "change: add the column's layout to timestamp_formats"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("cdw quarantine does not say %q:\n%s", want, stdout)
		}
	}
	write("cdw.yaml", cfgText("        timestamp_formats: [\"02-Jan-2006 15h04\"]\n"))
	if code, _, stderr := cdw(t, "extract", "--config", cfg); code != 0 {
		t.Fatalf("extract after the fix: %s", stderr)
	}
	if _, stdout, _ := cdw(t, "quarantine", "--config", cfg); !strings.Contains(stdout, "Nothing in quarantine.") {
		t.Fatalf("after the fix the quarantine still lists:\n%s", stdout)
	}
}
