package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBacktestCommand runs cdw extract and cdw backtest on the CDNOW sample
// (fixed width): JSON and table output, and a horizon past the data refused.
func TestBacktestCommand(t *testing.T) {
	data := "/work/shared/datasets/cdnow/CDNOW_sample.txt"
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("the shared CDNOW sample is required: %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cdw.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`warehouse: wh
sources:
  - name: cdnow
    kind: files
    entities:
      orders:
        path: %s
        format: fixed
        fields: [{name: id, start: 1, width: 20}, {name: cust, start: 1, width: 6}, {name: day, start: 13, width: 8},
                 {name: cds, start: 21, width: 3}, {name: usd, start: 24, width: 8}]
        timestamp_formats: ["20060102"]
        columns: {order_id: id, customer_id: cust, order_ts: day, quantity: cds, amount: usd}
`, data)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cdw(t, "extract", "--config", cfg); code != 0 {
		t.Fatalf("extract exit %d: %s", code, stderr)
	}
	code, stdout, stderr := cdw(t, "backtest", "--config", cfg, "--cutoff", "1997-09-30", "--horizon", "39w", "--format", "json")
	if code != 0 {
		t.Fatalf("backtest exit %d: %s", code, stderr)
	}
	var res struct {
		Customers int64   `json:"customers"`
		Horizon   int     `json:"horizon_days"`
		Base      float64 `json:"base_churn_rate"`
		Churn     struct {
			AUC float64 `json:"auc"`
		} `json:"churn_score"`
		Baselines []struct {
			Name string  `json:"name"`
			AUC  float64 `json:"auc"`
		} `json:"baselines"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v in %s", err, stdout)
	}
	if res.Customers != 2357 || res.Horizon != 273 || len(res.Baselines) != 2 || res.Base <= 0 || res.Base >= 1 || res.Churn.AUC <= 0.5 {
		t.Errorf("backtest JSON: %+v", res)
	}
	code, stdout, stderr = cdw(t, "backtest", "--config", cfg, "--cutoff", "1997-09-30", "--horizon", "39w")
	if code != 0 || !strings.Contains(stdout, "purchase_days_per_recency") || !strings.Contains(stdout, "early_warning:") {
		t.Errorf("backtest table exit %d: %s%s", code, stdout, stderr)
	}
	code, _, stderr = cdw(t, "backtest", "--config", cfg, "--cutoff", "1998-03-01", "--horizon", "39w")
	if code == 0 || !strings.Contains(stderr, "after the last order (1998-06-30)") {
		t.Errorf("a horizon past the data: exit %d, %s", code, stderr)
	}
}
