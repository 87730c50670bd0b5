// Package crashtest drives the real cdw binary in crash tests: it builds the
// binary once per test binary, runs it with a failpoint armed (or kills it at
// a chosen moment), and checks what must hold after any crash and rerun —
// every committed raw file is listed by state and nothing else is on disk,
// raw rows and published marts match a clean run's content checksums, and a
// concurrent reader (in a separate process) never saw a partial mart.
package crashtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds ./cmd/cdw of the module under test once per test binary and
// returns its path. The binary lives in a directory removed by Cleanup.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { buildPath, buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if buildPath != "" {
		os.RemoveAll(filepath.Dir(buildPath))
	}
}

func build() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("crashtest: finding the module root: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("crashtest: not inside a Go module")
	}
	root := filepath.Dir(gomod)
	dir, err := os.MkdirTemp("", "cdw-crashtest-bin-")
	if err != nil {
		return "", fmt.Errorf("crashtest: creating build directory: %w", err)
	}
	bin := filepath.Join(dir, "cdw")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/cdw")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("crashtest: building cdw: %w\n%s", err, out)
	}
	return bin, nil
}

// Run describes one invocation of cdw.
type Run struct {
	Args      []string
	Env       []string      // added to the test's environment
	Failpoint string        // CDW_FAILPOINT, e.g. "transform.after-model:3"; "" = none
	KillAfter time.Duration // > 0: SIGKILL the process after this long if still running
	Timeout   time.Duration // hard limit (default 10 minutes: generous, so a busy machine is not a failure): the run is killed and the test fails
}

// Result is how an invocation ended.
type Result struct {
	Killed         bool // ended by SIGKILL (a failpoint or KillAfter)
	Code           int  // exit code when not killed
	Stdout, Stderr string
	Elapsed        time.Duration
}

func (r Result) String() string {
	if r.Killed {
		return "killed"
	}
	return fmt.Sprintf("exit %d: %s", r.Code, strings.TrimSpace(r.Stderr))
}

// Exec runs bin with the run's arguments and environment.
func Exec(t testing.TB, bin string, r Run) Result {
	t.Helper()
	cmd := exec.Command(bin, r.Args...)
	cmd.Env = append(os.Environ(), r.Env...)
	cmd.Env = append(cmd.Env, "CDW_FAILPOINT="+r.Failpoint)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("crashtest: starting cdw: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	var kill <-chan time.Time
	if r.KillAfter > 0 {
		kill = time.After(r.KillAfter)
	}
	var err error
	select {
	case err = <-done:
	case <-kill:
		cmd.Process.Signal(syscall.SIGKILL)
		err = <-done
	case <-time.After(timeout):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		t.Fatalf("crashtest: cdw %s did not finish within %s\n%s", strings.Join(r.Args, " "), timeout, stderr.String())
	}
	res := Result{Stdout: stdout.String(), Stderr: stderr.String(), Elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			res.Killed = true
		} else {
			res.Code = ee.ExitCode()
		}
	default:
		t.Fatalf("crashtest: waiting for cdw: %v", err)
	}
	return res
}
