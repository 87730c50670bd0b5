package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// raw runs the CLI exactly as given, without the --log-level the cdw helper adds.
func raw(args ...string) (int, string, string) {
	var o, e bytes.Buffer
	code := run(args, &o, &e)
	return code, o.String(), e.String()
}

// TestHelpOnStdout: help is output, not an error, so `cdw run --help | less` works.
func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{{}, {"--help"}, {"help"}, {"run", "--help"}, {"help", "run"}, {"new", "-h"}, {"query", "--help"}} {
		code, stdout, stderr := raw(args...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "Usage:") {
			t.Errorf("cdw %q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	_, stdout, _ := raw("run", "--help")
	for _, want := range []string{"--full-refresh", "--select", "--config", "--log-level"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("cdw run --help lacks %s:\n%s", want, stdout)
		}
	}
}

// TestFlagsAnywhere: flags may follow the arguments, and Go-style single-dash
// long flags still work.
func TestFlagsAnywhere(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := raw("new", "model", "vip", "--dir", dir, "--materialized", "view")
	if code != 0 || !strings.Contains(stdout, "Created "+filepath.Join(dir, "vip.sql")) {
		t.Fatalf("new model NAME --dir: exit %d: %s%s", code, stdout, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "vip.sql")); err != nil || !strings.Contains(string(b), "materialized: view") {
		t.Fatalf("scaffold: %v\n%s", err, b)
	}
	if code, _, stderr := raw("new", "model", "old_style", "-dir", dir); code != 0 {
		t.Fatalf("-dir: exit %d: %s", code, stderr)
	}

	db, err := sql.Open("duckdb", filepath.Join(dir, "marts.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t AS SELECT 7 AS n`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, stdout, stderr = raw("query", "SELECT n FROM t", "--format", "json", "--dir", dir)
	var got struct{ N int }
	if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil || got.N != 7 {
		t.Fatalf(`query "SQL" --format json: exit %d: %q %s`, code, stdout, stderr)
	}
}

// TestErrorLines: every failure is one line "cdw <cmd>: <error>"; mistakes in
// the command line exit 2, failures of the work exit 1.
func TestErrorLines(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.yaml")
	noPipelines := filepath.Join(t.TempDir(), "cdw.yaml")
	if err := os.WriteFile(noPipelines, []byte("sources: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args   []string
		code   int
		prefix string
	}{
		{[]string{"run", "--bogus"}, 2, "cdw run: unknown flag: --bogus"},
		{[]string{"bogus"}, 2, `cdw: unknown command "bogus"`},
		{[]string{"run", "--log-level", "loud"}, 2, `cdw run: --log-level: "loud"`},
		{[]string{"run", "--config", missing}, 1, "cdw run: "},
		{[]string{"serve", "--config", missing}, 1, "cdw serve: "},
		{[]string{"serve", "--config", noPipelines}, 1, "cdw serve: " + noPipelines + ": no pipelines: list"},
	}
	for _, c := range cases {
		code, stdout, stderr := raw(c.args...)
		if code != c.code || stdout != "" || !strings.HasPrefix(stderr, c.prefix) ||
			strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, ": :") {
			t.Errorf("cdw %q: exit %d (want %d), stdout %q, stderr %q (want one line starting %q)", c.args, code, c.code, stdout, stderr, c.prefix)
		}
	}
}

// TestCompletion: the shell completion scripts are generated for each shell.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_cdw", "zsh": "#compdef cdw", "fish": "complete -c cdw"} {
		code, stdout, stderr := raw("completion", shell)
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("completion %s: exit %d, stderr %q, no %q in the script", shell, code, stderr, want)
		}
	}
	// Completing a command's flags goes through cobra's __complete.
	code, stdout, _ := raw("__complete", "run", "--full")
	if code != 0 || !strings.Contains(stdout, "--full-refresh") {
		t.Errorf("__complete run --full: exit %d: %q", code, stdout)
	}
}

