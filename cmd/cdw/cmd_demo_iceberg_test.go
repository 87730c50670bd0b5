package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract/extracttest"
	"github.com/cdwhq/cdw/internal/crashtest"
	"github.com/cdwhq/cdw/pipelines"
)

// TestDemoIceberg runs `cdw demo --iceberg` and reads every raw and mart
// table back through iceberg-go's scanner: each equals, row for row, the
// Parquet raw layer and the published Parquet mart it mirrors, and the demo
// says where the tables are and how another engine reads them.
func TestDemoIceberg(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := cdw(t, "demo", "--iceberg", "--dir", dir, "--customers", "100")
	if code != 0 {
		t.Fatalf("demo --iceberg exited %d: %s", code, stderr)
	}
	ice := filepath.Join(dir, "iceberg")
	for _, want := range []string{ice + "/raw/<source>_<entity>", ice + "/marts/<mart>", "iceberg_scan(", "spark.sql.catalog.cdw.type=hadoop"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	cfg, err := pipelines.LoadConfig(filepath.Join(dir, "cdw.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wh := cfg.Warehouse
	raw := extracttest.Raw(t, wh)
	if len(raw) < 4 {
		t.Fatalf("raw layer has %d entities, want 4: %v", len(raw), raw)
	}
	if d := crashtest.Diff("iceberg raw vs raw files", raw, extracttest.IcebergRaw(t, cfg.IcebergSettings, wh)); d != "" {
		t.Fatal(d)
	}
	marts := crashtest.ParquetMarts(t, filepath.Join(wh, "marts"))
	if _, ok := marts["segment_summary"]; !ok {
		t.Fatalf("no segment_summary among the Parquet marts: %v", marts)
	}
	got := crashtest.IcebergTables(t, cfg.IcebergSettings, "marts", func(string) []string { return nil })
	if d := crashtest.Diff("iceberg marts vs Parquet marts", marts, got); d != "" {
		t.Fatal(d)
	}
}
