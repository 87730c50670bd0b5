package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdwhq/cdw/extract"
)

// maxChunkBytes ends a record early when its values add up to this much, so
// wide rows (large text, json, bytea) keep memory bounded too.
const maxChunkBytes = 64 << 20

// rawLimit bounds the Raw text of a rejected row.
const rawLimit = 1000

// reader streams one read's rows into Arrow records. A goroutine of its own
// receives the rows and decodes them into chunks, which Next hands over; one
// chunk waits while the next is decoded, so decoding overlaps with the
// runner's Parquet writing.
type reader struct {
	src    *Source
	plan   *plan
	conn   *pgx.Conn
	cancel context.CancelFunc // aborts the query
	chunks chan decoded       // closed after the last chunk or an error
	done   chan struct{}      // closed when the decoding goroutine has returned
	err    error              // the read failed; Next keeps saying so
	eof    bool
	closed bool

	// Decoding state, owned by the decoding goroutine.
	rb              *array.RecordBuilder
	builders        []array.Builder // the fields built by rb (not by their binders)
	cols            []readCol
	ncols           int    // columns of the query
	fallible        []int  // indexes into cols of binders with a check
	nullCols        []int  // record fields the source lacks
	byIdx           []int  // result columns holding the By values
	byText          []bool // ...in text format (else binary)
	last            [][]byte
	lastNull        []bool
	batchRows       int
	checkpointRows  int64
	sinceCheckpoint int64
	read            int64 // rows read, rejected ones included
	resumed         bool  // the read continues after a committed position
	ch              extract.Chunk
	rows, bytes     int
}

// decoded is one chunk, or the error that ended the read.
type decoded struct {
	chunk extract.Chunk
	err   error
}

// readCol binds one result column to one record field.
type readCol struct {
	out    int // field in the record
	idx    int // column in the result
	binder binder
}

// newReader binds the plan's columns (the query's, cols) to Arrow builders.
func newReader(s *Source, p *plan, conn *pgx.Conn, cols []readColumn, byIdx []int, byText []bool, cancel context.CancelFunc, resumed bool, batchRows int) *reader {
	r := &reader{
		src:            s,
		plan:           p,
		conn:           conn,
		cancel:         cancel,
		chunks:         make(chan decoded, 1),
		done:           make(chan struct{}),
		resumed:        resumed,
		batchRows:      batchRows,
		checkpointRows: s.checkpointRows,
		ncols:          len(cols),
		byIdx:          byIdx,
		byText:         byText,
	}
	if r.batchRows <= 0 {
		r.batchRows = 64 * 1024
	}
	if len(p.by) == 0 {
		r.checkpointRows = math.MaxInt64 // no order to resume in: one checkpoint at the end
	}
	r.rb = array.NewRecordBuilder(memory.DefaultAllocator, p.schema)
	opts := bindOptions{validateUTF8: conn.PgConn().ParameterStatus("server_encoding") == "SQL_ASCII"}
	idx := 0
	for i, o := range p.outs {
		if o.src == nil {
			r.nullCols = append(r.nullCols, i)
			r.builders = append(r.builders, r.rb.Field(i))
			continue
		}
		opts.required = o.required
		bd := bind(o.spec, r.rb.Field(i), opts)
		if bd.array == nil {
			r.builders = append(r.builders, r.rb.Field(i))
		}
		r.cols = append(r.cols, readCol{out: i, idx: idx, binder: bd})
		if bd.check != nil {
			r.fallible = append(r.fallible, len(r.cols)-1)
		}
		idx++
	}
	r.last = make([][]byte, len(p.by))
	r.lastNull = make([]bool, len(p.by))
	return r
}

func (r *reader) Schema() *arrow.Schema { return r.plan.schema }

