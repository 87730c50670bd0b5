package crashtest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/apache/iceberg-go/catalog"

	"github.com/cdwhq/cdw/iceberg"
	"github.com/cdwhq/cdw/internal/duck"
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
			sel = fmt.Sprintf("COLUMNS(c -> list_contains([%s], c))", duck.Literals(cs))
		}
		var sm Summary
		if err := db.QueryRow(SummaryQuery(fmt.Sprintf("(SELECT %s FROM read_parquet(%s))", sel, duck.Literal(f)))).Scan(&sm.Rows, &sm.Sum); err != nil {
			t.Fatalf("crashtest: reading Iceberg table %s: %v", name, err)
		}
		out[name] = sm
	}
	return out
}
