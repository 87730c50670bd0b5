package iceberg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
)

// RawNamespace holds one table per source entity, raw.<source>_<entity>.
const RawNamespace = "raw"

// The snapshot summary properties of a raw commit.
const (
	BatchKey  = "cdw.batch"  // the batch (file name without .parquet) the commit adds
	CursorKey = "cdw.cursor" // the entity's committed cursor, as state holds it (JSON)
)

// RewriteBatch is the batch of a compaction (extract.CompactBatch): its
// commit is a rewrite (operation replace: the same rows in other files),
// which readers and incremental scans may skip as no change of data.
const RewriteBatch = "compact"

// RawTableName is the table of one source entity.
func RawTableName(source, entity string) string { return source + "_" + entity }

// SyncRaw makes the current snapshot of raw.<source>_<entity> hold exactly
// files (absolute paths of the Parquet files extract state lists), in one
// commit that adds the new files and removes the ones no longer listed (a
// superseded version leaves in the commit that adds its replacement), with
// props (batch id, cursor) in the snapshot summary. It commits nothing when
// the table already holds files, so calling it again after a crash, on
// start, is what reconciles the two views. The table is created on the
// first call, from the schema of its first file; a file with new columns
// widens it in the same commit. event, when not "", is the timestamp
// column the new table is partitioned by, day(event): each file must then
// hold rows of one UTC day (extract.Extractor.EventDays writes them so),
// which AddFiles reads off the file's column statistics as its partition
// value. A table created before keeps its spec, and so does one created
// over files of several days each (raw files written before Iceberg was
// on): it stays unpartitioned, said in one log line.
func (c *Catalog) SyncRaw(ctx context.Context, source, entity, event string, files []string, props map[string]string) error {
	name := RawTableName(source, entity)
	want := map[string]bool{}
	for _, f := range files {
		want[f] = true
	}
	var t *table.Table
	var err error
	id := catalog.ToIdentifier(RawNamespace, name)
	if len(files) == 0 {
		t, err = c.LoadTable(ctx, id)
		if errors.Is(err, catalog.ErrNoSuchTable) {
			return nil
		}
	} else {
		var sc *arrow.Schema
		sc, err = FileSchema(files[0])
		if err != nil {
			return err
		}
		var spec func(*ice.Schema) (*ice.PartitionSpec, error)
		if event != "" {
			spec = func(isc *ice.Schema) (*ice.PartitionSpec, error) {
				return eventDaySpecFor(ctx, isc, event, name, files)
			}
		}
		t, err = c.LoadOrCreate(ctx, RawNamespace, name, filepath.Join(c.settings.Dir, RawNamespace, name), sc, spec)
	}
	if err != nil {
		return fmt.Errorf("Iceberg raw table %s: %w", name, err)
	}
	for attempt := 0; ; attempt++ {
		err := c.syncOnce(ctx, t, files, want, props)
		if err == nil || !errors.Is(err, table.ErrCommitFailed) || attempt >= 10 {
			if err != nil {
				return fmt.Errorf("Iceberg raw table %s in the %s: %w", name, c.settings.Where(), err)
			}
			return nil
		}
		// Another writer committed first: reload and redo the diff.
		if t, err = c.LoadTable(ctx, id); err != nil {
			return fmt.Errorf("Iceberg raw table %s: %w", name, err)
		}
	}
}

// EventDaySpec partitions a raw table by the UTC day of its event column,
// as the partition field <event>_day (Spark's and Trino's days(event)).
func EventDaySpec(sc *ice.Schema, event string) (*ice.PartitionSpec, error) {
	f, ok := sc.FindFieldByName(event)
	if !ok {
		return nil, fmt.Errorf("event column %s is not in the table's schema", event)
	}
	if _, ok := f.Type.(ice.TimestampTzType); !ok {
		if _, ok := f.Type.(ice.TimestampType); !ok {
			return nil, fmt.Errorf("event column %s is %s, not a timestamp", event, f.Type)
		}
	}
	spec := ice.NewPartitionSpec(ice.PartitionField{SourceIDs: []int{f.ID}, FieldID: 1000, Name: event + "_day", Transform: ice.DayTransform{}})
	return &spec, nil
}

