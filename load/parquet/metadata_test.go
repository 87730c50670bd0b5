package parquet

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/cdwhq/cdw/load"
	"github.com/cdwhq/cdw/load/loadtest"
)

// TestDescriptionsAsMetadata (#22 item 8): a mart's description is the
// file's "description" key-value metadata and its columns' descriptions
// are Arrow field metadata, as an Arrow reader (arrow-go here, as pyarrow
// does) decodes them; the column types a reader sees are those of a file
// without descriptions, and DuckDB reads the same rows.
func TestDescriptionsAsMetadata(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wh := loadtest.Warehouse(t)
	if _, err := wh.Exec(`CREATE TABLE m AS SELECT i AS Customer_ID, 'seg' || (i % 3) AS segment, i * 1.25::DECIMAL(18,2) AS revenue,
		TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_hours(i) AS seen_at, [i, i + 1] AS tags, {'k': i} AS attrs, NULL::DATE AS d
		FROM range(50) r(i)`); err != nil {
		t.Fatal(err)
	}
	p := openTest(t, "{}", dir)
	docs := map[string]load.MartDoc{"m": {Description: "One row per customer, 'quoted'.",
		Columns: map[string]string{"customer_id": "the customer", "tags": "labels"}}}
	if err := p.Publish(ctx, load.Marts{DB: wh, Names: []string{"m"}, Docs: docs}); err != nil {
		t.Fatal(err)
	}
	// The same mart without descriptions, for the types a reader infers.
	plain := openTest(t, "dir: plain", dir)
	if err := plain.Publish(ctx, load.Marts{DB: wh, Names: []string{"m"}}); err != nil {
		t.Fatal(err)
	}
	read := func(path string) (*arrow.Schema, map[string]string) {
		t.Helper()
		r, err := file.OpenParquetFile(path, false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		fr, err := pqarrow.NewFileReader(r, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		s, err := fr.Schema()
		if err != nil {
			t.Fatal(err)
		}
		kv := map[string]string{}
		for _, e := range r.MetaData().KeyValueMetadata() {
			if e.Value != nil {
				kv[e.Key] = *e.Value
			}
		}
		return s, kv
	}
	s, kv := read(filepath.Join(dir, "marts", "m.parquet"))
	if kv["description"] != "One row per customer, 'quoted'." {
		t.Errorf("file metadata description = %q", kv["description"])
	}
	got := map[string]string{}
	for _, f := range s.Fields() {
		if d, ok := f.Metadata.GetValue("description"); ok {
			got[f.Name] = d
		}
	}
	if len(got) != 2 || got["Customer_ID"] != "the customer" || got["tags"] != "labels" {
		t.Errorf("field descriptions = %v", got)
	}
	ps, _ := read(filepath.Join(dir, "plain", "m.parquet"))
	for i, f := range ps.Fields() {
		if g := s.Field(i); g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) || g.Nullable != f.Nullable {
			t.Errorf("column %d: %s %s with descriptions, %s %s without", i, g.Name, g.Type, f.Name, f.Type)
		}
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var diff int
	if err := db.QueryRow(`SELECT count(*) FROM (SELECT * FROM read_parquet(?) EXCEPT ALL SELECT * FROM read_parquet(?))`,
		filepath.Join(dir, "marts", "m.parquet"), filepath.Join(dir, "plain", "m.parquet")).Scan(&diff); err != nil || diff != 0 {
		t.Errorf("DuckDB reads %d different rows (%v)", diff, err)
	}
}
