// Package failpoint lets crash tests kill cdw at a named point, the way a
// power cut or the OOM killer would: CDW_FAILPOINT=name[:n] makes the n-th
// (default first) arrival at Hit(name) SIGKILL the process. Unset, Hit costs
// one map lookup on a nil map.
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

var (
	once   sync.Once
	target string
	after  int
	mu     sync.Mutex
	count  int
)

func load() {
	v := os.Getenv("CDW_FAILPOINT")
	if v == "" {
		return
	}
	name, n, _ := strings.Cut(v, ":")
	target, after = name, 1
	if k, err := strconv.Atoi(n); err == nil && k > 0 {
		after = k
	}
}

// Hit kills the process with SIGKILL if name is the armed failpoint and this
// is the armed arrival.
func Hit(name string) {
	once.Do(load)
	if target == "" || name != target {
		return
	}
	mu.Lock()
	count++
	c := count
	mu.Unlock()
	if c == after {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never returns: the signal cannot be caught
	}
}
