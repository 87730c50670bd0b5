package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/cdwhq/cdw/extract"
)

var _ extract.Reader = (*reader)(nil)

// reader walks one entity's pages. Each page becomes one or more chunks; the
// last chunk of a page carries the checkpoint that resumes at the next page,
// and the last page's checkpoint ends the run (pagination reset, new high
// water for the next run's updated_since).
type reader struct {
	src   *Source
	e     *entitySpec
	cp    checkpoint // the run's state; Next is filled in when a checkpoint is emitted
	pos   position   // the page to fetch next
	seen  map[uint64]bool
	batch int

	m       *mapper // e.mapper, or this read's own for a raw table
	rb      *rowBuilder
	vals    []value
	pending []extract.Chunk
	pages   int // pages since the last checkpoint
	done    bool
}

func (s *Source) newReader(req extract.ReadRequest) (*reader, error) {
	e, err := s.spec.entity(req.Entity.Name)
	if err != nil {
		return nil, err
	}
	cp, err := decodeCheckpoint(req.Cursor)
	if err != nil {
		return nil, err
	}
	r := &reader{src: s, e: e, cp: cp, seen: map[uint64]bool{}, batch: req.BatchRows}
	if r.batch <= 0 {
		r.batch = 64 * 1024
	}
	switch {
	case cp.Next != nil && cp.Next.Type == e.pag.typ:
		r.pos = *cp.Next
		s.client.log().Info("resuming interrupted read", "source", s.name, "entity", e.name, "page", r.pos.Page)
	case cp.Next != nil:
		// The pagination changed under a run in progress; its positions mean
		// nothing now. Start the run over, keeping its updated_since.
		s.client.log().Warn("pagination type changed during an unfinished run; restarting it from the first page",
			"source", s.name, "entity", e.name, "was", cp.Next.Type, "now", e.pag.typ)
		r.pos = e.pag.first()
	default:
		r.pos = e.pag.first()
		r.cp.Since, r.cp.Started = nil, nil
		if e.inc != nil && cp.HighWater != nil {
			since := cp.HighWater.Add(-e.inc.overlap)
			r.cp.Since = &since
		}
	}
	r.cp.Next = nil
	if e.inc == nil {
		r.cp.Since, r.cp.HighWater, r.cp.Started = nil, nil, nil
	}
	if r.pos.Token != "" {
		markSeen(r.seen, "token:"+r.pos.Token)
	}
	r.m = e.mapper
	if e.mapper.raw {
		r.m = newRawMapper()
	}
	r.rb = newRowBuilder(r.m, memory.DefaultAllocator)
	r.vals = make([]value, len(r.m.cols))
	return r, nil
}

// Schema is the entity's canonical schema plus pass-through columns (a raw
// table's: the columns seen so far).
func (r *reader) Schema() *arrow.Schema { return r.m.schema }

// Next fetches the next page and returns its rows; io.EOF after the last.
func (r *reader) Next(ctx context.Context) (extract.Chunk, error) {
	if len(r.pending) == 0 {
		if r.done {
			return extract.Chunk{}, io.EOF
		}
		if err := r.page(ctx); err != nil {
			return extract.Chunk{}, err
		}
	}
	ch := r.pending[0]
	r.pending = r.pending[1:]
	return ch, nil
}

