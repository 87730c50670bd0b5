package extract_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/cdwhq/cdw/extract"
)

// testSchema has every kind of column raw files hold: strings with NULLs,
// numbers, timestamps, a list, and a dictionary-encoded constant.
var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	{Name: "src", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, Nullable: true},
}, nil)

// testRecord builds rows [from, from+n) of a deterministic table.
func testRecord(from, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema)
	defer b.Release()
	for i := from; i < from+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if i%7 == 0 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("name %d", i%1000))
		}
		b.Field(2).(*array.Float64Builder).Append(float64(i) / 4)
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(int64(i) * 1_000_000))
		lb := b.Field(4).(*array.ListBuilder)
		lb.Append(true)
		for k := 0; k < i%3; k++ {
			lb.ValueBuilder().(*array.StringBuilder).Append(fmt.Sprintf("t%d", k))
		}
		if err := b.Field(5).(*array.BinaryDictionaryBuilder).AppendString("file.csv"); err != nil {
			panic(err)
		}
	}
	return b.NewRecordBatch()
}

// TestParquetRowGroupsInParallel writes records of awkward sizes across many
// row groups (encoded in parallel and assembled into one file) and checks the
// file row for row with DuckDB and with arrow-go's own reader.
func TestParquetRowGroupsInParallel(t *testing.T) {
	for _, total := range []int{0, 5, extract.RowGroupRows, 3*extract.RowGroupRows + 12_345} {
		t.Run(fmt.Sprint(total), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.parquet")
			pf, err := extract.CreateParquet(path, testSchema)
			if err != nil {
				t.Fatal(err)
			}
			for from, size := 0, 1; from < total; from, size = from+size, size*3+1 {
				rec := testRecord(from, min(size, total-from))
				if err := pf.Write(rec); err != nil {
					t.Fatal(err)
				}
				rec.Release()
			}
			if err := pf.Finish(); err != nil {
				t.Fatal(err)
			}
			if pf.Rows() != int64(total) {
				t.Fatalf("Rows() = %d, want %d", pf.Rows(), total)
			}

			db, err := sql.Open("duckdb", "")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n, nulls, ids, tags, badTS int64
			var amount float64
			var srcs string
			err = db.QueryRow(`SELECT count(*), count(*) FILTER (WHERE name IS NULL), coalesce(sum(id), 0), coalesce(sum(amount), 0),
				coalesce(sum(len(tags)), 0), count(*) FILTER (WHERE epoch_us(ts) <> id * 1000000), coalesce(string_agg(DISTINCT src), '')
				FROM read_parquet(?) WHERE name IS NULL OR name = 'name ' || (id % 1000)`, path).
				Scan(&n, &nulls, &ids, &amount, &tags, &badTS, &srcs)
			if err != nil {
				t.Fatal(err)
			}
			var wantIDs, wantTags, wantNulls int64
			var wantAmount float64
			for i := 0; i < total; i++ {
				wantIDs += int64(i)
				wantAmount += float64(i) / 4
				wantTags += int64(i % 3)
				if i%7 == 0 {
					wantNulls++
				}
			}
			wantSrc := ""
			if total > 0 {
				wantSrc = "file.csv"
			}
			if n != int64(total) || badTS != 0 || nulls != wantNulls || ids != wantIDs || amount != wantAmount || tags != wantTags || srcs != wantSrc {
				t.Fatalf("DuckDB reads %d rows (%d NULL names, %d wrong timestamps), ids %d, amount %v, tags %d, src %q; want %d (%d), %d, %v, %d, %q",
					n, nulls, badTS, ids, amount, tags, srcs, total, wantNulls, wantIDs, wantAmount, wantTags, wantSrc)
			}

			// arrow-go reads every row group back, with statistics that say
			// where each starts.
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			pr, err := file.NewParquetReader(f)
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			if want := (total + extract.RowGroupRows - 1) / extract.RowGroupRows; pr.NumRowGroups() != want {
				t.Fatalf("%d row groups, want %d", pr.NumRowGroups(), want)
			}
			fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: 10_000}, memory.DefaultAllocator)
			if err != nil {
				t.Fatal(err)
			}
			for rg := 0; rg < pr.NumRowGroups(); rg++ {
				cc, err := pr.MetaData().RowGroup(rg).ColumnChunk(0)
				if err != nil {
					t.Fatal(err)
				}
				st, err := cc.Statistics()
				if err != nil {
					t.Fatal(err)
				}
				if got := st.(*metadata.Int64Statistics).Min(); got != int64(rg*extract.RowGroupRows) {
					t.Fatalf("row group %d: min id %d, want %d", rg, got, rg*extract.RowGroupRows)
				}
			}
			tbl, err := fr.ReadTable(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer tbl.Release()
			if tbl.NumRows() != int64(total) {
				t.Fatalf("arrow-go reads %d rows, want %d", tbl.NumRows(), total)
			}
			row := 0
			for _, chunk := range tbl.Column(0).Data().Chunks() {
				ids := chunk.(*array.Int64)
				for i := 0; i < ids.Len(); i++ {
					if ids.Value(i) != int64(row) {
						t.Fatalf("row %d has id %d", row, ids.Value(i))
					}
					row++
				}
			}
		})
	}
}