// Next hands over the next chunk: up to BatchRows rows, fewer at a checkpoint
// (every checkpoint_rows rows) or at maxChunkBytes.
func (r *reader) Next(ctx context.Context) (extract.Chunk, error) {
	if r.err != nil {
		return extract.Chunk{}, r.err
	}
	if r.eof {
		return extract.Chunk{}, io.EOF
	}
	select {
	case d, ok := <-r.chunks:
		if !ok {
			r.eof = true
			return extract.Chunk{}, io.EOF
		}
		if d.err != nil {
			if ctx.Err() != nil {
				d.err = ctx.Err()
			}
			r.err = d.err
			return extract.Chunk{}, d.err
		}
		return d.chunk, nil
	case <-ctx.Done():
		return extract.Chunk{}, ctx.Err()
	}
}

// decodeSelect decodes the rows of the streaming query.
func (r *reader) decodeSelect(ctx context.Context, rr *pgconn.ResultReader) {
	defer r.decoded()
	for rr.NextRow() {
		if err := r.addRow(ctx, rr.Values()); err != nil {
			rr.Close()
			r.fail(ctx, err)
			return
		}
	}
	_, err := rr.Close()
	r.finish(ctx, err)
}

// decoded ends the decoding goroutine.
func (r *reader) decoded() {
	r.releaseBuilders()
	close(r.chunks)
	close(r.done)
}

// finish hands over the last chunk with the final checkpoint, or the error
// that ended the read.
func (r *reader) finish(ctx context.Context, err error) {
	if err != nil {
		r.fail(ctx, r.src.redact(fmt.Errorf("reading %s after %d rows: %w", r.plan.ent.what(), r.read, err)))
		return
	}
	cp, err := r.finalCheckpoint()
	if err != nil {
		r.fail(ctx, err)
		return
	}
	r.emit(ctx, cp)
}

// fail hands over err in place of further chunks.
func (r *reader) fail(ctx context.Context, err error) {
	if r.ch.Rows != nil {
		r.ch.Rows.Release()
		r.ch.Rows = nil
	}
	select {
	case r.chunks <- decoded{err: err}:
	case <-ctx.Done():
	}
}

// addRow decodes one row (vals are only valid during the call) and hands
// over the chunk when it is complete.
func (r *reader) addRow(ctx context.Context, vals [][]byte) error {
	if len(vals) != r.ncols {
		return fmt.Errorf("a row has %d columns, the query %d", len(vals), r.ncols)
	}
	if r.rows == 0 && r.ch.Rejects == nil {
		for _, b := range r.builders {
			b.Reserve(r.batchRows) // one allocation per column, not a doubling series
		}
	}
	r.read++
	r.sinceCheckpoint++
	for _, v := range vals {
		r.bytes += len(v)
	}
	for i, b := range r.byIdx {
		v := vals[b]
		r.lastNull[i] = v == nil
		r.last[i] = append(r.last[i][:0], v...)
	}
	if rej, bad := r.check(vals); bad {
		r.ch.Rejects = append(r.ch.Rejects, rej)
	} else {
		for i := range r.cols {
			c := &r.cols[i]
			c.binder.add(vals[c.idx])
		}
		r.rows++
	}
	switch {
	case r.sinceCheckpoint >= r.checkpointRows:
		cp, err := r.checkpoint(false)
		if err != nil {
			return err
		}
		r.sinceCheckpoint = 0
		return r.emit(ctx, cp)
	case r.rows+len(r.ch.Rejects) >= r.batchRows || r.bytes >= maxChunkBytes:
		return r.emit(ctx, nil)
	}
	return nil
}

// emit hands over the rows decoded so far, with a checkpoint if not nil.
func (r *reader) emit(ctx context.Context, cp []byte) error {
	ch := r.ch
	if r.rows > 0 {
		ch.Rows = r.record()
	}
	ch.Checkpoint = cp
	r.ch, r.rows, r.bytes = extract.Chunk{}, 0, 0
	if ch.Rows == nil && ch.Rejects == nil && ch.Checkpoint == nil {
		return nil
	}
	select {
	case r.chunks <- decoded{chunk: ch}:
		return nil
	case <-ctx.Done():
		if ch.Rows != nil {
			ch.Rows.Release()
		}
		return ctx.Err()
	}
}