// eventDaySpecFor is EventDaySpec when every file holds one event day, nil
// (unpartitioned) otherwise.
func eventDaySpecFor(ctx context.Context, isc *ice.Schema, event, name string, files []string) (*ice.PartitionSpec, error) {
	spec, err := EventDaySpec(isc, event)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if _, err := table.FileToDataFile(ctx, iceio.LocalFS{}, f, isc, *spec, 0, ice.Properties{}); err != nil {
			slog.Warn("Iceberg raw table left unpartitioned: a raw file holds rows of several event days (written before iceberg: was on)",
				"table", RawNamespace+"."+name, "file", f, "err", err)
			return nil, nil
		}
	}
	return spec, nil
}

func (c *Catalog) syncOnce(ctx context.Context, t *table.Table, files []string, want map[string]bool, props map[string]string) error {
	have, err := DataFiles(ctx, t)
	if err != nil {
		return err
	}
	haveSet := map[string]bool{}
	var drop []string
	for _, f := range have {
		p := strings.TrimPrefix(f, "file://")
		haveSet[p] = true
		if !want[p] {
			drop = append(drop, f)
		}
	}
	var add []string
	for _, f := range files {
		if !haveSet[f] {
			add = append(add, f)
		}
	}
	if len(add) == 0 && len(drop) == 0 {
		return nil
	}
	tx := t.NewTransaction()
	for _, f := range add {
		sc, err := FileSchema(f)
		if err != nil {
			return err
		}
		if err := widenSchema(tx, sc); err != nil {
			return fmt.Errorf("widening the schema for %s: %w", f, err)
		}
	}
	switch {
	case props[BatchKey] == RewriteBatch && len(drop) > 0 && len(add) > 0:
		err = rewrite(ctx, tx, t, drop, add, props)
	case len(drop) == 0:
		err = tx.AddFiles(ctx, add, props, false)
	default:
		err = tx.ReplaceDataFiles(ctx, drop, add, props)
	}
	if err != nil {
		return err
	}
	_, err = tx.Commit(ctx)
	return err
}

// widenSchema adds the columns of sc the staged schema lacks.
func widenSchema(tx *table.Transaction, sc *arrow.Schema) error {
	st, err := tx.StagedTable()
	if err != nil {
		return err
	}
	cur := st.Schema()
	missing := false
	for _, f := range sc.Fields() {
		if _, ok := cur.FindFieldByName(f.Name); !ok {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	want, err := table.ArrowSchemaToIcebergWithFreshIDs(sc, true)
	if err != nil {
		return err
	}
	if err := tx.UpdateSchema(true, false).UnionByNameWith(want).Commit(); err != nil {
		return err
	}
	return refreshNameMapping(tx)
}

// refreshNameMapping points the table's name mapping (how readers find
// columns in files without field ids, such as cdw's) at the staged schema,
// so columns added by a schema change are found too.
func refreshNameMapping(tx *table.Transaction) error {
	st, err := tx.StagedTable()
	if err != nil {
		return err
	}
	m, err := json.Marshal(st.Schema().NameMapping())
	if err != nil {
		return err
	}
	return tx.SetProperties(map[string]string{table.DefaultNameMappingKey: string(m)})
}

// rewrite stages one replace snapshot on tx that removes drop (paths as the
// table lists them) and adds add.
func rewrite(ctx context.Context, tx *table.Transaction, t *table.Table, drop, add []string, props map[string]string) error {
	gone := map[string]bool{}
	for _, f := range drop {
		gone[f] = true
	}
	tasks, err := t.Scan().PlanFiles(ctx)
	if err != nil {
		return err
	}
	rw := tx.NewRewrite(props)
	for _, task := range tasks {
		if gone[task.File.FilePath()] {
			rw.DeleteFile(task.File)
		}
	}
	st, err := tx.StagedTable()
	if err != nil {
		return err
	}
	for _, f := range add {
		df, err := table.FileToDataFile(ctx, iceio.LocalFS{}, f, st.Schema(), st.Spec(), 0, st.Properties())
		if err != nil {
			return fmt.Errorf("data file %s: %w", f, err)
		}
		rw.AddDataFile(df)
	}
	return rw.Commit(ctx)
}
