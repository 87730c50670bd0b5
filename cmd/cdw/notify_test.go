package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestNotifyAfterARun: on a warehouse built by a real run, cdw notify posts
// one alert per customer on churn_risk.early_warning (initial: notify), a
// rerun posts none, and the output says what was delivered.
func TestNotifyAfterARun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	// Early warning is rare in generated data (about 2 in 1,000 customers
	// with gonum's gamma draws; none at 300), so the demo is 1,000 strong.
	if code, _, stderr := cdw(t, "demo", "--dir", dir, "--customers", "1000"); code != 0 {
		t.Fatal(stderr)
	}
	var mu sync.Mutex
	keys := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var p struct {
			Text           string `json:"text"`
			IdempotencyKey string `json:"idempotency_key"`
		}
		if json.Unmarshal(b, &p) != nil || p.Text == "" || p.IdempotencyKey != r.Header.Get("Idempotency-Key") {
			http.Error(w, "bad alert", http.StatusBadRequest)
			return
		}
		mu.Lock()
		keys[p.IdempotencyKey]++
		mu.Unlock()
	}))
	defer srv.Close()
	t.Setenv("CDW_NOTIFY_TEST_HOOK", srv.URL+"/hooks/abc-secret-path")
	cfg := filepath.Join(dir, "cdw.yaml")
	body, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(body, []byte("alerts: {webhook_url_env: CDW_NOTIFY_TEST_HOOK, initial: notify}\n")...), 0o644)
	var flagged int
	db := memDB(t)
	if err := db.QueryRow(`SELECT count(*) FROM read_parquet(?) WHERE early_warning`, filepath.Join(dir, "marts", "churn_risk.parquet")).Scan(&flagged); err != nil {
		t.Fatal(err)
	}
	if flagged == 0 {
		t.Fatal("the demo warehouse has no customer on early warning; the test proves nothing")
	}
	code, stdout, stderr := cdw(t, "notify", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, " entered early warning, 0 left; delivered ") {
		t.Fatalf("notify: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if len(keys) != flagged {
		t.Fatalf("%d alerts for %d customers on early warning", len(keys), flagged)
	}
	code, stdout, _ = cdw(t, "notify", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "alerts: no change in early warning") || len(keys) != flagged {
		t.Fatalf("rerun: exit %d, stdout %q, %d alerts", code, stdout, len(keys))
	}
	if strings.Contains(stdout+stderr, "abc-secret-path") {
		t.Error("the webhook URL shows in the output")
	}
}
