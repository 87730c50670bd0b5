//go:build !(linux && cgo)

package memtrim

// Release does nothing where there is no glibc to trim.
func Release() {}
