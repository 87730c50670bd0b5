package crashtest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/iceberg-go/catalog"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/iceberg"
)

// IcebergTables summarises every table of namespace ns in the catalog s,
// read through iceberg-go's own scanner (not the files), over cols(table)
// when it returns columns (nil: every column).
func IcebergTables(t testing.TB, s *iceberg.Settings, ns string, cols func(name string) []string) map[string]Summary {
	t.Helper()
	ctx := context.Background()
	cat, err := s.Open(ctx)
	if err != nil {
		t.Fatalf("crashtest: %v", err)
	}
	defer cat.Close()
	out := map[string]Summary{}
	if ok, err := cat.CheckNamespaceExists(ctx, catalog.ToIdentifier(ns)); err != nil || !ok {
		return out
	}
	db := openDuck(t)
	defer db.Close()
	tmp := t.TempDir()
	for id, err := range cat.ListTables(ctx, catalog.ToIdentifier(ns)) {
		if err != nil {
			t.Fatalf("crashtest: listing Iceberg tables: %v", err)
		}
		name := id[len(id)-1]
		tbl, err := cat.LoadTable(ctx, id)
		if err != nil {
			t.Fatalf("crashtest: loading Iceberg table %s: %v", name, err)
		}
		f := filepath.Join(tmp, ns+"."+name+".parquet")
		n, err := iceberg.WriteParquet(ctx, tbl, 0, f)
		if err != nil {
			t.Fatalf("crashtest: scanning Iceberg table %s: %v", name, err)
		}
		if n == 0 {
			out[name] = Summary{}
			continue
		}
		sel := "*"
		if cs := cols(name); cs != nil {
			q := make([]string, len(cs))
			for i, c := range cs {
				q[i] = quote(c)
			}
			sel = fmt.Sprintf("COLUMNS(c -> list_contains([%s], c))", strings.Join(q, ", "))
		}
		var sm Summary
		if err := db.QueryRow(SummaryQuery(fmt.Sprintf("(SELECT %s FROM read_parquet(%s))", sel, quote(f)))).Scan(&sm.Rows, &sm.Sum); err != nil {
			t.Fatalf("crashtest: reading Iceberg table %s: %v", name, err)
		}
		out[name] = sm
	}
	return out
}

// IcebergRaw summarises the raw Iceberg tables keyed like Raw
// (<source>.<entity>), over the entity's canonical columns.
func IcebergRaw(t testing.TB, s *iceberg.Settings, warehouse string) map[string]Summary {
	t.Helper()
	states, err := extract.StateStore{Dir: warehouse}.All()
	if err != nil {
		t.Fatalf("crashtest: reading extract state: %v", err)
	}
	key := map[string]string{}
	cols := map[string][]string{}
	for _, st := range states {
		tn := iceberg.RawTableName(st.Source, st.Entity)
		key[tn] = st.Source + "." + st.Entity
		ent, err := extract.LookupEntity(st.Entity)
		if err != nil {
			t.Fatalf("crashtest: %v", err)
		}
		for _, c := range ent.Columns {
			cols[tn] = append(cols[tn], c.Name)
		}
	}
	got := IcebergTables(t, s, iceberg.RawNamespace, func(n string) []string { return cols[n] })
	out := map[string]Summary{}
	for tn, sm := range got {
		k, ok := key[tn]
		if !ok {
			k = "unknown table raw." + tn
		}
		out[k] = sm
	}
	for tn, k := range key {
		if _, ok := got[tn]; !ok {
			out[k] = Summary{}
		}
	}
	return out
}
