package pipelines

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cdwhq/cdw/internal/durable"
)

// ErrBusy means a run holds the warehouse and there is no earlier copy to
// read instead.
var ErrBusy = errors.New("a run is writing the warehouse")

// Snapshot is a read-only copy of warehouse.duckdb for readers (cdw query
// --warehouse, cdw models --status). DuckDB lets one process write a
// database file and refuses everyone else meanwhile, so readers never open
// the warehouse itself: a reader would make the next run fail on DuckDB's
// file lock, and a run would make the reader fail.
type Snapshot struct {
	Path string    // the copy to open read-only
	AsOf time.Time // when the warehouse it copies was last written
	// Stale is set when a run holds the warehouse: the copy is the one
	// taken before that run, and Holder says who holds it.
	Stale  bool
	Holder string
}

// WarehouseSnapshot returns a copy of dir's warehouse.duckdb as of its last
// finished run, refreshing the copy (state/snapshot/) when the warehouse has
// changed and no run holds it. The copy is taken under a shared hold of the
// warehouse lock, so a run starting meanwhile waits for the copy (copy_file_range,
// a reflink where the file system has them), never for the reader. It
// returns fs.ErrNotExist when there is no warehouse yet.
func WarehouseSnapshot(dir string) (*Snapshot, error) {
	wh := filepath.Join(dir, "warehouse.duckdb")
	snap := filepath.Join(dir, "state", "snapshot", "warehouse.duckdb")
	f, err := os.OpenFile(lockPath(dir), os.O_RDWR|os.O_CREATE, durable.FilePerm)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no warehouse at %s: %w", wh, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", lockPath(dir), err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("locking %s: %w", lockPath(dir), err)
		}
		holder := LockHolder(dir)
		st, err := os.Stat(snap)
		if err != nil {
			return nil, fmt.Errorf("%w (%s) and no earlier copy of it exists yet: try again when the run ends", ErrBusy, holder)
		}
		return &Snapshot{Path: snap, AsOf: st.ModTime(), Stale: true, Holder: holder}, nil
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return copySnapshot(dir)
}

// copySnapshot refreshes the copy when the warehouse changed since it was
// taken. The caller holds the warehouse lock (shared or exclusive).
func copySnapshot(dir string) (*Snapshot, error) {
	wh := filepath.Join(dir, "warehouse.duckdb")
	snap := filepath.Join(dir, "state", "snapshot", "warehouse.duckdb")
	src, err := os.Stat(wh)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no warehouse at %s: %w", wh, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", wh, err)
	}
	if st, err := os.Stat(snap); err == nil && st.ModTime().Equal(src.ModTime()) && st.Size() == src.Size() && !exists(wh+".wal") {
		return &Snapshot{Path: snap, AsOf: src.ModTime()}, nil
	}
	for _, p := range []string{"", ".wal"} {
		if err := copyFile(wh+p, snap+p, src.ModTime()); err != nil {
			return nil, err
		}
	}
	return &Snapshot{Path: snap, AsOf: src.ModTime()}, nil
}

// refreshSnapshot brings an existing copy up to date at the end of a run,
// under the run's lock, so readers during the next run see this one's
// result. Without readers there is no copy, and nothing is copied.
func refreshSnapshot(dir string) error {
	if !exists(filepath.Join(dir, "state", "snapshot", "warehouse.duckdb")) {
		return nil
	}
	_, err := copySnapshot(dir)
	return err
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// copyFile replaces to with a copy of from (removing to when from does not
// exist) and gives it from's modification time, which marks the copy as
// current.
func copyFile(from, to string, mtime time.Time) error {
	in, err := os.Open(from)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Remove(to); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", to, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("copying the warehouse: %w", err)
	}
	defer in.Close()
	if err := durable.WriteWith(to, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	}); err != nil {
		return fmt.Errorf("copying %s: %w", from, err)
	}
	if err := os.Chtimes(to, mtime, mtime); err != nil {
		return fmt.Errorf("copying %s: %w", from, err)
	}
	return nil
}
