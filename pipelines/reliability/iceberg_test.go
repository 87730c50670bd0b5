package reliability

import (
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/cdwhq/cdw/extract/extracttest"
	"github.com/cdwhq/cdw/iceberg"
	"github.com/cdwhq/cdw/internal/crashtest"
)

// icebergOutcome is what the Iceberg catalog of a finished warehouse holds
// beside the raw files and Parquet marts.
type icebergOutcome struct {
	raw, fileRaw, marts, parquet map[string]crashtest.Summary
}

func icebergOutcomeOf(t *testing.T, dir string) icebergOutcome {
	t.Helper()
	wh := filepath.Join(dir, "wh")
	s := iceberg.Default(wh)
	return icebergOutcome{
		raw:     extracttest.IcebergRaw(t, s, wh),
		fileRaw: extracttest.Raw(t, wh),
		marts:   crashtest.IcebergTables(t, s, "marts", func(string) []string { return nil }),
		parquet: crashtest.ParquetMarts(t, filepath.Join(wh, "marts")),
	}
}

var icebergCfg = cfgOptions{publExt: "  - kind: iceberg\n    keep: 2\n", topExt: "iceberg:\n  catalog: filesystem\n"}

// TestIcebergCrashThenRerun kills `cdw run` with raw and mart tables in an
// Iceberg filesystem catalog at the failpoints around the two commits (state
// and Iceberg) and the mart snapshots, reruns it, and checks that every raw
// table read through iceberg-go's scanner holds exactly the rows of the
// committed raw files (each source row once), and every mart table equals
// the clean run's and the Parquet mart published beside it.
func TestIcebergCrashThenRerun(t *testing.T) {
	f := newFixture(t)
	refDir := t.TempDir()
	f.mustRun(t, f.writeConfig(t, refDir, icebergCfg))
	want := icebergOutcomeOf(t, refDir)
	if d := crashtest.Diff("iceberg raw vs raw files", want.fileRaw, want.raw); d != "" {
		t.Fatalf("clean run: %s", d)
	}
	if got := want.raw["shop.orders"].Rows; got != int64(f.orders) {
		t.Fatalf("clean run: Iceberg raw.shop_orders has %d rows, PostgreSQL has %d", got, f.orders)
	}
	if len(want.marts) == 0 || len(want.marts) != len(want.parquet) {
		t.Fatalf("clean run: %d Iceberg marts, %d Parquet marts", len(want.marts), len(want.parquet))
	}
	if d := crashtest.Diff("iceberg mart vs parquet mart", want.parquet, want.marts); d != "" {
		t.Fatalf("clean run: %s", d)
	}
	cases := []crashCase{
		{failpoint: "extract.before-commit:5"},
		{failpoint: "extract.after-commit:3"},
		{failpoint: "extract.iceberg.before-commit:2"},
		{failpoint: "extract.iceberg.before-commit:14"},
		{failpoint: "extract.iceberg.after-commit:3"},
		{failpoint: "publish.iceberg.before-commit:1"},
		{failpoint: "publish.iceberg.before-commit:3", warm: true},
		{failpoint: "publish.iceberg.between-marts:2", warm: true},
	}
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := f.writeConfig(t, dir, icebergCfg)
			if c.warm {
				f.mustRun(t, cfg)
				if err := os.Remove(filepath.Join(dir, "wh", "state", "publish.json")); err != nil {
					t.Fatal(err)
				}
			}
			res := f.run(t, cfg, crashtest.Run{Failpoint: c.failpoint})
			if !res.Killed {
				t.Fatalf("the run was not killed at %s: %s", c.failpoint, res)
			}
			f.mustRun(t, cfg)
			got := icebergOutcomeOf(t, dir)
			// clv_model carries fitted_at (when the fit ran): it differs
			// between runs by design, so it is compared with the Parquet
			// mart of the same run only.
			wantMarts := maps.Clone(want.marts)
			delete(wantMarts, "clv_model")
			gotMarts := maps.Clone(got.marts)
			delete(gotMarts, "clv_model")
			d := crashtest.Diff("iceberg raw", want.raw, got.raw) + crashtest.Diff("raw files", want.fileRaw, got.fileRaw) +
				crashtest.Diff("iceberg mart", wantMarts, gotMarts) + crashtest.Diff("iceberg mart vs parquet mart", got.parquet, got.marts)
			if d != "" {
				t.Errorf("after the crash at %s and a rerun:\n%s", c.failpoint, d)
			}
			if left := crashtest.Leftovers(filepath.Join(dir, "wh")); len(left) > 0 {
				t.Errorf("temporary files left after the rerun: %v", left)
			}
		})
	}
}
