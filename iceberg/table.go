package iceberg

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// VersionKey is the snapshot summary property holding the cdw version
// (publish version id, or raw batch id) a snapshot made.
const VersionKey = "cdw.version"

// FileSchema reads the Arrow schema of a Parquet file.
func FileSchema(path string) (*arrow.Schema, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return nil, fmt.Errorf("reading Parquet footer of %s: %w", path, err)
	}
	defer pf.Close()
	r, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("reading Parquet schema of %s: %w", path, err)
	}
	sc, err := r.Schema()
	if err != nil {
		return nil, fmt.Errorf("reading Parquet schema of %s: %w", path, err)
	}
	return sc, nil
}

// LoadOrCreate loads table ns.name, creating it with schema sc (fresh field
// ids) at location when it does not exist. spec may build the partition
// spec from the new table's schema (nil, or a nil spec: unpartitioned).
func (c *Catalog) LoadOrCreate(ctx context.Context, ns, name, location string, sc *arrow.Schema, spec func(*ice.Schema) (*ice.PartitionSpec, error)) (*table.Table, error) {
	id := catalog.ToIdentifier(ns, name)
	t, err := c.LoadTable(ctx, id)
	if err == nil {
		return t, nil
	}
	if !errors.Is(err, catalog.ErrNoSuchTable) {
		return nil, fmt.Errorf("loading Iceberg table %s.%s from the %s: %w", ns, name, c.settings.Where(), err)
	}
	if err := c.EnsureNamespace(ctx, ns); err != nil {
		return nil, err
	}
	isc, err := table.ArrowSchemaToIcebergWithFreshIDs(sc, true)
	if err != nil {
		return nil, fmt.Errorf("Iceberg schema for %s.%s: %w", ns, name, err)
	}
	opts := []catalog.CreateTableOpt{catalog.WithLocation(location),
		catalog.WithProperties(ice.Properties{"format-version": "2"})}
	if spec != nil {
		ps, err := spec(isc)
		if err != nil {
			return nil, fmt.Errorf("partition spec for %s.%s: %w", ns, name, err)
		}
		if ps != nil {
			opts = append(opts, catalog.WithPartitionSpec(ps))
		}
	}
	t, err = c.CreateTable(ctx, id, isc, opts...)
	if errors.Is(err, catalog.ErrTableAlreadyExists) {
		// Another writer created it first.
		return c.LoadTable(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("creating Iceberg table %s.%s in the %s: %w", ns, name, c.settings.Where(), err)
	}
	return t, nil
}

// AlignSchema stages on tx the schema changes that make the table's schema
// match sc by name: new columns are added, missing ones dropped, widened
// types promoted. It does nothing when they already match.
func AlignSchema(tx *table.Transaction, current *ice.Schema, sc *arrow.Schema) error {
	want, err := table.ArrowSchemaToIcebergWithFreshIDs(sc, true)
	if err != nil {
		return err
	}
	if sameByName(current, want) {
		return nil
	}
	u := tx.UpdateSchema(true, false).UnionByNameWith(want)
	for _, f := range current.Fields() {
		if _, ok := want.FindFieldByName(f.Name); !ok {
			u = u.DeleteColumn([]string{f.Name})
		}
	}
	if err := u.Commit(); err != nil {
		return err
	}
	return refreshNameMapping(tx)
}

func sameByName(a, b *ice.Schema) bool {
	af, bf := a.Fields(), b.Fields()
	if len(af) != len(bf) {
		return false
	}
	for i := range af {
		if af[i].Name != bf[i].Name || !af[i].Type.Equals(bf[i].Type) {
			return false
		}
	}
	return true
}

// DataFiles lists the data files of the table's current snapshot.
func DataFiles(ctx context.Context, t *table.Table) ([]string, error) {
	if t.CurrentSnapshot() == nil {
		return nil, nil
	}
	tasks, err := t.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing data files of Iceberg table %v: %w", t.Identifier(), err)
	}
	out := make([]string, 0, len(tasks))
	for _, task := range tasks {
		out = append(out, task.File.FilePath())
	}
	return out, nil
}

// Lineage lists the current snapshot and its ancestors, newest first.
func Lineage(t *table.Table) []table.Snapshot {
	cur := t.CurrentSnapshot()
	if cur == nil {
		return nil
	}
	return table.AncestorsOf(cur.SnapshotID, func(id int64) *table.Snapshot { return t.SnapshotByID(id) })
}

// SnapshotVersion is the cdw version a snapshot carries ("" if none).
func SnapshotVersion(s *table.Snapshot) string {
	if s == nil || s.Summary == nil {
		return ""
	}
	return s.Summary.Properties[VersionKey]
}

// WriteParquet streams the rows of the table's current snapshot (or of
// snapshot id when id != 0), as iceberg-go's scanner reads them, into a
// Parquet file at path, so that any engine (DuckDB in cdw's tests) can
// compare them with the layer they came from. It returns the row count.
func WriteParquet(ctx context.Context, t *table.Table, id int64, path string) (int64, error) {
	var opts []table.ScanOption
	if id != 0 {
		opts = append(opts, table.WithSnapshotID(id))
	}
	scan := t.Scan(opts...)
	defer scan.Close()
	sc, recs, err := scan.ToArrowRecords(ctx)
	if err != nil {
		return 0, fmt.Errorf("scanning Iceberg table %v: %w", t.Identifier(), err)
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w, err := pqarrow.NewFileWriter(sc, f, nil, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return 0, err
	}
	var n int64
	for rec, err := range recs {
		if err != nil {
			w.Close()
			return n, fmt.Errorf("scanning Iceberg table %v: %w", t.Identifier(), err)
		}
		n += rec.NumRows()
		err = w.WriteBuffered(rec)
		rec.Release()
		if err != nil {
			w.Close()
			return n, err
		}
	}
	return n, w.Close()
}
