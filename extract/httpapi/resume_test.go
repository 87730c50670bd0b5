package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdwhq/cdw/extract"
)

// The kill test re-executes this test binary as a child that runs one extract;
// these variables tell it what to do.
const (
	childEnv       = "CDW_HTTPAPI_TEST_CHILD"
	childDirEnv    = "CDW_HTTPAPI_TEST_DIR"
	childConfigEnv = "CDW_HTTPAPI_TEST_CONFIG"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild extracts once; the parent kills it part-way.
func runChild() int {
	x := &extract.Extractor{Dir: os.Getenv(childDirEnv), Log: slog.Default()}
	if _, err := runExtract(context.Background(), x, os.Getenv(childConfigEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "child extract:", err)
		return 1
	}
	return 0
}

func TestKilledRunResumesAtInterruptedPage(t *testing.T) {
	const n, killAt = 53, 4 // pages 1..6; SIGKILL while page 4 is in flight
	for _, style := range []string{"page", "offset", "cursor", "link"} {
		t.Run(style, func(t *testing.T) {
			reached := make(chan struct{})
			h := newHelpdesk(t, style, n, func(h *helpdesk) {
				h.hook = func(page int, r *http.Request) {
					if page != killAt {
						return
					}
					close(reached)
					// Hold the page until the child is gone.
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Minute):
					}
				}
			})
			dir := t.TempDir()
			cfg := sourceYAML(h, cfgOpts{incremental: true})

			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"=1", childDirEnv+"="+dir, childConfigEnv+"="+cfg)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-reached:
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				<-exited
			case err := <-exited:
				t.Fatalf("child finished before page %d was requested: %v\n%s", killAt, err, stderr.String())
			case <-time.After(5 * time.Minute):
				cmd.Process.Kill()
				t.Fatalf("child never requested page %d", killAt)
			}
			h.set(func(h *helpdesk) { h.hook = nil })
			if got := h.pages(); !slices.Equal(got, ids(1, killAt)) {
				t.Fatalf("killed run requested %v, want %v", got, ids(1, killAt))
			}
			cp := decodeCursor(t, committedState(t, dir))
			if cp.Next == nil || cp.Next.Page != killAt {
				t.Fatalf("after the kill the cursor is %+v, want position at page %d", cp, killAt)
			}
			assertExactlyOnce(t, readRaw(t, dir), ids(1, (killAt-1)*10))

			h.reset()
			x := &extract.Extractor{Dir: dir, Log: slog.Default()}
			if _, err := runExtract(context.Background(), x, cfg); err != nil {
				t.Fatal(err)
			}
			if got := h.pages(); !slices.Equal(got, ids(killAt, 6)) {
				t.Errorf("rerun requested pages %v, want %v", got, ids(killAt, 6))
			}
			assertExactlyOnce(t, readRaw(t, dir), ids(1, n))
			if cp := decodeCursor(t, committedState(t, dir)); cp.Next != nil {
				t.Errorf("completed rerun left position %+v", *cp.Next)
			}
		})
	}
}
