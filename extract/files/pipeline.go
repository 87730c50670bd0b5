package files

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/cdwhq/cdw/extract"
)

// blockSize is how much CSV text one block holds: big enough that per-block
// costs vanish, small enough that every core gets blocks and that the blocks
// in flight stay a few tens of MB. Tests shrink it to put record boundaries
// everywhere.
var blockSize = 4 << 20

// A CSV file is read by a pipeline: one goroutine reads the text (through the
// hash, gzip and decoding, all of which are sequential) and cuts it into
// blocks at record boundaries; workers, one per core, parse and convert
// blocks into Arrow records; Next hands the results over in file order. Line
// numbers are exact because every block knows how many lines precede it.
// Memory is bounded: at most 2 blocks per worker are in flight.
type csvPipeline struct {
	cancel context.CancelFunc
	order  chan *block // blocks in file order, each with its result to come
	done   sync.WaitGroup
}

// block is a piece of the file that holds whole records.
type block struct {
	buf  []byte
	mem  []byte // the buffer buf is in, for reuse
	line int64  // lines of the file before buf
	res  chan blockResult
}

type blockResult struct {
	recs    []arrow.RecordBatch // of at most batchRows rows each
	rejects []extract.Reject
	rows    int64
	headers int64 // repeated header rows skipped
	rounded int64 // rows with a number rounded to 4 decimal places
	roundEx string
	err     error
}

// sameRecord reports whether a record equals the header.
func sameRecord(fields, header [][]byte) bool {
	if len(fields) != len(header) {
		return false
	}
	for i := range fields {
		if !bytes.Equal(fields[i], header[i]) {
			return false
		}
	}
	return true
}

func newBlock(mem, buf []byte, line int64) *block {
	return &block{buf: buf, mem: mem, line: line, res: make(chan blockResult, 1)}
}

// startPipeline reads the rest of of's CSV text from sp; first, if not nil, is
// a block already cut (the one that held the header).
func (r *reader) startPipeline(of *openFile, sp *splitter, first *block) {
	ctx, cancel := context.WithCancel(context.Background())
	workers := runtime.GOMAXPROCS(0)
	pl := &csvPipeline{cancel: cancel, order: make(chan *block, 2*workers)}
	work := make(chan *block)
	sp.free = make(chan []byte, 3*workers+2)
	pl.done.Add(1 + workers)
	go func() {
		defer pl.done.Done()
		defer close(work)
		defer close(pl.order)
		send := func(b *block) bool {
			select {
			case pl.order <- b:
			case <-ctx.Done():
				return false
			}
			select {
			case work <- b:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if first != nil && !send(first) {
			return
		}
		for {
			b, err := sp.next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				b = newBlock(nil, nil, sp.line)
				b.res <- blockResult{err: err}
				select {
				case pl.order <- b:
				case <-ctx.Done():
				}
				return
			}
			if !send(b) {
				return
			}
		}
	}()
	for range workers {
		go func() {
			defer pl.done.Done()
			rb := r.plan.rowsBuilder(r.schema)
			for b := range work {
				b.res <- r.parseBlock(ctx, of, b, rb)
				if cap(b.mem) == sp.size {
					select {
					case sp.free <- b.mem[:0]:
					default:
					}
				}
			}
		}()
	}
	of.pipe = pl
}

// next returns the next block's result in file order; ok is false at the end
// of the file.
func (pl *csvPipeline) next(ctx context.Context) (res blockResult, ok bool, err error) {
	var b *block
	select {
	case b, ok = <-pl.order:
		if !ok {
			return blockResult{}, false, nil
		}
	case <-ctx.Done():
		return blockResult{}, false, ctx.Err()
	}
	select {
	case res = <-b.res:
		return res, true, nil
	case <-ctx.Done():
		return blockResult{}, false, ctx.Err()
	}
}

// stop ends the goroutines and releases results nobody will take.
func (pl *csvPipeline) stop() {
	pl.cancel()
	pl.done.Wait()
	for b := range pl.order {
		select {
		case res := <-b.res:
			res.release()
		default:
		}
	}
}

func (res *blockResult) release() {
	for _, rec := range res.recs {
		rec.Release()
	}
	res.recs = nil
}

// parseBlock parses and converts one block.
func (r *reader) parseBlock(ctx context.Context, of *openFile, b *block, rb *rowsBuilder) blockResult {
	var res blockResult
	// Valid as a whole means valid field by field: fields are cut at ASCII
	// delimiters, quotes and line breaks, or at a delimiter rune.
	utf8OK := utf8.Valid(b.buf)
	lines := bytes.Count(b.buf, []byte{'\n'}) + 1
	rb.reserve(min(lines, r.batchRows))
	p := newCSVParser(b.buf, b.line, of.comma)
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			break
		}
		fields, line, err, ok := p.next()
		if !ok {
			break
		}
		if err != nil {
			res.rejects = append(res.rejects, extract.Reject{File: of.path, Line: line, Reason: err.Error()})
			continue
		}
		if of.header != nil && sameRecord(fields, of.header) {
			res.headers++ // exports concatenated from several files repeat the header
			continue
		}
		if reason := r.plan.convert(of, fields, line, rb, utf8OK); reason != "" {
			res.rejects = append(res.rejects, extract.Reject{File: of.path, Line: line, Reason: reason, Raw: rawLine(fields, r.plan.delim)})
			continue
		}
		res.rows++
		if rb.n == r.batchRows || rb.full() {
			res.recs = append(res.recs, rb.record(of.fileName))
			rb.reserve(min(lines-int(p.line-b.line), r.batchRows))
		}
	}
	if rec := rb.record(of.fileName); rec != nil {
		res.recs = append(res.recs, rec)
	}
	res.rounded, res.roundEx = rb.takeRounded()
	return res
}

// splitter cuts a text stream into blocks that end at record boundaries.
type splitter struct {
	r     io.Reader
	comma []byte
	size  int
	line  int64  // lines before the next block
	carry []byte // text read past the last cut
	eof   bool
	free  chan []byte // buffers of size bytes to reuse
}

func newSplitter(r io.Reader, comma []byte, line int64) *splitter {
	return &splitter{r: r, comma: comma, size: blockSize, line: line}
}

// next returns the next block, or io.EOF after the last.
func (s *splitter) next() (*block, error) {
	if s.eof && len(s.carry) == 0 {
		return nil, io.EOF
	}
	var buf []byte
	select {
	case buf = <-s.free:
	default:
		buf = make([]byte, 0, s.size)
	}
	buf = append(buf, s.carry...)
	for {
		for !s.eof && len(buf) < cap(buf) {
			n, err := s.r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if errors.Is(err, io.EOF) {
				s.eof = true
			} else if err != nil {
				return nil, err
			}
		}
		cut := cutRecords(buf, s.eof, s.comma)
		if cut > 0 || s.eof {
			s.carry = append(s.carry[:0], buf[cut:]...)
			if cut == 0 {
				return nil, io.EOF
			}
			b := newBlock(buf, buf[:cut], s.line)
			s.line += int64(bytes.Count(b.buf, []byte{'\n'}))
			return b, nil
		}
		// A record longer than the buffer (a long line, or a quoted field
		// that runs on): read on, as encoding/csv would.
		buf = slices.Grow(buf, cap(buf))
	}
}

// fileNameType is the type of _source_file: a dictionary, so that the
// column, one value repeated on every row, costs nothing to build or write.
var fileNameType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// newFileName returns the dictionary values of _source_file for one file.
func newFileName(path string) arrow.Array {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.Append(path)
	return b.NewArray()
}
