package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdwhq/cdw/extract"
)

// maxChunkBytes ends a record early when its values add up to this much, so
// wide rows (large text, json, bytea) keep memory bounded too.
// It is kept small because the Parquet writer holds records of about three
// row groups (extract/parquet.go) besides the chunks in flight here: at
// 64 MiB the 40-column benchmark tickets table peaked at 768 MB RSS, at 8 MiB
// (with builders reserved for the rows that fit, chunkRows) at 494 MB; with
// the writer's columns encoded and released one at a time and 16 MiB row
// groups, at 200 MB.
const maxChunkBytes = 8 << 20

// valueOverhead is added to every value's length in a chunk's byte count:
// about what a fixed-width Arrow value costs beyond its wire bytes (an int4
// widened to 8 bytes, a numeric in 16, a NULL still taking its slot).
const valueOverhead = 8

// firstChunkRows is what builders reserve before any row's width is known.
const firstChunkRows = 4096

// rawLimit bounds the Raw text of a rejected row.
const rawLimit = 1000

// reader hands over the rows of one read: one or more spans of the By order
// (more when split.go splits a large table), each read by a worker on its own
// connection, all on one snapshot. A worker decodes rows into chunks on its
// own goroutine, one chunk ahead, so decoding overlaps with the runner's
// Parquet writing. Every chunk carries its span's progress, so whatever order
// the workers' chunks arrive in, Next knows the position of every row handed
// over so far and can checkpoint it.
type reader struct {
	src    *Source
	plan   *plan
	conns  []*pgx.Conn
	cancel context.CancelFunc // aborts the queries
	chunks chan decoded       // closed after the last chunk of every worker
	done   chan struct{}      // closed when every worker has returned
	err    error              // the read failed; Next keeps saying so
	eof    bool
	closed bool
	// start starts the workers, on the first Next: every connection holds
	// the read's snapshot by then, so nothing committed after Read returned
	// shows in any part.
	start func()

	// Owned by Next.
	spans           []span // progress of the rows handed over
	left            int    // spans not done
	resumed         bool   // the read continues after a committed position
	read            int64  // rows handed over, rejected ones included
	sinceCheckpoint int64
	checkpointRows  int64
	final           []byte // set: the checkpoint that ends the read (a cdc initial load's stream position)
}

// decoded is one chunk of one span, or the error that ended the read.
type decoded struct {
	chunk extract.Chunk
	span  int
	after []*string // By values of the span's last row in the chunk; nil without rows
	read  int64     // rows in the chunk, rejected ones included
	done  bool      // the span's last chunk
	err   error
}

// worker reads spans on one connection and decodes their rows.
type worker struct {
	r       *reader
	conn    *pgx.Conn
	cols    []readColumn
	formats []int16
	cutoff  []byte

	rb        *array.RecordBuilder
	builders  []array.Builder // the fields built by rb (not by their binders)
	binds     []readCol
	fallible  []int // indexes into binds of binders with a check
	nullCols  []int // record fields the source lacks
	byIdx     []int // result columns holding the By values
	byText    []bool
	last      [][]byte
	lastNull  []bool
	batchRows int

	rowBytes    int    // bytes per row of the last chunk, as counted in bytes
	span        int    // being read
	what        string // the span, for messages
	spanRead    int64  // rows of the span read so far, rejected ones included
	ch          extract.Chunk
	rows, bytes int
	chunkRead   int64
}

// readCol binds one result column to one record field.
type readCol struct {
	out    int // field in the record
	idx    int // column in the result
	binder binder
}

