//go:build !(linux && cgo)

package memtrim

// Release does nothing where there is no glibc to trim.
func Release() {}

// tune does nothing where there is no glibc to tune.
func tune(mmap, trim int) bool { return false }
