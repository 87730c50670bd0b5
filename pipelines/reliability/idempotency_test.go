package reliability

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract"
)

// TestRerunOnUnchangedSourcesChangesNothing runs the pipeline three times
// over unchanged sources: the reruns extract no rows and commit no file,
// raw keeps the same files, every published mart (Parquet, DuckDB file,
// PostgreSQL) keeps the same content, and no target gets a new version
// (issue #19 item 4: no-op runs must not push real versions out of keep).
func TestRerunOnUnchangedSourcesChangesNothing(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	wh := filepath.Join(dir, "wh")
	cfg := f.writeConfig(t, dir, cfgOptions{pgSchema: "idem"})
	f.mustRun(t, cfg)
	want := f.outcome(t, dir, "idem")
	files := func() map[string][]extract.RawFile {
		states, err := extract.StateStore{Dir: wh}.All()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]extract.RawFile{}
		for _, st := range states {
			out[st.Source+"."+st.Entity] = st.Files
		}
		return out
	}
	before, _ := json.Marshal(files())
	versions := f.mustRun(t, cfg, "publish", "--status").Stdout
	for _, kind := range []string{"parquet", "duckdb", "postgres"} {
		if !strings.Contains(versions, kind+" ") {
			t.Fatalf("publish --status does not show target %s:\n%s", kind, versions)
		}
	}
	for i := 0; i < 2; i++ {
		res := f.mustRun(t, cfg)
		if after, _ := json.Marshal(files()); string(after) != string(before) {
			t.Fatalf("rerun %d changed the committed raw files:\n%s\n%s", i+1, before, after)
		}
		f.outcome(t, dir, "idem").compare(t, want)
		if !strings.Contains(res.Stdout, "Marts unchanged since version ") {
			t.Fatalf("rerun %d does not say the publish was a no-op:\n%s", i+1, res.Stdout)
		}
		if now := f.mustRun(t, cfg, "publish", "--status").Stdout; now != versions {
			t.Fatalf("rerun %d changed the published versions:\nbefore:\n%s\nafter:\n%s", i+1, versions, now)
		}
	}
	// History: three successful runs; the reruns extracted nothing.
	h, err := os.Open(filepath.Join(wh, "state", "runs.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var runs []struct {
		Status string `json:"status"`
		Rows   int64  `json:"rows_extracted"`
	}
	sc := bufio.NewScanner(h)
	for sc.Scan() {
		var r struct {
			Status string `json:"status"`
			Rows   int64  `json:"rows_extracted"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	if len(runs) != 3 || runs[0].Rows == 0 || runs[1].Rows != 0 || runs[2].Rows != 0 {
		t.Fatalf("run history: %+v; want 3 runs, the reruns with 0 rows extracted", runs)
	}
}