// newReader readies one worker per connection for the spans not done yet.
func newReader(ctx context.Context, s *Source, p *plan, conns []*pgx.Conn, spans []span, cutoff []byte, cancel context.CancelFunc, batchRows int) *reader {
	r := &reader{
		src:            s,
		plan:           p,
		conns:          conns,
		cancel:         cancel,
		chunks:         make(chan decoded, len(conns)),
		done:           make(chan struct{}),
		spans:          spans,
		left:           unfinished(spans),
		resumed:        resumed(spans),
		checkpointRows: s.checkpointRows,
	}
	if batchRows <= 0 {
		batchRows = 64 * 1024
	}
	if len(p.by) == 0 {
		r.checkpointRows = math.MaxInt64 // no order to resume in: one checkpoint at the end
	}
	queue := make(chan int, len(spans))
	for i, sp := range spans {
		if !sp.Done {
			queue <- i
		}
	}
	close(queue)
	bounds := slices.Clone(spans) // the workers' copy: Next updates spans
	r.start = func() {
		var wg sync.WaitGroup
		for _, conn := range conns {
			w := newWorker(r, conn, cutoff, batchRows)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer w.release()
				for i := range queue {
					if err := w.readSpan(ctx, i, bounds); err != nil {
						w.fail(ctx, err)
						return
					}
				}
			}()
		}
		go func() {
			wg.Wait()
			close(r.chunks)
			close(r.done)
		}()
	}
	return r
}

// newWorker binds the plan's columns (the query's, selectColumns) to Arrow
// builders of its own.
func newWorker(r *reader, conn *pgx.Conn, cutoff []byte, batchRows int) *worker {
	p := r.plan
	cols, byIdx, byText := p.selectColumns()
	w := &worker{
		r:         r,
		conn:      conn,
		cols:      cols,
		formats:   make([]int16, len(cols)),
		cutoff:    cutoff,
		rb:        array.NewRecordBuilder(memory.DefaultAllocator, p.schema),
		byIdx:     byIdx,
		byText:    byText,
		last:      make([][]byte, len(p.by)),
		lastNull:  make([]bool, len(p.by)),
		batchRows: batchRows,
	}
	for i, c := range cols {
		w.formats[i] = c.format
	}
	opts := bindOptions{validateUTF8: conn.PgConn().ParameterStatus("server_encoding") == "SQL_ASCII"}
	idx := 0
	for i, o := range p.outs {
		if o.src == nil {
			w.nullCols = append(w.nullCols, i)
			w.builders = append(w.builders, w.rb.Field(i))
			continue
		}
		opts.required = o.required
		bd := bind(o.spec, w.rb.Field(i), opts)
		if bd.array == nil {
			w.builders = append(w.builders, w.rb.Field(i))
		}
		w.binds = append(w.binds, readCol{out: i, idx: idx, binder: bd})
		if bd.check != nil {
			w.fallible = append(w.fallible, len(w.binds)-1)
		}
		idx++
	}
	return w
}

func (r *reader) Schema() *arrow.Schema { return r.plan.schema }

// Next hands over the next chunk: up to BatchRows rows of one span, fewer at
// a span's end or at maxChunkBytes. It checkpoints every checkpoint_rows
// rows and at the end.
func (r *reader) Next(ctx context.Context) (extract.Chunk, error) {
	if r.err != nil {
		return extract.Chunk{}, r.err
	}
	if r.eof {
		return extract.Chunk{}, io.EOF
	}
	if r.start != nil {
		r.start()
		r.start = nil
	}
	var d decoded
	select {
	case got, ok := <-r.chunks:
		if !ok {
			r.eof = true
			return extract.Chunk{}, io.EOF
		}
		d = got
	case <-ctx.Done():
		return extract.Chunk{}, ctx.Err()
	}
	if d.err != nil {
		if ctx.Err() != nil {
			d.err = ctx.Err()
		}
		r.err = d.err
		return extract.Chunk{}, d.err
	}
	if d.after != nil {
		r.spans[d.span].After = d.after
	}
	r.read += d.read
	r.sinceCheckpoint += d.read
	if d.done {
		r.spans[d.span].Done = true
		r.left--
	}
	switch {
	case r.left == 0:
		d.chunk.Checkpoint = r.finalCheckpoint()
	case r.sinceCheckpoint >= r.checkpointRows:
		d.chunk.Checkpoint = r.checkpoint()
		r.sinceCheckpoint = 0
	}
	return d.chunk, nil
}

// checkpoint is the position after the rows handed over: a plain one, or the
// progress of every span of a split read.
func (r *reader) checkpoint() []byte {
	p := r.position()
	if len(r.spans) == 1 {
		p.After = r.spans[0].After
	} else {
		p.Spans = slices.Clone(r.spans)
	}
	return p.encode()
}

