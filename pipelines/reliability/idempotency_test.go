package reliability

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/cdwhq/cdw/extract"
)

// TestRerunOnUnchangedSourcesChangesNothing runs the pipeline three times
// over unchanged sources: the reruns extract no rows and commit no file,
// raw keeps the same files, and every published mart (Parquet, DuckDB file,
// PostgreSQL) keeps the same content.
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
	for i := 0; i < 2; i++ {
		f.mustRun(t, cfg)
		if after, _ := json.Marshal(files()); string(after) != string(before) {
			t.Fatalf("rerun %d changed the committed raw files:\n%s\n%s", i+1, before, after)
		}
		f.outcome(t, dir, "idem").compare(t, want)
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
