package extract

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/cdwhq/cdw/internal/durable"
)

// RowGroupRows matches DuckDB's own row group size, so DuckDB can read raw
// files in parallel by row group.
const RowGroupRows = 122_880

// ParquetFile writes Arrow records to a Parquet file (zstd) under a temporary
// name; Finish makes it durable under its final name. Until then a crash
// leaves only a temporary file, which the next run removes.
type ParquetFile struct {
	final string
	tmp   *os.File
	w     *pqarrow.FileWriter
	rows  int64
}

// CreateParquet starts a Parquet file that will be named path once finished.
func CreateParquet(path string, schema *arrow.Schema) (*ParquetFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), durable.DirPerm); err != nil {
		return nil, fmt.Errorf("creating directory for %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithMaxRowGroupLength(RowGroupRows),
		parquet.WithDictionaryDefault(true),
		parquet.WithStats(true),
	}
	// Dictionaries pay off for repetitive strings (status, category, ids);
	// for numbers and timestamps, hashing every value into one was a tenth
	// of an extract's CPU profile for little or no size gain under zstd.
	for _, f := range schema.Fields() {
		switch f.Type.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.FLOAT32, arrow.FLOAT64, arrow.TIMESTAMP, arrow.DECIMAL128:
			opts = append(opts, parquet.WithDictionaryFor(f.Name, false))
		}
	}
	props := parquet.NewWriterProperties(opts...)
	w, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("starting Parquet writer for %s: %w", path, err)
	}
	return &ParquetFile{final: path, tmp: f, w: w}, nil
}

// Write appends a record; rows are buffered into row groups of RowGroupRows.
func (p *ParquetFile) Write(rec arrow.RecordBatch) error {
	if err := p.w.WriteBuffered(rec); err != nil {
		return fmt.Errorf("writing Parquet %s: %w", p.final, err)
	}
	p.rows += rec.NumRows()
	return nil
}

// Rows returns how many rows were written so far.
func (p *ParquetFile) Rows() int64 { return p.rows }

// Path returns the final path.
func (p *ParquetFile) Path() string { return p.final }

// Finish flushes, fsyncs and renames the file into place.
func (p *ParquetFile) Finish() error {
	// The pqarrow writer closes the underlying file; sync it by name first.
	if err := p.w.Close(); err != nil {
		p.Abort()
		return fmt.Errorf("closing Parquet %s: %w", p.final, err)
	}
	if err := durable.SyncFile(p.tmp.Name()); err != nil {
		p.Abort()
		return err
	}
	if err := os.Chmod(p.tmp.Name(), durable.FilePerm); err != nil {
		p.Abort()
		return fmt.Errorf("setting permissions on %s: %w", p.final, err)
	}
	return durable.Rename(p.tmp.Name(), p.final)
}

// Abort removes the temporary file.
func (p *ParquetFile) Abort() {
	p.tmp.Close()
	os.Remove(p.tmp.Name())
}

// quarantineSchema is the layout of quarantine/<source>/<entity>/<batch>.parquet.
var quarantineSchema = arrow.NewSchema([]arrow.Field{
	{Name: "source", Type: arrow.BinaryTypes.String},
	{Name: "entity", Type: arrow.BinaryTypes.String},
	{Name: "file", Type: arrow.BinaryTypes.String},
	{Name: "line", Type: arrow.PrimitiveTypes.Int64},
	{Name: "reason", Type: arrow.BinaryTypes.String},
	{Name: "raw", Type: arrow.BinaryTypes.String},
}, nil)

func rejectsRecord(source, entity string, rs []Reject) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, quarantineSchema)
	defer b.Release()
	for _, r := range rs {
		b.Field(0).(*array.StringBuilder).Append(source)
		b.Field(1).(*array.StringBuilder).Append(entity)
		b.Field(2).(*array.StringBuilder).Append(r.File)
		b.Field(3).(*array.Int64Builder).Append(r.Line)
		b.Field(4).(*array.StringBuilder).Append(r.Reason)
		b.Field(5).(*array.StringBuilder).Append(r.Raw)
	}
	return b.NewRecordBatch()
}