// position is a checkpoint of this read with no progress yet.
func (r *reader) position() *position {
	return &position{V: positionVersion, Mode: r.plan.mode, By: r.plan.by, Columns: r.plan.columns, Horizon: r.plan.horizon, Changes: r.plan.changes}
}

// finalCheckpoint ends a read. An incremental read that found nothing leaves
// the committed position alone; a full read marks itself done, so the next
// one starts over; an incremental one ends where its last span does.
func (r *reader) finalCheckpoint() []byte {
	if r.final != nil {
		return r.final
	}
	p := r.position()
	switch {
	case r.read == 0 && !r.resumed:
		return nil
	case r.read == 0 && r.plan.mode == modeIncremental && !r.plan.commitEmpty:
		return nil
	case r.plan.mode == modeFull:
		p.Done = true
	default:
		p.After = r.spans[len(r.spans)-1].After
	}
	return p.encode()
}

// readSpan streams span i's rows into chunks.
func (w *worker) readSpan(ctx context.Context, i int, spans []span) error {
	p := w.r.plan
	w.span, w.spanRead, w.what = i, 0, p.ent.what()
	if len(spans) > 1 {
		w.what = fmt.Sprintf("%s (part %d of %d)", w.what, i+1, len(spans))
	}
	sql, args := p.selectSQL(w.cols, spans[i], w.cutoff)
	w.r.src.log.Debug("reading", "entity", p.ent.entity.Name, "from", w.what, "mode", p.mode, "sql", sql)
	start := time.Now()
	rr := w.conn.PgConn().ExecParams(ctx, sql, args, nil, nil, w.formats)
	if rr.FieldDescriptions() == nil {
		_, err := rr.Close()
		return w.r.src.redact(fmt.Errorf("querying %s: %w", w.what, err))
	}
	for rr.NextRow() {
		if err := w.addRow(ctx, rr.Values()); err != nil {
			rr.Close()
			return err
		}
	}
	if _, err := rr.Close(); err != nil {
		return w.r.src.redact(fmt.Errorf("reading %s after %d rows: %w", w.what, w.spanRead, err))
	}
	w.r.src.log.Debug("read", "entity", p.ent.entity.Name, "from", w.what, "rows", w.spanRead, "seconds", time.Since(start).Seconds())
	return w.emit(ctx, true)
}

// fail hands over err in place of further chunks.
func (w *worker) fail(ctx context.Context, err error) {
	if w.ch.Rows != nil {
		w.ch.Rows.Release()
		w.ch.Rows = nil
	}
	select {
	case w.r.chunks <- decoded{err: err}:
	case <-ctx.Done():
	}
}

// addRow decodes one row (vals are only valid during the call) and hands
// over the chunk when it is complete.
func (w *worker) addRow(ctx context.Context, vals [][]byte) error {
	if len(vals) != len(w.cols) {
		return fmt.Errorf("a row has %d columns, the query %d", len(vals), len(w.cols))
	}
	if w.rows == 0 && w.ch.Rejects == nil {
		for _, b := range w.builders {
			b.Reserve(w.chunkRows()) // one allocation per column, not a doubling series
		}
	}
	w.spanRead++
	w.chunkRead++
	w.bytes += valueOverhead * len(vals)
	for _, v := range vals {
		w.bytes += len(v)
	}
	for i, b := range w.byIdx {
		v := vals[b]
		w.lastNull[i] = v == nil
		w.last[i] = append(w.last[i][:0], v...)
	}
	if rej, bad := w.check(vals); bad {
		w.ch.Rejects = append(w.ch.Rejects, rej)
	} else {
		for i := range w.binds {
			c := &w.binds[i]
			c.binder.add(vals[c.idx])
		}
		w.rows++
	}
	// A chunk ends at checkpoint_rows too, so that a single worker's
	// checkpoints fall exactly every checkpoint_rows rows.
	if w.rows+len(w.ch.Rejects) >= w.batchRows || w.bytes >= maxChunkBytes || w.chunkRead >= w.r.checkpointRows {
		return w.emit(ctx, false)
	}
	return nil
}

