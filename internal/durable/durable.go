// Package durable writes files so that a crash leaves either the old or the new
// content, never a mix: write to a temporary name beside the target, fsync it,
// rename over the target, then fsync the directory so the rename itself survives.
package durable

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DirPerm and FilePerm keep the warehouse private to its owner: it holds
// customer data and state that other local users have no business reading.
const (
	DirPerm  = 0o700
	FilePerm = 0o600
)

// WriteFile atomically replaces path with data.
func WriteFile(path string, data []byte) error {
	return WriteWith(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteWith atomically replaces path with what write produces. When write
// fails, the target is untouched and the temporary file is removed.
func WriteWith(path string, write func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, DirPerm); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(FilePerm); err != nil {
		return fmt.Errorf("setting permissions on %s: %w", tmp, err)
	}
	if err := write(f); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err := Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return nil
}

// Rename moves an already-synced file into place and syncs the directory.
func Rename(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", from, to, err)
	}
	return SyncDir(filepath.Dir(to))
}

// SyncDir fsyncs a directory so that entries created or renamed in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// SyncFile fsyncs a file by name.
func SyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return nil
}

// IsTemp reports whether name is a temporary file left by WriteWith or by a
// writer that follows the same naming (".<name>.tmp-…").
func IsTemp(name string) bool {
	base := filepath.Base(name)
	return strings.HasPrefix(base, ".") && strings.Contains(base, ".tmp-")
}
