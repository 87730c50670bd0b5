package transform

import (
	"context"
	"path/filepath"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"2.5GB": 2_500_000_000, "512 MiB": 512 << 20, "1000000 bytes": 1_000_000, "3gb": 3_000_000_000,
		"1.5GiB": 3 << 29, "800000": 800_000, " 2 TB ": 2e12,
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "2.5 GBs", "-1GB", "lots"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

// TestReserveMemory: DuckDB's limit is lowered by what a Go model holds
// outside it (never below half), then set back to the configured value.
func TestReserveMemory(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "w.duckdb"), Settings{MemoryLimit: "1GB"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	limit := func() string {
		var s string
		if err := conn.QueryRowContext(ctx, "SELECT current_setting('memory_limit')").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	configured := limit()
	r := &Runner{DB: db, MemoryLimit: "1GB"}
	for need, want := range map[int64]string{200_000_000: "762.9 MiB", 900_000_000: "476.8 MiB"} {
		restore, err := r.reserveMemory(ctx, conn, need)
		if err != nil {
			t.Fatal(err)
		}
		if got := limit(); got != want {
			t.Errorf("holding %d bytes outside: memory_limit %s, want %s", need, got, want)
		}
		restore()
		if got := limit(); got != configured {
			t.Errorf("after: memory_limit %s, want the configured %s", got, configured)
		}
	}
	if restore, err := (&Runner{DB: db}).reserveMemory(ctx, conn, 200_000_000); err != nil || limit() != configured {
		t.Errorf("without a configured limit the limit changed to %s (%v)", limit(), err)
	} else {
		restore()
	}
}
