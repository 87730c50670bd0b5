// Package mailtest starts a real SMTP server (mailpit) on loopback for tests.
// A missing mailpit is a test failure, not a skip: CI installs it (.ci/deps),
// and a silent skip would hide that the mail paths went untested.
package mailtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startLimit is generous: on a busy machine mailpit can take seconds to
// bind; the wait ends as soon as it accepts a connection, or when it exits.
const startLimit = 2 * time.Minute

// Mailpit starts mailpit with extra flags and returns its SMTP port and API
// base URL once it accepts connections; it is killed when the test ends.
func Mailpit(t testing.TB, extra ...string) (smtpPort int, api string) {
	t.Helper()
	bin := binary(t)
	smtpPort, httpPort := freePort(t), freePort(t)
	args := append([]string{"--smtp", fmt.Sprintf("127.0.0.1:%d", smtpPort), "--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--database", filepath.Join(t.TempDir(), "mp.db")}, extra...)
	cmd := exec.Command(bin, args...)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(startLimit)
	for {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", smtpPort), time.Second); err == nil {
			c.Close()
			return smtpPort, fmt.Sprintf("http://127.0.0.1:%d/api/v1", httpPort)
		}
		select {
		case <-exited:
			t.Fatalf("mailpit exited before accepting connections:\n%s", logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit did not accept connections within %s:\n%s", startLimit, logs.String())
		}
	}
}

func binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "mailpit")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Fatalf("mailpit is not installed (see .ci/deps); this test needs it")
	return ""
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects mailpit's output from its writer goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
