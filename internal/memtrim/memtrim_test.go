package memtrim

import (
	"runtime"
	"testing"
)

// TestTuneLeavesEnvironmentSettingsAlone: a threshold the user set through
// glibc's environment variable is not overridden.
func TestTuneLeavesEnvironmentSettingsAlone(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("glibc only")
	}
	t.Setenv("MALLOC_MMAP_THRESHOLD_", "65536")
	mmap, trim := Tune()
	if mmap != 0 || trim != trimThreshold {
		t.Errorf("with MALLOC_MMAP_THRESHOLD_ set: Tune set mmap %d, trim %d; want 0, %d", mmap, trim, trimThreshold)
	}
}

// TestTune sets both thresholds when the environment does not.
func TestTune(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("glibc only")
	}
	if mmap, trim := Tune(); mmap != mmapThreshold || trim != trimThreshold {
		t.Errorf("Tune set mmap %d, trim %d; want %d, %d", mmap, trim, mmapThreshold, trimThreshold)
	}
}
