package schedule

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cdwhq/cdw/pipelines"
)

// TestDocsServed: cdw serve answers /docs with the documentation site,
// built before any run (no types, no results yet) and again once a run has
// changed the warehouse (column types, the last build, test results).
func TestDocsServed(t *testing.T) {
	dir := demo(t, `serve: {listen: "127.0.0.1:0", shutdown_grace: 20s}
pipelines:
  - name: yearly
    schedule: "0 0 1 1 *"
    steps: [extract, transform]
`)
	s := newScheduler(t, dir, newHook(t, nil))
	stop := serveInBackground(t, s)
	defer stop()
	waitFor(t, time.Minute, "the listener", func() bool { return s.Addr() != nil })
	base := "http://" + s.Addr().String()
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body := readAll(t, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return body
	}
	index := get("/docs") // redirected to /docs/, which is index.html
	if !strings.Contains(index, `data-node="customer_segments" href="models/customer_segments.html"`) ||
		!strings.Contains(index, `data-node="raw.orders" href="sources/raw.orders.html"`) {
		t.Fatalf("/docs/ has no lineage from raw.orders to customer_segments:\n%.3000s", index)
	}
	if page := get("/docs/models/customer_segments.html"); !strings.Contains(page, "none on record") {
		t.Errorf("before any run, customer_segments.html claims a build")
	}
	if _, err := s.Runner.Run(context.Background(), pipelines.Options{Steps: pipelines.Steps{Extract: true, Transform: true}, Pipeline: "yearly"}); err != nil {
		t.Fatal(err)
	}
	page := get("/docs/models/customer_segments.html")
	if !strings.Contains(page, `<span class="status-success">success</span>`) || !strings.Contains(page, "<code>VARCHAR</code>") ||
		!strings.Contains(page, `<span class="status-pass">pass</span>`) {
		t.Errorf("after a run, customer_segments.html lacks its build, column types or test results:\n%.4000s", page)
	}
}
