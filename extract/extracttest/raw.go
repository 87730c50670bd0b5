// Package extracttest holds test helpers over the extract contract: what the
// committed raw layer of a warehouse holds, as extract's state lists it. The
// crash tests (pipelines/reliability) compare it before and after a kill.
package extracttest

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/iceberg"
	"github.com/cdwhq/cdw/internal/crashtest"
	"github.com/cdwhq/cdw/internal/duck"
)

// Raw summarises the committed raw rows of every source entity of a
// warehouse, over the entity's canonical columns only (lineage columns such
// as the batch file name differ between runs by design). It fails the test
// when a file listed by state is missing or a file on disk is not listed:
// after any crash and rerun, raw holds exactly the committed files.
func Raw(t testing.TB, warehouse string) map[string]crashtest.Summary {
	t.Helper()
	states, err := extract.StateStore{Dir: warehouse}.All()
	if err != nil {
		t.Fatalf("extracttest: reading extract state: %v", err)
	}
	listed := map[string]bool{}
	db, err := duck.OpenMemory()
	if err != nil {
		t.Fatalf("extracttest: %v", err)
	}
	defer db.Close()
	out := map[string]crashtest.Summary{}
	for _, st := range states {
		if st.Refresh != nil {
			t.Errorf("extracttest: %s.%s: a full refresh is still pending after a completed run", st.Source, st.Entity)
		}
		for _, f := range st.Quarantine {
			listed[f.Path] = true
		}
		var paths []string
		for _, f := range st.Files {
			listed[f.Path] = true
			paths = append(paths, duck.Literal(filepath.Join(warehouse, filepath.FromSlash(f.Path))))
		}
		key := st.Source + "." + st.Entity
		if len(paths) == 0 {
			out[key] = crashtest.Summary{}
			continue
		}
		ent, err := extract.LookupEntity(st.Entity)
		if err != nil {
			t.Fatalf("extracttest: %v", err)
		}
		cols := make([]string, len(ent.Columns))
		for i, c := range ent.Columns {
			cols[i] = duck.Literal(c.Name)
		}
		rel := fmt.Sprintf("(SELECT COLUMNS(c -> list_contains([%s], c)) FROM read_parquet([%s], union_by_name = true))",
			strings.Join(cols, ", "), strings.Join(paths, ", "))
		var s crashtest.Summary
		if err := db.QueryRow(crashtest.SummaryQuery(rel)).Scan(&s.Rows, &s.Sum); err != nil {
			t.Fatalf("extracttest: reading raw %s: %v", key, err)
		}
		if s.Rows != st.Rows {
			t.Errorf("extracttest: raw %s holds %d rows, state says %d", key, s.Rows, st.Rows)
		}
		out[key] = s
	}
	for _, layer := range []string{"raw", "quarantine"} {
		filepath.WalkDir(filepath.Join(warehouse, layer), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(warehouse, p)
			if !listed[filepath.ToSlash(rel)] {
				t.Errorf("extracttest: %s is on disk but no state lists it", rel)
			}
			return nil
		})
	}
	return out
}

// IcebergRaw summarises the raw Iceberg tables keyed like Raw
// (<source>.<entity>), over the entity's canonical columns.
func IcebergRaw(t testing.TB, s *iceberg.Settings, warehouse string) map[string]crashtest.Summary {
	t.Helper()
	states, err := extract.StateStore{Dir: warehouse}.All()
	if err != nil {
		t.Fatalf("extracttest: reading extract state: %v", err)
	}
	key := map[string]string{}
	cols := map[string][]string{}
	for _, st := range states {
		tn := iceberg.RawTableName(st.Source, st.Entity)
		key[tn] = st.Source + "." + st.Entity
		ent, err := extract.LookupEntity(st.Entity)
		if err != nil {
			t.Fatalf("extracttest: %v", err)
		}
		for _, c := range ent.Columns {
			cols[tn] = append(cols[tn], c.Name)
		}
	}
	got := crashtest.IcebergTables(t, s, iceberg.RawNamespace, func(n string) []string { return cols[n] })
	out := map[string]crashtest.Summary{}
	for tn, sm := range got {
		k, ok := key[tn]
		if !ok {
			k = "unknown table raw." + tn
		}
		out[k] = sm
	}
	for tn, k := range key {
		if _, ok := got[tn]; !ok {
			out[k] = crashtest.Summary{}
		}
	}
	return out
}