// emit hands over the rows decoded so far with the span's progress; done
// marks the span's last chunk, which goes even without rows.
func (w *worker) emit(ctx context.Context, done bool) error {
	d := decoded{chunk: w.ch, span: w.span, read: w.chunkRead, done: done}
	if w.chunkRead > 0 && len(w.last) > 0 {
		d.after = make([]*string, len(w.last))
		for i := range w.last {
			t, err := w.lastText(i)
			if err != nil {
				return err
			}
			d.after[i] = t
		}
	}
	if w.rows > 0 {
		d.chunk.Rows = w.record()
	}
	if w.chunkRead > 0 {
		w.rowBytes = max(w.bytes/int(w.chunkRead), 1)
	}
	w.ch, w.rows, w.bytes, w.chunkRead = extract.Chunk{}, 0, 0, 0
	if d.read == 0 && !done {
		return nil
	}
	select {
	case w.r.chunks <- d:
		return nil
	case <-ctx.Done():
		if d.chunk.Rows != nil {
			d.chunk.Rows.Release()
		}
		return ctx.Err()
	}
}

// chunkRows is how many rows the next chunk is expected to hold: BatchRows,
// or fewer when rows as wide as the last chunk's fill maxChunkBytes first.
// Builders reserve that many, so a chunk cut short by its bytes does not
// carry the capacity of a full batch in every fixed-width column.
func (w *worker) chunkRows() int {
	if w.rowBytes == 0 {
		return min(w.batchRows, firstChunkRows)
	}
	return min(w.batchRows, maxChunkBytes/w.rowBytes+1)
}

// record takes the rows decoded so far out of the builders.
func (w *worker) record() arrow.RecordBatch {
	p := w.r.plan
	for _, i := range w.nullCols {
		w.rb.Field(i).AppendNulls(w.rows)
	}
	arrs := make([]arrow.Array, len(p.outs))
	for _, c := range w.binds {
		if c.binder.array != nil {
			arrs[c.out] = c.binder.array()
		}
	}
	for i, a := range arrs {
		if a == nil {
			arrs[i] = w.rb.Field(i).NewArray()
		}
	}
	rec := array.NewRecordBatch(p.schema, arrs, int64(w.rows))
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

func (w *worker) release() {
	if w.rb != nil {
		w.rb.Release()
		w.rb = nil
	}
}

// check runs the fallible binders over a row; on the first failure it
// describes the row for quarantine.
func (w *worker) check(vals [][]byte) (extract.Reject, bool) {
	for _, i := range w.fallible {
		c := &w.binds[i]
		err := c.binder.check(vals[c.idx])
		if err == nil {
			continue
		}
		o := w.r.plan.outs[c.out]
		reason := fmt.Sprintf("column %s: %v", o.name, err)
		switch {
		case o.parts != nil:
			reason = fmt.Sprintf("column %s: a part of the key (%s) is NULL, empty or contains U+001F", o.name, strings.Join(o.parts, ", "))
		case o.src.Name != o.name:
			reason = fmt.Sprintf("column %s (source column %s): %v", o.name, o.src.Name, err)
		}
		return extract.Reject{
			File:   w.what,
			Line:   w.spanRead,
			Reason: reason,
			Raw:    w.describeRow(o, vals[c.idx]),
		}, true
	}
	return extract.Reject{}, false
}

// describeRow renders the row's key values and the offending value.
func (w *worker) describeRow(bad outCol, v []byte) string {
	var sb strings.Builder
	for i, b := range w.r.plan.by {
		s := "NULL"
		if t, err := w.lastText(i); err != nil {
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
func (w *worker) lastText(i int) (*string, error) {
	if w.lastNull[i] {
		return nil, nil
	}
	if w.byText[i] {
		s := string(w.last[i])
		return &s, nil
	}
	s, err := cursorText(w.r.plan.byOIDs[i], w.last[i])
	if err != nil {
		return nil, fmt.Errorf("rendering %s of the last row for the checkpoint: %w", w.r.plan.by[i], err)
	}
	return &s, nil
}

// Close ends the read. A read cut short is aborted by closing its connection:
// draining the rest of a large result would take as long as reading it.
func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.cancel()
	if r.start == nil { // started
		<-r.done
		for d := range r.chunks {
			if d.chunk.Rows != nil {
				d.chunk.Rows.Release()
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, c := range r.conns {
		errs = append(errs, c.Close(ctx))
	}
	return r.src.redact(errors.Join(errs...))
}
