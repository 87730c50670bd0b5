package pipelines_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/extract/extracttest"
	"github.com/cdwhq/cdw/iceberg"
	"github.com/cdwhq/cdw/internal/crashtest"
	"github.com/cdwhq/cdw/pipelines"
)

// TestIcebergRawEventDays extracts UCI Online Retail (541,909 lines over a
// year of invoices) with Iceberg on, then checks that raw.retail_orders is
// partitioned by day(order_ts), not by the day of the extract: every data
// file holds the rows of exactly the one UTC invoice day its partition
// value (and its dt= directory) names, and the table read back through
// iceberg-go's scanner equals the Parquet layer row for row.
func TestIcebergRawEventDays(t *testing.T) {
	dir := t.TempDir()
	r := onlineRetailRunner(t, dir, true)
	today := time.Now().UTC().Format("2006-01-02") // no invoice has it (2010-2011)
	ctx := context.Background()
	if _, err := r.Extract(ctx, pipelines.Options{}, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	wh := r.Cfg.Warehouse
	if d := crashtest.Diff("iceberg raw vs raw files", extracttest.Raw(t, wh), extracttest.IcebergRaw(t, r.Cfg.IcebergSettings, wh)); d != "" {
		t.Fatal(d)
	}

	cat, err := r.Cfg.IcebergSettings.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	tbl, err := cat.LoadTable(ctx, catalog.ToIdentifier(iceberg.RawNamespace, "retail_orders"))
	if err != nil {
		t.Fatal(err)
	}
	spec := tbl.Spec()
	var fields []ice.PartitionField
	for _, f := range spec.Fields() {
		fields = append(fields, f)
	}
	if len(fields) != 1 || fields[0].Name != "order_ts_day" || fields[0].Transform.String() != "day" {
		t.Fatalf("partition spec %v, want order_ts_day = day(order_ts)", spec)
	}
	src0, ok := tbl.Schema().FindFieldByID(fields[0].SourceID())
	if !ok || src0.Name != "order_ts" {
		t.Fatalf("partition source column %v, want order_ts", src0)
	}
	if err := iceberg.ValidateV2(strings.TrimPrefix(tbl.MetadataLocation(), "file://")); err != nil {
		t.Fatalf("metadata is not valid Iceberg v2: %v", err)
	}

	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	days := map[string]bool{}
	for _, task := range tasks {
		path := strings.TrimPrefix(task.File.FilePath(), "file://")
		v, ok := task.File.Partition()[fields[0].FieldID]
		if !ok {
			t.Fatalf("%s has no partition value", path)
		}
		var part string
		switch d := v.(type) {
		case ice.Date:
			part = time.Unix(int64(d)*86400, 0).UTC().Format("2006-01-02")
		case int32:
			part = time.Unix(int64(d)*86400, 0).UTC().Format("2006-01-02")
		default:
			t.Fatalf("%s: partition value %v (%T), want a date", path, v, v)
		}
		if want := "dt=" + part; filepath.Base(filepath.Dir(path)) != want {
			t.Errorf("%s: partition %s but directory %s", path, part, filepath.Base(filepath.Dir(path)))
		}
		var lo, hi string
		q := fmt.Sprintf(`SELECT strftime(min(timezone('UTC', order_ts)), '%%Y-%%m-%%d'), strftime(max(timezone('UTC', order_ts)), '%%Y-%%m-%%d') FROM read_parquet('%s')`, path)
		if err := db.QueryRow(q).Scan(&lo, &hi); err != nil {
			t.Fatal(err)
		}
		if lo != part || hi != part {
			t.Errorf("%s: partition %s holds rows of %s to %s", path, part, lo, hi)
		}
		days[part] = true
	}
	var want int
	q := fmt.Sprintf(`SELECT count(DISTINCT timezone('UTC', order_ts)::DATE) FROM read_parquet('%s/raw/retail/orders/*/*.parquet')`, wh)
	if err := db.QueryRow(q).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if len(days) != want || want < 300 {
		t.Fatalf("%d partitions, the raw rows have %d invoice days (Online Retail has 305)", len(days), want)
	}
	if days[today] {
		t.Fatal("a file is partitioned by the extract day")
	}
	st, err := extract.StateStore{Dir: wh}.Load("retail", "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Files) != len(tasks) {
		t.Fatalf("state lists %d files, the table %d", len(st.Files), len(tasks))
	}
}
