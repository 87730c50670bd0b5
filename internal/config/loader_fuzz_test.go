package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/pipelines"
)

// FuzzLoadConfig feeds arbitrary bytes to cdw's config loader (strict YAML
// decoding into pipelines.Config): no panic, no hang on alias bombs, and
// every error names the config file.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("warehouse: wh\nsources:\n  - name: shop\n    kind: files\n    entities: {orders: {path: a.csv, columns: {order_id: id}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "cdw.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := pipelines.LoadConfig(p)
		if err != nil {
			if !strings.Contains(err.Error(), "cdw.yaml") {
				t.Fatalf("error does not name the file: %q", err)
			}
			return
		}
		if cfg.Warehouse == "" {
			t.Fatal("loaded a config without a warehouse directory")
		}
	})
}
