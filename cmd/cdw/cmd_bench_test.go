package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBenchChild is not a test: it is how TestBenchSmoke's child processes
// run the CLI from the test binary (CDW_BENCH_CHILD=1, arguments after "--").
func TestBenchChild(t *testing.T) {
	if os.Getenv("CDW_BENCH_CHILD") != "1" {
		return
	}
	i := slices.Index(os.Args, "--")
	os.Exit(run(os.Args[i+1:], os.Stdout, os.Stderr))
}

// TestBenchSmoke runs the benchmark harness at its smoke size (every workload
// but postgres and pandas, which need a server and python3-pandas) and checks
// the report lists each workload with measured times.
func TestBenchSmoke(t *testing.T) {
	t.Setenv("CDW_BENCH_CHILD", "1")
	benchExe, benchExeArgs = os.Args[0], []string{"-test.run=^TestBenchChild$", "--"}
	t.Cleanup(func() { benchExe, benchExeArgs = "", nil })
	dir := t.TempDir()
	report := filepath.Join(dir, "BENCHMARKS.md")
	code, stdout, stderr := cdw(t, "bench", "--smoke", "--dir", dir, "--out", report, "--notes", "",
		"--workloads", "csv,transform,incremental,e2e")
	if code != 0 {
		t.Fatalf("cdw bench --smoke exited %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{"CSV → raw Parquet", "Transform, all models", "End to end", "Incremental run", "DuckDB: v"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "results", "*.json"))
	if len(paths) != 4 {
		t.Fatalf("want 4 result files, got %v", paths)
	}
	for _, p := range paths {
		raw, _ := os.ReadFile(p)
		var r result
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		if len(r.OursRuns) == 0 || r.OursRuns[0].Seconds <= 0 || r.OursRuns[0].RSSMB <= 0 {
			t.Errorf("%s: no measured run: %+v", filepath.Base(p), r)
		}
		if r.Baseline != "" && (len(r.BaseRuns) == 0 || r.BaseRuns[0].Seconds <= 0) {
			t.Errorf("%s: baseline not measured: %+v", filepath.Base(p), r)
		}
		if r.Rows <= 0 {
			t.Errorf("%s: no rows recorded", filepath.Base(p))
		}
	}
}
