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

// reader streams one read's rows into Arrow records, one chunk per Next.
// (The runner calls Next from a goroutine of its own, one chunk ahead of its
// Parquet writer, so decoding and writing already overlap.)
type reader struct {
	src    *Source
	plan   *plan
	conn   *pgx.Conn
	rr     *pgconn.ResultReader
	cancel context.CancelFunc // aborts the query
	done   bool               // the last chunk was handed over
	err    error              // the read failed; Next keeps saying so
	closed bool

	rb              *array.RecordBuilder
	cols            []readCol
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
}

// readCol binds one result column to one record field.
type readCol struct {
	out    int // field in the record
	idx    int // column in the result
	binder binder
}

// newReader binds the plan's columns to Arrow builders and starts decoding
// the result rr, which the reader then owns together with conn.
func newReader(s *Source, p *plan, conn *pgx.Conn, rr *pgconn.ResultReader, cancel context.CancelFunc, resumed bool, batchRows int) *reader {
	r := &reader{
		src:            s,
		plan:           p,
		conn:           conn,
		rr:             rr,
		cancel:         cancel,
		resumed:        resumed,
		batchRows:      batchRows,
		checkpointRows: s.checkpointRows,
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
			continue
		}
		opts.required = o.required
		bd := bind(o.spec, r.rb.Field(i), opts)
		r.cols = append(r.cols, readCol{out: i, idx: idx, binder: bd})
		if bd.check != nil {
			r.fallible = append(r.fallible, len(r.cols)-1)
		}
		idx++
	}
	for _, oid := range p.byOIDs {
		r.byIdx = append(r.byIdx, idx)
		r.byText = append(r.byText, !cursorTextable(oid))
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
	if r.done {
		return extract.Chunk{}, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return extract.Chunk{}, err
	}
	// A cancelled context aborts a read blocked on the network.
	stop := context.AfterFunc(ctx, r.cancel)
	defer stop()
	ch, last, err := r.fill()
	switch {
	case err != nil:
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		r.err = err
		return extract.Chunk{}, err
	case last:
		r.done = true
		if ch.Rows == nil && ch.Rejects == nil && ch.Checkpoint == nil {
			return extract.Chunk{}, io.EOF
		}
	}
	return ch, nil
}

// fill reads one chunk; last is true when the result is complete.
func (r *reader) fill() (ch extract.Chunk, last bool, err error) {
	rows, bytes := 0, 0
	r.rb.Reserve(r.batchRows) // one allocation per column, not a doubling series
	for rows+len(ch.Rejects) < r.batchRows && bytes < maxChunkBytes && r.sinceCheckpoint < r.checkpointRows {
		if !r.rr.NextRow() {
			if _, err := r.rr.Close(); err != nil {
				r.releaseBuilders()
				return extract.Chunk{}, true, r.src.redact(fmt.Errorf("reading %s after %d rows: %w", r.plan.ent.what(), r.read, err))
			}
			last = true
			break
		}
		vals := r.rr.Values()
		r.read++
		r.sinceCheckpoint++
		for _, v := range vals {
			bytes += len(v)
		}
		for i, b := range r.byIdx {
			v := vals[b]
			r.lastNull[i] = v == nil
			r.last[i] = append(r.last[i][:0], v...)
		}
		if rej, bad := r.check(vals); bad {
			ch.Rejects = append(ch.Rejects, rej)
			continue
		}
		for i := range r.cols {
			c := &r.cols[i]
			c.binder.add(vals[c.idx])
		}
		rows++
	}
	if rows > 0 {
		for _, i := range r.nullCols {
			r.rb.Field(i).AppendNulls(rows)
		}
		ch.Rows = r.rb.NewRecordBatch()
	}
	switch {
	case last:
		ch.Checkpoint, err = r.finalCheckpoint()
		r.releaseBuilders()
	case r.sinceCheckpoint >= r.checkpointRows:
		ch.Checkpoint, err = r.checkpoint(false)
		r.sinceCheckpoint = 0
	}
	if err != nil {
		if ch.Rows != nil {
			ch.Rows.Release()
		}
		return extract.Chunk{}, true, err
	}
	return ch, last, nil
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
	r.releaseBuilders()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.src.redact(r.conn.Close(ctx))
}