// TestQuietWhereStdoutShows: demo and run print their tables on stdout, so
// their INFO logs show only with -v; warnings always show.
func TestQuietWhereStdoutShows(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	code, stdout, stderr := raw("demo", "--dir", dir, "--customers", "100")
	if code != 0 || !strings.Contains(stdout, "Models:") {
		t.Fatalf("demo: exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "level=INFO") || !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, "quarantined 2 row(s)") {
		t.Errorf("demo without -v: want warnings only on stderr, got:\n%s", stderr)
	}
	code, _, stderr = raw("run", "-v", "--config", filepath.Join(dir, "cdw.yaml"))
	if code != 0 || !strings.Contains(stderr, "level=INFO") {
		t.Errorf("run -v: exit %d, want INFO lines on stderr:\n%s", code, stderr)
	}
}

// TestHelperCLI is not a test: run as a child process it runs the CLI on the
// arguments in CDW_TEST_CLI (separated by newlines).
func TestHelperCLI(t *testing.T) {
	args := os.Getenv("CDW_TEST_CLI")
	if args == "" {
		return
	}
	os.Exit(run(strings.Split(args, "\n"), os.Stdout, os.Stderr))
}

// TestAnotherBinaryAgrees: model state does not depend on which executable
// built it, so a warehouse built by one binary (here the test binary) is up
// to date for another (a link to it at another path, as `go run` and a built
// binary differ).
func TestAnotherBinaryAgrees(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	if code, _, stderr := cdw(t, "demo", "--dir", dir, "--customers", "100"); code != 0 {
		t.Fatalf("demo: %s", stderr)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other-cdw")
	if err := os.Link(self, other); err != nil {
		b, err := os.ReadFile(self)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(other, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(other, "-test.run=^TestHelperCLI$")
	cmd.Env = append(os.Environ(), "CDW_TEST_CLI="+strings.Join([]string{"run", "--config", filepath.Join(dir, "cdw.yaml")}, "\n"))
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("run by another binary: %v\n%s", err, stdout)
	}
	m := regexp.MustCompile(`Models: 0 of (\d+) built, (\d+) up to date`).FindStringSubmatch(string(stdout))
	if m == nil || m[1] != m[2] {
		t.Fatalf("another binary rebuilt models of an unchanged warehouse:\n%s", stdout)
	}
}

// TestValidate: cdw validate checks the whole config and runs nothing; a typo
// in a publish target fails cdw run before any work, naming file:line:key.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cdw.yaml")
	good := "warehouse: wh\nsources: []\npublish:\n  - kind: parquet\n  - kind: duckdb\n    path: bi/marts.duckdb\n"
	if err := os.WriteFile(cfg, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := raw("validate", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "is valid: 0 sources, 2 publish targets") {
		t.Fatalf("validate: exit %d: %s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "wh")); err == nil {
		t.Error("validate created the warehouse directory")
	}
	bad := strings.Replace(good, "    path:", "    pth:", 1)
	if err := os.WriteFile(cfg, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"validate", "run"} {
		code, _, stderr := raw(cmd, "--config", cfg)
		if code != 1 || !strings.Contains(stderr, cfg+":6") || !strings.Contains(stderr, `"pth"`) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s with a typo in a target: exit %d, stderr %q; want one line naming %s:6 and the key", cmd, code, stderr, cfg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "wh", "raw")); err == nil {
		t.Error("run extracted before failing on the publish target")
	}
}

// TestKinds: cdw kinds prints the reference from the registered kinds' and
// entities' Doc fields.
func TestKinds(t *testing.T) {
	code, stdout, stderr := raw("kinds")
	if code != 0 {
		t.Fatalf("kinds: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"files      CSV, TSV", "postgres   PostgreSQL", "parquet    versioned", "Entity orders: Order lines",
		"order_ts", "when the order was placed (UTC)", "Entity tickets:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("cdw kinds lacks %q:\n%s", want, stdout)
		}
	}
}

// TestValidateChecksEveryComponent: a typo in a source's options, smtp:,
// alerts: or serve: fails validate and run in the first second with one
// line naming file:line and the key, before anything is extracted.
func TestValidateChecksEveryComponent(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cdw.yaml")
	good := `warehouse: wh
sources:
  - name: shop
    kind: files
    entities:
      orders:
        path: exports/orders_*.csv
        columns: {order_id: InvoiceNo, customer_id: CustomerID, order_ts: InvoiceDate, quantity: Quantity, unit_price: UnitPrice}
smtp:
  host: 127.0.0.1
  port: 2525
  from: cdw@example.com
report:
  to: [cfo@example.com]
serve:
  listen: 127.0.0.1:0
pipelines:
  - name: nightly
    schedule: "0 2 * * *"
    steps: [extract, transform, publish]
`
	if err := os.WriteFile(cfg, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := raw("validate", "--config", cfg); code != 0 || !strings.Contains(stdout, "is valid: 1 sources, 2 publish targets, 0 models directories, 1 pipelines") {
		t.Fatalf("validate: exit %d: %s%s", code, stdout, stderr)
	}
	for _, c := range []struct{ from, to, key, line string }{
		{"        path:", "        pth:", `"pth"`, ":7"},
		{"  from:", "  frm:", `"frm"`, ":12"},
		{"  listen:", "  listn:", `"listn"`, ":16"},
	} {
		bad := strings.Replace(good, c.from, c.to, 1)
		if err := os.WriteFile(cfg, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"validate", "run"} {
			code, _, stderr := raw(cmd, "--config", cfg)
			if code != 1 || !strings.Contains(stderr, cfg+c.line) || !strings.Contains(stderr, c.key) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("%s with %s: exit %d, stderr %q; want one line naming %s%s and %s", cmd, c.to, code, stderr, cfg, c.line, c.key)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "wh", "raw")); err == nil {
			t.Fatalf("run with %s extracted before failing", c.to)
		}
	}
}
