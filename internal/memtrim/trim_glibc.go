//go:build linux && cgo

package memtrim

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static void cdw_malloc_trim(void) { malloc_trim(0); }
#else
static void cdw_malloc_trim(void) {}
#endif
*/
import "C"

// Release returns the free memory of every malloc arena to the OS
// (glibc's malloc_trim; a no-op with other C libraries).
func Release() { C.cdw_malloc_trim() }
