package extracttest

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/cdwhq/cdw/extract"
)

// smallSchema is the layout of the order files SmallOrderFiles writes.
var smallSchema = arrow.NewSchema([]arrow.Field{
	{Name: "order_id", Type: arrow.BinaryTypes.String},
	{Name: "line_no", Type: arrow.PrimitiveTypes.Int64},
	{Name: "customer_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "order_ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "quantity", Type: extract.DecimalArrow, Nullable: true},
	{Name: "updated_at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
}, nil)

// SmallOrderFiles commits files raw order files of rows rows each for
// source.orders in warehouse, the way per-page HTTP batches or CDC land
// them: one file per batch under dt=<event day> (days of 2024-06, ten
// batches a day), each a new order per row except every repeat-th file,
// whose rows are new versions (the same updated_at: the later file wins) of the previous
// file's orders. It returns the committed state.
func SmallOrderFiles(t testing.TB, warehouse, source string, files, rows, repeat int) *extract.EntityState {
	t.Helper()
	st := &extract.EntityState{Source: source, Entity: "orders"}
	base := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	at := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	order := 0
	for i := range files {
		day := base.AddDate(0, 0, i/10%28)
		b := array.NewRecordBuilder(memory.DefaultAllocator, smallSchema)
		again := repeat > 0 && i%repeat == repeat-1
		if again {
			order -= rows
		}
		for j := range rows {
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("o%07d", order))
			b.Field(1).(*array.Int64Builder).Append(int64(j % 3))
			if j%7 == 0 {
				b.Field(2).AppendNull()
			} else {
				b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("c%05d", order%5000))
			}
			ts := day.Add(time.Duration(j*37+i) * time.Second)
			b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
			b.Field(4).(*array.Decimal128Builder).Append(decimal128.FromI64(int64(order%9+1) * 10000))
			up := at // one updated_at for every version: the later file wins
			b.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(up.UnixMicro()))
			order++
		}
		rec := b.NewRecordBatch()
		b.Release()
		rel := fmt.Sprintf("raw/%s/orders/dt=%s/20240701T000000.%09dZ-%04d.parquet", source, day.Format("2006-01-02"), i, i%10000)
		p, err := extract.CreateParquet(filepath.Join(warehouse, filepath.FromSlash(rel)), smallSchema)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if err := p.Finish(); err != nil {
			t.Fatal(err)
		}
		st.Files = append(st.Files, extract.RawFile{Path: rel, Rows: int64(rows), At: at, Format: extract.RawFormat})
		st.Rows += int64(rows)
	}
	if err := (extract.StateStore{Dir: warehouse}).Commit(st); err != nil {
		t.Fatal(err)
	}
	return st
}
