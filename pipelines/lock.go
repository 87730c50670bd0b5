package pipelines

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/cdwhq/cdw/internal/durable"
)

// ErrLocked is returned when another cdw process holds the warehouse.
var ErrLocked = errors.New("warehouse is locked by another cdw process")

// Lock is an exclusive hold on a warehouse directory, so two cdw processes
// (or two runs in one process) never write the same warehouse at once. The
// kernel drops it when the process dies, so a crash never leaves it stuck.
type Lock struct{ f *os.File }

// AcquireLock takes the warehouse lock without waiting.
func AcquireLock(dir string) (*Lock, error) {
	p := filepath.Join(dir, "state", "cdw.lock")
	if err := os.MkdirAll(filepath.Dir(p), durable.DirPerm); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(p), err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, durable.FilePerm)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		data, _ := os.ReadFile(p)
		f.Close()
		holder := strings.TrimSpace(string(data))
		if holder == "" {
			holder = "unknown"
		}
		return nil, fmt.Errorf("%w (%s, held by pid %s)", ErrLocked, dir, holder)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// Release lets go of the lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
	return err
}
