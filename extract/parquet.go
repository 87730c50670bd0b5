package extract

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/cdwhq/cdw/internal/durable"
)

// RowGroupRows matches DuckDB's own row group size, so DuckDB can read raw
// files in parallel by row group.
const RowGroupRows = 122_880

// rowGroupBytes ends a row group early when its rows hold this much Arrow
// data, so that wide rows (long text, JSON) keep memory bounded: every
// encoder holds one row group, and one more is filled meanwhile. At 32 MiB
// the benchmark's 955k-row, 40-column tickets extract peaked at 250 MB RSS,
// at 16 MiB at 200 MB, for the same CPU time (BENCHMARKS.md).
const rowGroupBytes = 16 << 20

// ParquetFile writes Arrow records to a Parquet file (snappy) under a temporary
// name; Finish makes it durable under its final name. Until then a crash
// leaves only a temporary file, which the next run removes.
//
// Encoding is most of an extract's CPU (compression above all), so row
// groups are encoded in parallel, one per core: each is encoded on its own as
// a complete one-row-group Parquet file in memory, and the file is assembled
// in order from their column chunks, with one footer listing them all (the
// chunks' offsets moved to where they land). Write only queues a row group;
// Finish waits for all. At most one row group per encoder plus the one being
// filled are in memory, each at most RowGroupRows rows and about
// rowGroupBytes.
type ParquetFile struct {
	final  string
	tmp    *os.File
	out    *bufio.Writer
	schema *arrow.Schema
	props  *parquet.WriterProperties
	rows   int64

	pending      []arrow.RecordBatch // rows of the next row group
	pendingRows  int64
	pendingBytes int64
	queue        []*rowGroupJob // encoding or encoded, in file order
	jobs         chan *rowGroupJob
	encoders     sync.WaitGroup
	offset       int64 // bytes written to the file so far
	meta         *metadata.FileMetaData
	err          error
}

// rowGroupJob is one row group on its way into the file.
type rowGroupJob struct {
	recs []arrow.RecordBatch
	done chan struct{}
	buf  *bytes.Buffer // the encoded file, back to encodeBuffers once appended
	data []byte        // its column chunks, as encoded at offset 4
	meta *metadata.FileMetaData
	err  error
}

// encodeBuffers keeps the buffers row groups are encoded into: growing a
// fresh one to a row group's size costs more than encoding a column.
var encodeBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// parquetMagic starts and ends every Parquet file.
var parquetMagic = []byte("PAR1")

// CreateParquet starts a Parquet file that will be named path once finished.
func CreateParquet(path string, schema *arrow.Schema) (*ParquetFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), durable.DirPerm); err != nil {
		return nil, fmt.Errorf("creating directory for %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	p := &ParquetFile{final: path, tmp: f, out: bufio.NewWriterSize(f, 1<<20), schema: schema, props: writerProperties(schema)}
	if _, err := p.out.Write(parquetMagic); err != nil {
		p.Abort()
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	p.offset = int64(len(parquetMagic))
	return p, nil
}

// writerProperties are the Parquet settings of raw and quarantine files.
//
// Raw files are read once more, by staging, so they are written for speed
// (profiles of 1M-line extracts; sizes of the orders CSV's raw file):
//   - snappy, as DuckDB writes by default: zstd, even at its fastest level,
//     was a third of an extract's CPU, and the CPU of the extract is what its
//     speed comes down to on two cores (snappy 8.3 CPU-s for 10M order lines,
//     zstd-1 9.4, DuckDB's own CSV to Parquet 8.2); files are 45 % larger
//     than with zstd-1 (37.3 against 25.7 MB per million order lines). The
//     encoder is s2's standard snappy mode, not arrow-go's slower "better"
//     mode (snappy.go);
//   - no dictionaries for plain string columns: arrow-go hashes every value
//     into the dictionary (boxing each one), which was the largest item of the
//     writer's profile, and zstd finds the same repetition. Columns the source
//     hands over dictionary-encoded (a constant such as _source_file) are
//     written as they are, without hashing;
//   - no min/max statistics on strings (a comparison per value); numbers and
//     timestamps keep theirs, which lets DuckDB skip row groups;
//   - integers and timestamps DELTA_BINARY_PACKED and not compressed: deltas
//     are smaller than compression would make the plain values (5.9 against
//     6.6 MB for a million timestamps), for a fraction of the CPU;
//   - decimals of precision up to 18 (money, DECIMAL(18,4)) as 64-bit
//     integers, as DuckDB writes them, not 16-byte fixed-length arrays.
//
// Before all this: zstd at its default level with dictionaries, 26.3 MB per
// million order lines; DuckDB writes the same CSV in 31.7 MB.
func writerProperties(schema *arrow.Schema) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(RowGroupRows),
		parquet.WithDictionaryDefault(false),
		parquet.WithStats(true),
		parquet.WithStoreDecimalAsInteger(true),
	}
	for _, f := range schema.Fields() {
		switch f.Type.ID() {
		case arrow.INT32, arrow.INT64, arrow.TIMESTAMP, arrow.DATE32:
			opts = append(opts, parquet.WithEncodingFor(f.Name, parquet.Encodings.DeltaBinaryPacked),
				parquet.WithCompressionFor(f.Name, compress.Codecs.Uncompressed))
		case arrow.DICTIONARY:
			opts = append(opts, parquet.WithDictionaryFor(f.Name, true), parquet.WithStatsFor(f.Name, false))
		case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
			opts = append(opts, parquet.WithStatsFor(f.Name, false))
		}
	}
	return parquet.NewWriterProperties(opts...)
}

