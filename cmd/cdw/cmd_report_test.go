package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportSaysWhenNothingWasSent: a report that is saved but not e-mailed
// says so in one line, and one that has nobody to send to fails.
func TestReportSaysWhenNothingWasSent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	if code, _, stderr := cdw(t, "demo", "--dir", dir, "--customers", "150"); code != 0 {
		t.Fatal(stderr)
	}
	cfg := filepath.Join(dir, "cdw.yaml")
	code, stdout, stderr := cdw(t, "report", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "not e-mailed: cdw.yaml has no smtp: section") {
		t.Fatalf("no smtp: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "-segment-summary.html") {
		t.Errorf("the saved report is not named: %q", stdout)
	}
	code, stdout, _ = cdw(t, "report", "--config", cfg, "--no-send")
	if code != 0 || !strings.Contains(stdout, "not e-mailed: --no-send") {
		t.Fatalf("--no-send: exit %d, stdout %q", code, stdout)
	}
	// smtp configured but no recipient anywhere: nothing can go out, which
	// is an error (the server is never contacted: port 9 is discard)
	body, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(body, []byte("smtp: {host: 127.0.0.1, port: 9, from: cdw@example.com}\n")...), 0o644)
	code, stdout, stderr = cdw(t, "report", "--config", cfg)
	if code == 0 || !strings.Contains(stderr+stdout, "nothing sent: no recipients for all units") {
		t.Fatalf("no recipients: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
