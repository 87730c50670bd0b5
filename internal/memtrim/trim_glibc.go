//go:build linux && cgo

package memtrim

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
static void cdw_malloc_trim(void) { malloc_trim(0); }
// cdw_malloc_tune sets the thresholds that are > 0; it returns 1 when every
// one it set was accepted.
static int cdw_malloc_tune(int mmap_threshold, int trim_threshold) {
	int ok = 1;
	if (mmap_threshold > 0 && mallopt(M_MMAP_THRESHOLD, mmap_threshold) != 1) ok = 0;
	if (trim_threshold > 0 && mallopt(M_TRIM_THRESHOLD, trim_threshold) != 1) ok = 0;
	return ok;
}
#else
static void cdw_malloc_trim(void) {}
static int cdw_malloc_tune(int mmap_threshold, int trim_threshold) { return 0; }
#endif
*/
import "C"

// Release returns the free memory of every malloc arena to the OS
// (glibc's malloc_trim; a no-op with other C libraries).
func Release() { C.cdw_malloc_trim() }

// tune applies the thresholds that are > 0 (glibc's mallopt) and reports
// whether they were applied.
func tune(mmap, trim int) bool {
	return C.cdw_malloc_tune(C.int(mmap), C.int(trim)) == 1
}