// Write appends a record; rows are cut into row groups of RowGroupRows,
// which are encoded in the background. An encoding error is reported by a
// later Write or by Finish.
func (p *ParquetFile) Write(rec arrow.RecordBatch) error {
	if p.err != nil {
		return p.err
	}
	if !rec.Schema().Equal(p.schema) {
		return fmt.Errorf("writing Parquet %s: record schema %s does not match %s", p.final, rec.Schema(), p.schema)
	}
	rows := rec.NumRows()
	p.rows += rows
	if rows == 0 {
		return nil
	}
	rowBytes := max(recordBytes(rec)/rows, 1)
	for off := int64(0); off < rows; {
		n := min(rows-off, RowGroupRows-p.pendingRows, max((rowGroupBytes-p.pendingBytes)/rowBytes, 1))
		if off == 0 && n == rows {
			rec.Retain()
			p.pending = append(p.pending, rec)
		} else {
			p.pending = append(p.pending, rec.NewSlice(off, off+n))
		}
		p.pendingRows += n
		p.pendingBytes += n * rowBytes
		off += n
		if p.pendingRows == RowGroupRows || p.pendingBytes >= rowGroupBytes {
			if err := p.submit(); err != nil {
				return err
			}
		}
	}
	return nil
}

// recordBytes is the size of a record's buffers.
func recordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	var add func(d arrow.ArrayData)
	add = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			add(c)
		}
		if d.DataType().ID() == arrow.DICTIONARY {
			add(d.Dictionary())
		}
	}
	for _, c := range rec.Columns() {
		add(c.Data())
	}
	return n
}

// submit queues the pending rows as a row group, writing out the encoded row
// groups ahead of it; it waits for the oldest when all encoders are busy.
func (p *ParquetFile) submit() error {
	if p.jobs == nil {
		p.startEncoders()
	}
	if err := p.drain(cap(p.jobs) - 1); err != nil {
		return err
	}
	j := &rowGroupJob{recs: p.pending, done: make(chan struct{})}
	p.pending, p.pendingRows, p.pendingBytes = nil, 0, 0
	p.queue = append(p.queue, j)
	p.jobs <- j
	return nil
}

// drain appends encoded row groups to the file in order until at most keep
// remain queued; it waits for those it must take.
func (p *ParquetFile) drain(keep int) error {
	for len(p.queue) > 0 {
		j := p.queue[0]
		if len(p.queue) <= keep {
			select {
			case <-j.done:
			default:
				return nil
			}
		}
		<-j.done
		p.queue = p.queue[1:]
		if err := p.append(j); err != nil {
			p.err = fmt.Errorf("writing Parquet %s: %w", p.final, err)
			return p.err
		}
	}
	return nil
}

func (p *ParquetFile) startEncoders() {
	n := runtime.GOMAXPROCS(0)
	p.jobs = make(chan *rowGroupJob, n)
	p.encoders.Add(n)
	for range n {
		go func() {
			defer p.encoders.Done()
			for j := range p.jobs {
				j.buf = encodeBuffers.Get().(*bytes.Buffer)
				j.data, j.meta, j.err = encodeRowGroup(j.buf, p.schema, p.props, j.recs) // releases j.recs
				j.recs = nil
				close(j.done)
			}
		}()
	}
}

// stopEncoders lets the encoders finish what they hold and waits for them.
func (p *ParquetFile) stopEncoders() {
	if p.jobs != nil {
		close(p.jobs)
		p.encoders.Wait()
		p.jobs = nil
	}
}

