package pipelines

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cdwhq/cdw/internal/durable"
)

// ErrLocked is returned when another cdw process holds the warehouse.
var ErrLocked = errors.New("warehouse is locked by another cdw process")

// DefaultLockTimeout is how long a run waits for another cdw process to
// let go of the warehouse (lock_timeout in cdw.yaml).
const DefaultLockTimeout = 5 * time.Minute

// Lock is an exclusive hold on a warehouse directory, so two cdw processes
// (or two runs in one process) never write the same warehouse at once. The
// kernel drops it when the process dies, so a crash never leaves it stuck.
type Lock struct{ f *os.File }

func lockPath(dir string) string { return filepath.Join(dir, "state", "cdw.lock") }

// AcquireLock takes the warehouse lock without waiting. Taking it also
// records, as interrupted, a run that an earlier holder did not finish.
func AcquireLock(dir string) (*Lock, error) {
	return WaitLock(context.Background(), dir, 0)
}

// WaitLock takes the warehouse lock, waiting up to timeout for the holder
// to let go. The error then names the holder (pid, command, since when).
func WaitLock(ctx context.Context, dir string, timeout time.Duration) (*Lock, error) {
	p := lockPath(dir)
	if err := os.MkdirAll(filepath.Dir(p), durable.DirPerm); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(p), err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, durable.FilePerm)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", p, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", p, err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			waited := ""
			if timeout > 0 {
				waited = fmt.Sprintf("; waited %s (lock_timeout)", timeout)
			}
			return nil, fmt.Errorf("%w (%s, held by %s%s)", ErrLocked, dir, LockHolder(dir), waited)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the warehouse lock (held by %s): %w", LockHolder(dir), ctx.Err())
		case <-time.After(min(200*time.Millisecond, time.Until(deadline))):
		}
	}
	f.Truncate(0)
	f.WriteAt([]byte(holderLine()+"\n"), 0)
	l := &Lock{f: f}
	if err := recoverInterrupted(dir); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

// holderLine says who holds the lock, for whoever waits for it.
func holderLine() string {
	cmd := filepath.Base(os.Args[0])
	if len(os.Args) > 1 {
		cmd += " " + os.Args[1]
	}
	return fmt.Sprintf("pid %d (%s, since %s)", os.Getpid(), cmd, time.Now().UTC().Format(time.RFC3339))
}

// LockHolder describes the process holding the warehouse lock, from what it
// wrote into the lock file.
func LockHolder(dir string) string {
	data, _ := os.ReadFile(lockPath(dir))
	h := strings.TrimSpace(string(data))
	if h == "" {
		return "an unknown process"
	}
	if !strings.HasPrefix(h, "pid ") {
		h = "pid " + h // written by an older cdw
	}
	return h
}

// LockHeld reports whether a process holds the warehouse lock, and which.
func LockHeld(dir string) (bool, string) {
	f, err := os.Open(lockPath(dir))
	if err != nil {
		return false, ""
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return true, LockHolder(dir)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false, ""
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
