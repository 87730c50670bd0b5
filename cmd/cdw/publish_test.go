package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/pipelines"
)

// status runs `cdw publish --status` and returns what each target serves.
func publishStatusOf(t *testing.T, cfg string) (record string, serves map[string]string, out string) {
	t.Helper()
	code, stdout, stderr := cdw(t, "publish", "--config", cfg, "--status")
	if code != 0 {
		t.Fatalf("publish --status: exit %d: %s", code, stderr)
	}
	serves = map[string]string{}
	for _, l := range strings.Split(stdout, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && (f[0] == "parquet" || f[0] == "duckdb") {
			serves[f[0]] = f[1]
		}
	}
	if m := regexp.MustCompile(`Version on record: (\S+)`).FindStringSubmatch(stdout); m != nil {
		record = m[1]
	}
	return record, serves, stdout
}

// TestPublishIsOneVersionAcrossTargets (issue #16 items 8 and 9): every
// target gets the same version id, recorded only when all succeed; an
// unchanged run writes no version; a failure on the last target puts the
// others back on the previous version; rollback goes to the newest version
// every target keeps.
func TestPublishIsOneVersionAcrossTargets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	if code, _, stderr := cdw(t, "demo", "--dir", dir, "--customers", "200"); code != 0 {
		t.Fatal(stderr)
	}
	cfg := filepath.Join(dir, "cdw.yaml")
	builtins, _ := filepath.Glob(filepath.Join(dir, "marts", "*.parquet"))
	v1, serves, out := publishStatusOf(t, cfg)
	if v1 == "" || serves["parquet"] != v1 || serves["duckdb"] != v1 {
		t.Fatalf("after the first run:\n%s", out)
	}

	// Nothing changed: no new version, the kept versions stay.
	code, stdout, stderr := cdw(t, "run", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "Marts unchanged since version "+v1+": nothing published") {
		t.Fatalf("unchanged run: exit %d\n%s%s", code, stdout, stderr)
	}
	if vs, _ := filepath.Glob(filepath.Join(dir, "marts", "_versions", "0*")); len(vs) != 1 {
		t.Fatalf("an unchanged run wrote a Parquet version: %v", vs)
	}

	// New data, and a third target whose server is down: parquet and duckdb
	// take version 2, PostgreSQL fails, and both go back to version 1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// The change: a new mart in a user model directory.
	os.MkdirAll(filepath.Join(dir, "my_models", "marts"), 0o755)
	os.WriteFile(filepath.Join(dir, "my_models", "marts", "vip_customers.sql"), []byte(
		"-- materialized: table\n-- description: Champions.\nSELECT customer_id, business_unit FROM customer_segments WHERE segment = 'champions'\n"), 0o644)
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	good := []byte(strings.Replace(string(body), "warehouse: .\n", "warehouse: .\nmodels: [my_models]\n", 1))
	if string(good) == string(body) {
		t.Fatalf("demo config has no warehouse: . line:\n%s", body)
	}
	bad := strings.Replace(string(good), "  - kind: duckdb\n", fmt.Sprintf("  - kind: duckdb\n  - kind: postgres\n    host: 127.0.0.1\n    port: %d\n    database: bi\n    user: cdw\n    sslmode: disable\n", port), 1)
	if bad == string(good) {
		t.Fatalf("demo config has no duckdb target to add after:\n%s", good)
	}
	os.WriteFile(cfg, []byte(bad), 0o600)
	code, _, stderr = cdw(t, "run", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "to postgres") || !strings.Contains(stderr, "parquet, duckdb put back on version "+v1) {
		t.Fatalf("run with a target down: exit %d: %s", code, stderr)
	}
	os.WriteFile(cfg, good, 0o600)
	if rec, serves, out := publishStatusOf(t, cfg); rec != v1 || serves["parquet"] != v1 || serves["duckdb"] != v1 {
		t.Fatalf("after the failed publish every target must serve %s:\n%s", v1, out)
	}

	// The next run publishes the new marts as one version everywhere.
	if code, _, stderr := cdw(t, "run", "--config", cfg); code != 0 {
		t.Fatal(stderr)
	}
	v2, serves, out := publishStatusOf(t, cfg)
	if v2 == v1 || serves["parquet"] != v2 || serves["duckdb"] != v2 || !strings.Contains(out, fmt.Sprintf("%d marts", len(builtins)+1)) {
		t.Fatalf("after the next run:\n%s", out)
	}
	recs, _ := pipelines.ReadHistory(dir, 1)
	if len(recs) != 1 || recs[0].Version != v2 {
		t.Fatalf("history does not record version %s: %+v", v2, recs)
	}

	// Rollback: both to v1, then nothing older is kept by both.
	code, stdout, stderr = cdw(t, "publish", "--config", cfg, "--rollback")
	if code != 0 || !strings.Contains(stdout, "every target now serves version "+v1) {
		t.Fatalf("rollback: exit %d: %s%s", code, stdout, stderr)
	}
	if rec, serves, out := publishStatusOf(t, cfg); rec != v1 || serves["parquet"] != v1 || serves["duckdb"] != v1 {
		t.Fatalf("after the rollback:\n%s", out)
	}
	code, _, stderr = cdw(t, "publish", "--config", cfg, "--rollback")
	if code == 0 || !strings.Contains(stderr, "no earlier version is kept by every target") {
		t.Fatalf("second rollback: exit %d: %s", code, stderr)
	}
}
