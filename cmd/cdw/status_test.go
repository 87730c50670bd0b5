package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunSkipsUpToDateModels: a rerun on unchanged sources builds nothing
// and says so; `cdw models --status` predicts what an edit rebuilds, and
// the run does exactly that.
func TestRunSkipsUpToDateModels(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	if code, _, stderr := cdw(t, "demo", "--dir", dir, "--customers", "150"); code != 0 {
		t.Fatal(stderr)
	}
	cfg := filepath.Join(dir, "cdw.yaml")
	code, stdout, stderr := cdw(t, "run", "--config", cfg)
	if code != 0 {
		t.Fatal(stderr)
	}
	if !strings.Contains(stdout, "Models: 0 of ") || !strings.Contains(stdout, "not run (inputs unchanged since they passed)") {
		t.Fatalf("rerun on unchanged sources:\n%s", stdout)
	}
	code, stdout, stderr = cdw(t, "models", "--config", cfg, "--status")
	if code != 0 || !strings.Contains(stdout, "0 of ") || strings.Contains(stdout, "rebuild ") {
		t.Fatalf("models --status after a run: exit %d\n%s%s", code, stdout, stderr)
	}

	// Replace a built-in mart with an edited copy: it alone is rebuilt
	// (segment_summary reads nothing downstream).
	body, _ := os.ReadFile(filepath.Join("..", "..", "sql", "marts", "segment_summary.sql"))
	os.MkdirAll(filepath.Join(dir, "my_models", "marts"), 0o755)
	os.WriteFile(filepath.Join(dir, "my_models", "marts", "segment_summary.sql"), []byte("-- replaces: builtin\n"+strings.Replace(string(body), "count(*)                                                                AS customers",
		"count(*) + 0                                                            AS customers", 1)), 0o644)
	text, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(text), "warehouse: .\n", "warehouse: .\nmodels: [my_models]\n", 1)), 0o644)
	code, stdout, stderr = cdw(t, "models", "--config", cfg, "--status")
	if code != 0 || !strings.Contains(stdout, "1 of ") || !regexpLine(stdout, "segment_summary", "rebuild", "definition changed") {
		t.Fatalf("models --status after an edit: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = cdw(t, "run", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "Models: 1 of ") || !regexpLine(stdout, "segment_summary", "success", "definition changed") ||
		!regexpLine(stdout, "customer_segments", "up-to-date") {
		t.Fatalf("run after an edit: exit %d\n%s%s", code, stdout, stderr)
	}
}

// regexpLine reports whether some line of s holds every word, in order.
func regexpLine(s string, words ...string) bool {
	for _, line := range strings.Split(s, "\n") {
		rest, ok := line, true
		for _, w := range words {
			i := strings.Index(rest, w)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(w):]
		}
		if ok {
			return true
		}
	}
	return false
}
