package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdwhq/cdw/pipelines"
	"github.com/cdwhq/cdw/transform"
)

// TestHelperHoldOpen is not a test: run as a child process it opens the
// file `cdw query --warehouse` would read, read-only as the query does,
// says "open", and keeps it open until its stdin closes.
func TestHelperHoldOpen(t *testing.T) {
	dir := os.Getenv("CDW_TEST_HOLD_WAREHOUSE")
	if dir == "" {
		return
	}
	path, err := warehouseFile(nil, dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	db, err := transform.Open(path, transform.Settings{ReadOnly: true})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM cdw_model_runs").Scan(&n); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("open")
	bufio.NewReader(os.Stdin).ReadString('\n')
	db.Close()
	os.Exit(0)
}

// TestReadersNeverBlockRuns (issue #16 item 7): a `cdw query --warehouse`
// reader in another process does not make a run fail on DuckDB's file lock;
// while a run holds the warehouse, query and `models --status` read the
// copy from before it and say so, and `cdw publish` waits lock_timeout and
// then names the holder.
func TestReadersNeverBlockRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "wh")
	if code, _, stderr := cdw(t, "demo", "--dir", dir, "--customers", "200"); code != 0 {
		t.Fatal(stderr)
	}
	cfg := filepath.Join(dir, "cdw.yaml")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "lock_timeout: 1s\n")
	f.Close()

	reader := exec.Command(os.Args[0], "-test.run=^TestHelperHoldOpen$")
	reader.Env = append(os.Environ(), "CDW_TEST_HOLD_WAREHOUSE="+dir)
	stdin, _ := reader.StdinPipe()
	stdout, _ := reader.StdoutPipe()
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "open" {
		t.Fatalf("reader process: %q", line)
	}
	code, _, stderr := cdw(t, "run", "--config", cfg)
	stdin.Close()
	reader.Wait()
	if code != 0 {
		t.Fatalf("run with a warehouse reader open: exit %d: %s", code, stderr)
	}

	// A run holds the warehouse (this process, as cdw run would).
	lock, err := pipelines.AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	holder := fmt.Sprintf("pid %d", os.Getpid())
	code, stdout2, stderr := cdw(t, "query", "--dir", dir, "--warehouse", "--format", "csv", "SELECT count(DISTINCT run_id) AS runs FROM cdw_model_runs")
	if code != 0 || stdout2 != "runs\n2\n" || !strings.Contains(stderr, "a run is writing the warehouse ("+holder) {
		t.Fatalf("query --warehouse during a run: exit %d: %q %s", code, stdout2, stderr)
	}
	code, stdout2, stderr = cdw(t, "models", "--config", cfg, "--status")
	if code != 0 || !strings.Contains(stdout2, "customer_segments") || !strings.Contains(stderr, "a run is writing the warehouse") {
		t.Fatalf("models --status during a run: exit %d: %s %s", code, stdout2, stderr)
	}
	start := time.Now()
	code, _, stderr = cdw(t, "publish", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "held by "+holder) || !strings.Contains(stderr, "waited 1s (lock_timeout)") ||
		strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("publish during a run: exit %d: %s", code, stderr)
	}
	if time.Since(start) < time.Second {
		t.Errorf("publish gave up after %s, lock_timeout is 1s", time.Since(start))
	}
}
