// Package datasets locates the public datasets tests read (CDNOW, UCI Online
// Retail) in shared/datasets, the directory that sits beside the repository.
package datasets

import (
	"os"
	"path/filepath"
	"testing"
)

// Path returns shared/datasets/rel, found by walking up from the working
// directory (at each level both dir/shared and dir/../shared). The data are a
// hard requirement of the tests that use them: a missing dataset fails the
// test instead of skipping it.
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatalf("getwd: %v", err)
	}
	for {
		for _, p := range []string{filepath.Join(dir, "shared", "datasets", rel), filepath.Join(dir, "..", "shared", "datasets", rel)} {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("dataset %s not found: ../shared/datasets must sit beside the repository", rel)
		}
		dir = parent
	}
}