// page fetches, maps and queues the page at r.pos.
func (r *reader) page(ctx context.Context) error {
	s, e := r.src, r.e
	what := fmt.Sprintf("%s page %d", e.name, r.pos.Page)
	u, err := s.spec.requestURL(e, r.pos, r.cp.Since)
	if err != nil {
		return fmt.Errorf("building the URL of %s: %w", what, err)
	}
	shown := s.spec.redact.URL(u)
	resp := s.takePrefetch(e.name, u.String())
	if resp == nil {
		if resp, err = s.client.get(ctx, u, what, 0); err != nil {
			return err
		}
	}
	if e.inc != nil && r.cp.Started == nil {
		t := resp.date
		if t.IsZero() {
			t = time.Now().UTC()
		}
		r.cp.Started = &t
	}
	records, err := pageRecords(resp.doc, e.records)
	if err != nil {
		return s.spec.redact.Error(fmt.Errorf("reading %s (GET %s): %w", what, shown, err))
	}

	var chunks []extract.Chunk
	var rejects []extract.Reject
	if r.m.raw && r.m.infer(records) {
		// rows of the old schema go first; a new builder for the new one
		if rec := r.rb.flush(); rec != nil {
			chunks = append(chunks, extract.Chunk{Rows: rec})
		}
		r.rb.release()
		r.rb = newRowBuilder(r.m, memory.DefaultAllocator)
		r.vals = make([]value, len(r.m.cols))
	}
	for i, rec := range records {
		if err := r.m.mapRecord(rec, r.vals); err != nil {
			rejects = append(rejects, extract.Reject{File: shown, Line: int64(i + 1),
				Reason: s.spec.redact.Text(err.Error()), Raw: s.spec.redact.Text(rawText(rec))})
			continue
		}
		if e.inc != nil {
			if v := r.vals[e.inc.column]; !v.null && (r.cp.HighWater == nil || v.t.After(*r.cp.HighWater)) {
				t := v.t
				r.cp.HighWater = &t
			}
		}
		r.rb.append(r.vals)
		if r.rb.rows >= r.batch {
			chunks = append(chunks, extract.Chunk{Rows: r.rb.flush()})
		}
	}
	if rec := r.rb.flush(); rec != nil || len(chunks) == 0 {
		chunks = append(chunks, extract.Chunk{Rows: rec})
	}
	hash := ""
	if len(records) > 0 {
		hash = recordsHash(records)
	}
	next, last, err := s.spec.advance(e, r.pos, resp, len(records), hash, r.seen)
	if err != nil {
		for _, c := range chunks {
			if c.Rows != nil {
				c.Rows.Release()
			}
		}
		return s.spec.redact.Error(fmt.Errorf("reading %s (GET %s): %w", what, shown, err))
	}
	s.client.log().Debug("fetched page", "source", s.name, "entity", e.name, "page", r.pos.Page,
		"url", shown, "records", len(records), "rejected", len(rejects), "last", last)

	tail := &chunks[len(chunks)-1]
	tail.Rejects = rejects
	r.pages++
	switch {
	case last:
		tail.Checkpoint = r.finalCheckpoint()
		r.done = true
		if m := r.m; m.rounded > 0 {
			s.client.log().Warn("numbers with more than 4 decimal places rounded to 4", "source", s.name, "entity", e.name,
				"records", m.rounded, "first", s.spec.redact.Text(m.roundedEx))
			m.rounded, m.roundedEx = 0, ""
		}
	default:
		r.pos = next
		if r.pages >= e.checkpointN {
			cp := r.cp
			cp.Next = &next
			tail.Checkpoint = cp.encode()
			r.pages = 0
		}
	}
	r.pending = append(r.pending, chunks...)
	return nil
}

// finalCheckpoint ends a run: no position, and the high water that the next
// run's updated_since is derived from. It never passes the run's start, so a
// row changed while this run paged past its position is fetched next time.
func (r *reader) finalCheckpoint() json.RawMessage {
	cp := checkpoint{V: cursorVersion, HighWater: r.cp.HighWater}
	if cp.HighWater != nil && r.cp.Started != nil && cp.HighWater.After(*r.cp.Started) {
		cp.HighWater = r.cp.Started
	}
	return cp.encode()
}

// Close releases buffered rows.
func (r *reader) Close() error {
	for _, c := range r.pending {
		if c.Rows != nil {
			c.Rows.Release()
		}
	}
	r.pending = nil
	r.rb.release()
	return nil
}

// pageRecords finds the array of records in a page.
func pageRecords(doc any, path []string) ([]any, error) {
	if len(path) == 0 {
		if arr, ok := doc.([]any); ok {
			return arr, nil
		}
		return nil, fmt.Errorf("expected a JSON array of records at the top level, found %s%s; set records to the path of the array", jsonKind(doc), keysOf(doc))
	}
	v, ok := lookup(doc, path)
	if !ok {
		return nil, fmt.Errorf("records path %s not found in the response%s", joinPath(path), keysOf(doc))
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case []any:
		return x, nil
	}
	return nil, fmt.Errorf("records path %s is %s, expected an array", joinPath(path), jsonKind(v))
}

func keysOf(doc any) string {
	obj, ok := doc.(map[string]any)
	if !ok {
		return ""
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > 10 {
		keys = append(keys[:10], "…")
	}
	return " (top-level keys: " + strings.Join(keys, ", ") + ")"
}

func joinPath(p []string) string { return strings.Join(p, ".") }