// encodeRowGroup encodes recs as a complete Parquet file with one row group
// (none for no records) and returns its column chunks and footer. It takes
// over recs: each column's arrays are released as soon as the column is
// encoded. Columns are written one after the other (a serial row group), so
// each column's pages go to buf as they fill instead of the whole row group
// being held encoded in the column writers first: a row group costs its
// Arrow data, shrinking as columns are done, plus its encoded bytes, once.
func encodeRowGroup(buf *bytes.Buffer, schema *arrow.Schema, props *parquet.WriterProperties, recs []arrow.RecordBatch) ([]byte, *metadata.FileMetaData, error) {
	buf.Reset()
	cols := make([][]arrow.Array, schema.NumFields())
	var rows int64
	for _, r := range recs {
		for i := range cols {
			a := r.Column(i)
			a.Retain()
			cols[i] = append(cols[i], a)
		}
		rows += r.NumRows()
		r.Release()
	}
	defer func() {
		for _, c := range cols {
			for _, a := range c {
				a.Release()
			}
		}
	}()
	w, err := pqarrow.NewFileWriter(schema, buf, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, nil, err
	}
	if len(recs) > 0 {
		if err := w.NewRowGroupChecked(); err != nil {
			w.Close()
			return nil, nil, err
		}
		for i, f := range schema.Fields() {
			chunked := arrow.NewChunked(f.Type, cols[i])
			err := w.WriteColumnChunked(chunked, 0, rows)
			chunked.Release()
			for _, a := range cols[i] {
				a.Release()
			}
			cols[i] = nil
			if err != nil {
				w.Close()
				return nil, nil, err
			}
		}
	}
	if err := w.Close(); err != nil {
		return nil, nil, err
	}
	meta, err := w.FileMetadata()
	if err != nil {
		return nil, nil, err
	}
	b := buf.Bytes()
	if len(b) < 12 || !bytes.Equal(b[len(b)-4:], parquetMagic) {
		return nil, nil, errors.New("encoded row group is not a Parquet file")
	}
	footer := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	end := len(b) - 8 - footer
	if end < len(parquetMagic) {
		return nil, nil, errors.New("encoded row group has a bad footer length")
	}
	return b[len(parquetMagic):end], meta, nil
}

// append writes an encoded row group at the end of the file and adds it to
// the footer, its offsets moved from where they were encoded (right after
// the leading magic) to where its chunks now start.
func (p *ParquetFile) append(j *rowGroupJob) error {
	defer j.release()
	if j.err != nil {
		return j.err
	}
	shift := p.offset - int64(len(parquetMagic))
	for _, rg := range j.meta.RowGroups {
		if rg.FileOffset != nil {
			*rg.FileOffset += shift
		}
		if p.meta != nil && len(p.meta.RowGroups) < 1<<15 {
			ord := int16(len(p.meta.RowGroups))
			rg.Ordinal = &ord
		}
		for _, cc := range rg.Columns {
			if cc.FileOffset != 0 {
				cc.FileOffset += shift
			}
			if cc.OffsetIndexOffset != nil || cc.ColumnIndexOffset != nil || cc.MetaData == nil || cc.MetaData.BloomFilterOffset != nil {
				return errors.New("row group has page indexes or bloom filters, which cannot be moved")
			}
			md := cc.MetaData
			md.DataPageOffset += shift
			if md.DictionaryPageOffset != nil {
				*md.DictionaryPageOffset += shift
			}
			if md.IndexPageOffset != nil {
				*md.IndexPageOffset += shift
			}
		}
	}
	if _, err := p.out.Write(j.data); err != nil {
		return err
	}
	p.offset += int64(len(j.data))
	if p.meta == nil {
		p.meta = j.meta
		return nil
	}
	return p.meta.AppendRowGroups(j.meta)
}

func (j *rowGroupJob) release() {
	if j.buf != nil {
		encodeBuffers.Put(j.buf)
		j.buf, j.data = nil, nil
	}
}

// Rows returns how many rows were written so far.
func (p *ParquetFile) Rows() int64 { return p.rows }

// Path returns the final path.
func (p *ParquetFile) Path() string { return p.final }

// Finish writes the rest and the footer, fsyncs and renames the file into
// place.
func (p *ParquetFile) Finish() error {
	if err := p.finish(); err != nil {
		p.Abort()
		return fmt.Errorf("writing Parquet %s: %w", p.final, err)
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

func (p *ParquetFile) finish() error {
	if p.err != nil {
		return p.err
	}
	// The last row group, or an empty file's footer.
	if p.pendingRows > 0 || p.meta == nil && len(p.queue) == 0 {
		if err := p.submit(); err != nil {
			return err
		}
	}
	if err := p.drain(0); err != nil {
		return err
	}
	p.stopEncoders()
	n, err := p.meta.WriteTo(p.out, nil)
	if err != nil {
		return err
	}
	var tail [8]byte
	binary.LittleEndian.PutUint32(tail[:4], uint32(n))
	copy(tail[4:], parquetMagic)
	if _, err := p.out.Write(tail[:]); err != nil {
		return err
	}
	if err := p.out.Flush(); err != nil {
		return err
	}
	return p.tmp.Close()
}

// Abort stops encoding and removes the temporary file.
func (p *ParquetFile) Abort() {
	p.stopEncoders()
	for _, j := range p.queue {
		<-j.done
		j.release()
	}
	p.queue = nil
	for _, r := range p.pending {
		r.Release()
	}
	p.pending = nil
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
