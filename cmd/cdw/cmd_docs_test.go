package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsCommand: after the demo's run, cdw docs writes the site into the
// warehouse directory: the lineage graph from the raw relations to the
// built-in marts, and a page per model with its columns' types.
func TestDocsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	if code, _, stderr := cdw(t, "demo", "--dir", dir, "--customers", "50"); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, stderr := cdw(t, "docs", "--config", filepath.Join(dir, "cdw.yaml"))
	if code != 0 || !strings.Contains(stdout, filepath.Join(dir, "docs", "index.html")) {
		t.Fatalf("cdw docs: exit %d\n%s%s", code, stdout, stderr)
	}
	index, err := os.ReadFile(filepath.Join(dir, "docs", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`data-from="raw.orders" data-to="stg_orders"`, `data-node="customer_segments" href="models/customer_segments.html"`} {
		if !strings.Contains(string(index), want) {
			t.Errorf("index.html lacks %s", want)
		}
	}
	page, err := os.ReadFile(filepath.Join(dir, "docs", "models", "customer_segments.html"))
	if err != nil || !strings.Contains(string(page), "<code>VARCHAR</code>") || !strings.Contains(string(page), "published") {
		t.Errorf("customer_segments.html: %v\n%.2000s", err, page)
	}
	out := filepath.Join(t.TempDir(), "site")
	if code, _, stderr := cdw(t, "docs", "--config", filepath.Join(dir, "cdw.yaml"), "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "sources", "raw.orders.html")); err != nil {
		t.Error(err)
	}
}