// record takes the rows decoded so far out of the builders.
func (r *reader) record() arrow.RecordBatch {
	for _, i := range r.nullCols {
		r.rb.Field(i).AppendNulls(r.rows)
	}
	arrs := make([]arrow.Array, len(r.plan.outs))
	for _, c := range r.cols {
		if c.binder.array != nil {
			arrs[c.out] = c.binder.array()
		}
	}
	for i, a := range arrs {
		if a == nil {
			arrs[i] = r.rb.Field(i).NewArray()
		}
	}
	rec := array.NewRecordBatch(r.plan.schema, arrs, int64(r.rows))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

func (r *reader) releaseBuilders() {
	if r.rb != nil {
		r.rb.Release()
		r.rb = nil
	}
}

// check runs the fallible binders over a row; on the first failure it
// describes the row for quarantine.
func (r *reader) check(vals [][]byte) (extract.Reject, bool) {
	for _, i := range r.fallible {
		c := &r.cols[i]
		err := c.binder.check(vals[c.idx])
		if err == nil {
			continue
		}
		o := r.plan.outs[c.out]
		reason := fmt.Sprintf("column %s: %v", o.name, err)
		if o.src.Name != o.name {
			reason = fmt.Sprintf("column %s (source column %s): %v", o.name, o.src.Name, err)
		}
		return extract.Reject{
			File:   r.plan.ent.what(),
			Line:   r.read,
			Reason: reason,
			Raw:    r.describeRow(o, vals[c.idx]),
		}, true
	}
	return extract.Reject{}, false
}

// describeRow renders the row's key values and the offending value.
func (r *reader) describeRow(bad outCol, v []byte) string {
	var sb strings.Builder
	for i, b := range r.plan.by {
		s := "NULL"
		if t, err := r.lastText(i); err != nil {
			s = "?"
		} else if t != nil {
			s = *t
		}
		fmt.Fprintf(&sb, "%s=%s, ", b, s)
	}
	sb.WriteString(bad.src.Name)
	sb.WriteString("=")
	switch {
	case v == nil:
		sb.WriteString("NULL")
	case bad.spec.format() == pgtype.TextFormatCode:
		sb.Write(v)
	default:
		sb.WriteString("0x" + hex.EncodeToString(v))
	}
	s := sb.String()
	if len(s) > rawLimit {
		s = s[:rawLimit] + "…"
	}
	return s
}

// lastText is the i-th By value of the last row read, as PostgreSQL input text.
func (r *reader) lastText(i int) (*string, error) {
	if r.lastNull[i] {
		return nil, nil
	}
	if r.byText[i] {
		s := string(r.last[i])
		return &s, nil
	}
	s, err := cursorText(r.plan.byOIDs[i], r.last[i])
	if err != nil {
		return nil, fmt.Errorf("rendering %s of the last row for the checkpoint: %w", r.plan.by[i], err)
	}
	return &s, nil
}

// checkpoint is the position after the last row read.
func (r *reader) checkpoint(done bool) ([]byte, error) {
	p := &position{V: positionVersion, Mode: r.plan.mode, By: r.plan.by, Done: done, Columns: r.plan.columns}
	if !done {
		p.After = make([]*string, len(r.last))
		for i := range r.last {
			t, err := r.lastText(i)
			if err != nil {
				return nil, err
			}
			p.After[i] = t
		}
	}
	return p.encode(), nil
}

// finalCheckpoint ends a read. An incremental read that found nothing leaves
// the committed position alone; a full read marks itself done, so the next
// one starts over.
func (r *reader) finalCheckpoint() ([]byte, error) {
	switch {
	case r.read == 0 && (!r.resumed || r.plan.mode == modeIncremental):
		return nil, nil
	case r.plan.mode == modeFull:
		return r.checkpoint(true)
	}
	return r.checkpoint(false)
}

// Close ends the read. A read cut short is aborted by closing its connection:
// draining the rest of a large result would take as long as reading it.
func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.cancel()
	<-r.done
	for d := range r.chunks {
		if d.chunk.Rows != nil {
			d.chunk.Rows.Release()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.src.redact(r.conn.Close(ctx))
}
