package reliability

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/extract/extracttest"
	"github.com/cdwhq/cdw/iceberg"
	"github.com/cdwhq/cdw/internal/crashtest"
)

// compactWarehouse is a warehouse of 60 small raw order files (every 4th
// of new versions of the previous file's lines) with Iceberg on, and its
// config for `cdw compact`.
func compactWarehouse(t *testing.T) (cfg, wh string) {
	t.Helper()
	dir := t.TempDir()
	wh = filepath.Join(dir, "wh")
	extracttest.SmallOrderFiles(t, wh, "api", 60, 20, 4)
	cfg = filepath.Join(dir, "cdw.yaml")
	if err := os.WriteFile(cfg, []byte("warehouse: wh\niceberg: {catalog: filesystem}\nsources: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, wh
}

// TestCompactCrashThenRerun kills `cdw compact` at every point of its
// commit (outputs written, state committed, Iceberg committed, inputs not
// yet deleted) and runs it again: the raw files state lists and the
// Iceberg table read through iceberg-go's scanner hold exactly the rows
// of before (each once), no file is on disk that state does not list, and
// the rerun finishes the compaction. A clean compaction commits one
// Iceberg snapshot of operation replace.
func TestCompactCrashThenRerun(t *testing.T) {
	bin := crashtest.Binary(t)
	cfg, wh := compactWarehouse(t)
	want := extracttest.Raw(t, wh)
	compact := func(t *testing.T, cfg, fp string) crashtest.Result {
		return crashtest.Exec(t, bin, crashtest.Run{Args: []string{"compact", "--config", cfg, "--target-size", "1MB"}, Failpoint: fp})
	}
	if r := compact(t, cfg, ""); r.Killed || r.Code != 0 {
		t.Fatalf("clean compaction: %s", r)
	}
	check := func(t *testing.T, wh string) *extract.EntityState {
		t.Helper()
		s := iceberg.Default(wh)
		d := crashtest.Diff("raw files", want, extracttest.Raw(t, wh)) + crashtest.Diff("iceberg raw", want, extracttest.IcebergRaw(t, s, wh))
		if d != "" {
			t.Error(d)
		}
		st, err := extract.StateStore{Dir: wh}.Load("api", "orders")
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Files) >= 30 {
			t.Errorf("%d raw files after compaction, want fewer than 30 of 60", len(st.Files))
		}
		return st
	}
	check(t, wh)
	ctx := context.Background()
	cat, err := iceberg.Default(wh).Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := cat.LoadTable(ctx, catalog.ToIdentifier(iceberg.RawNamespace, "api_orders"))
	cat.Close()
	if err != nil {
		t.Fatal(err)
	}
	if op := tbl.CurrentSnapshot().Summary.Operation; op != table.OpReplace {
		t.Errorf("compaction snapshot is %s, want %s", op, table.OpReplace)
	}
	for _, fp := range []string{
		"compact.mid-write:3",
		"compact.before-commit:1",
		"compact.after-commit:1",
		"extract.iceberg.before-commit:2", // the compaction's Iceberg commit (1: the reconcile on start)
		"extract.iceberg.after-commit:2",
		"compact.before-delete:1",
	} {
		t.Run(fp, func(t *testing.T) {
			cfg, wh := compactWarehouse(t)
			if r := compact(t, cfg, fp); !r.Killed {
				t.Fatalf("not killed at %s: %s", fp, r)
			}
			if r := compact(t, cfg, ""); r.Killed || r.Code != 0 {
				t.Fatalf("rerun: %s", r)
			}
			check(t, wh)
			if left := crashtest.Leftovers(wh); len(left) > 0 {
				t.Errorf("temporary files left after the rerun: %v", left)
			}
		})
	}
}
