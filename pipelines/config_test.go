package pipelines

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMartsPath: the published marts.duckdb is where the duckdb target
// writes it, relative to the config file, else in the warehouse directory.
func TestMartsPath(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		"warehouse: wh\nsources: []\n": filepath.Join(dir, "wh", "marts.duckdb"),
		"warehouse: wh\nsources: []\npublish:\n  - kind: parquet\n  - kind: duckdb\n":              filepath.Join(dir, "wh", "marts.duckdb"),
		"warehouse: wh\nsources: []\npublish:\n  - kind: duckdb\n    path: bi/marts.duckdb\n":      filepath.Join(dir, "bi", "marts.duckdb"),
		"warehouse: wh\nsources: []\npublish:\n  - kind: duckdb\n    path: /srv/bi/marts.duckdb\n": "/srv/bi/marts.duckdb",
	} {
		cfgPath := filepath.Join(dir, "cdw.yaml")
		if err := os.WriteFile(cfgPath, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(cfgPath)
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if got, err := cfg.MartsPath(); err != nil || got != want {
			t.Errorf("%q: MartsPath = %q, %v; want %q", body, got, err, want)
		}
	}
}
