package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/bench/harness"
	"github.com/cdwhq/cdw/extract/sample"
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
	benchExe = []string{os.Args[0], "-test.run=^TestBenchChild$", "--"}
	t.Cleanup(func() { benchExe = nil })
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
		var r harness.Result
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

// TestBenchRFMMatchesPandas checks that the pandas workload compares like
// with like: bench/rfm_abc.py and cdw's bench_rfm_abc model, given the same
// generated orders CSV, produce the same customers, scores, segments and ABC
// classes (bench/compare_rfm.py). It needs python3 with pandas (harness.PandasPython).
func TestBenchRFMMatchesPandas(t *testing.T) {
	python, err := harness.PandasPython()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 with pandas is missing in CI (.ci/deps installs python3-pandas): %v", err)
		}
		t.Skipf("python3 with pandas is not installed (apt-get install -y python3-pandas): %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	files, err := sample.Write(src, sample.Options{Customers: 400, Orders: 6000, Updates: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	models, _ := filepath.Abs("../../bench/models")
	cfg, err := harness.RFMConfig(dir, "wh", src, models, "1GB")
	if err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := cdw(t, "run", "--config", cfg, "--select", "+bench_rfm_abc"); code != 0 {
		t.Fatalf("cdw run exited %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	code, ours, stderr := cdw(t, "query", "--config", cfg, "--format", "csv", "--limit", "0", "SELECT * FROM bench_rfm_abc")
	if code != 0 {
		t.Fatalf("cdw query exited %d: %s", code, stderr)
	}
	oursCSV, pandasCSV := filepath.Join(dir, "ours.csv"), filepath.Join(dir, "pandas.csv")
	if err := os.WriteFile(oursCSV, []byte(ours), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(python, "../../bench/rfm_abc.py", files.Orders, pandasCSV).CombinedOutput(); err != nil {
		t.Fatalf("bench/rfm_abc.py: %v\n%s", err, out)
	}
	out, err := exec.Command(python, "../../bench/compare_rfm.py", oursCSV, pandasCSV).CombinedOutput()
	if err != nil {
		t.Fatalf("cdw and pandas disagree: %v\n%s", err, out)
	}
	// A comparison of near-empty outputs would prove nothing.
	if n := strings.Count(ours, "\n") - 1; n < 100 {
		t.Errorf("cdw scored only %d customers of 400:\n%s", n, out)
	}
}
