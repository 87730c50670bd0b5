package extract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/cdwhq/cdw/internal/failpoint"
)

// Extractor runs reads and owns everything durable about them: raw files,
// quarantine files and the committed state.
type Extractor struct {
	Dir       string // warehouse directory
	Log       *slog.Logger
	BatchRows int       // rows per Arrow record asked of sources; 0 = 64k
	Progress  *Progress // optional progress display
	Now       func() time.Time
	// Committed, when set, runs with the committed state after every state
	// commit (before superseded files are deleted) and on start (before
	// orphans are removed): the Iceberg raw tables follow state through it.
	// batch names the files the commit added ("" on start). An error fails
	// the extract; state stays committed and the next start reconciles.
	Committed func(st *EntityState, batch string) error
	// EventDays writes each raw file with the rows of one event day (the
	// UTC day of Entity.Event; rows without one in a file of their own)
	// under dt=<that day>, so that every file holds a single value of the
	// entity's Iceberg partition. Off, files are of the extract day.
	EventDays bool
	seq       atomic.Int64
}

// Result reports one entity's extract.
type Result struct {
	Source, Entity string
	Rows           int64 // rows written to raw
	Rejected       int64 // rows sent to quarantine
	Files          int   // raw files committed
	Duration       time.Duration
	// Slot, for a read from a replication slot: its name, the WAL it held
	// back when the read began and the configured limit (WALReporter).
	Slot                string
	SlotWAL, SlotWALMax int64
}

// Extract runs one read of one entity and commits it. full starts a full
// refresh: the entity's raw files are replaced, atomically, once it completes.
// A refresh cut short by a crash is resumed by the next call.
func (x *Extractor) Extract(ctx context.Context, sourceName string, src Source, entityName string, full bool) (Result, error) {
	start := x.now()
	res := Result{Source: sourceName, Entity: entityName}
	ent, store, st, err := x.openEntity(sourceName, entityName)
	if err != nil {
		return res, err
	}
	// A source that can only return the whole entity (no cursor) would
	// append a full copy on every run: replace the entity's files instead.
	if s, ok := src.(Snapshotter); ok && s.Snapshot(entityName) {
		if d, ok := src.(ChangeDetector); ok && !full && st.Refresh == nil && st.Cursor != nil {
			same, err := d.Unchanged(ctx, entityName, st.Cursor)
			if err != nil {
				return res, fmt.Errorf("source %s: checking %s for changes: %w", sourceName, entityName, err)
			}
			if same {
				res.Duration = x.now().Sub(start)
				x.log().Info("unchanged since the last extract; nothing added", "source", sourceName, "entity", entityName)
				return res, nil
			}
		}
		full = true
	}
	if full && st.Refresh == nil {
		st.Refresh = &Refresh{}
	}
	cursor := st.Cursor
	if st.Refresh != nil {
		cursor = st.Refresh.Cursor
	}
	req := ReadRequest{Entity: ent, Cursor: cursor, BatchRows: x.BatchRows}
	if req.BatchRows <= 0 {
		req.BatchRows = 64 * 1024
	}
	total, counted, stopCount := x.startCount(ctx, src, req, sourceName, entityName)
	defer stopCount()
	rd, err := src.Read(ctx, req)
	if err != nil {
		return res, fmt.Errorf("source %s: reading %s: %w", sourceName, entityName, err)
	}
	defer rd.Close()
	// The source parses the next chunk while this goroutine encodes the last
	// one to Parquet: on two cores that overlap nearly halves an extract
	// (see BENCHMARKS.md). The prefetcher stops before rd.Close runs.
	pf := startPrefetch(ctx, rd)
	defer pf.stop()

	b := batch{x: x, st: st, store: store, ent: ent, schema: rd}
	if bg, ok := src.(Budgeter); ok {
		bud := bg.RejectBudget(entityName)
		b.budget = &bud
	}
	defer b.abort()
	tick := x.Progress.Start(sourceName+"."+entityName, total)
	if err := x.copyChunks(pf, rd, &b, tick, counted, sourceName, entityName); err != nil {
		return res, err
	}
	tick.Done()
	if err := b.checkBudget(""); err != nil {
		return res, err
	}
	if err := b.commit(nil, ""); err != nil {
		return res, fmt.Errorf("source %s: committing %s: %w", sourceName, entityName, err)
	}
	if st.Refresh != nil {
		if err := b.finishRefresh(); err != nil {
			return res, err
		}
	}
	res.Rows, res.Rejected, res.Files, res.Duration = b.rows, b.rejected, b.files, x.now().Sub(start)
	if w, ok := rd.(WALReporter); ok {
		if slot, n, limit, ok := w.RetainedWAL(); ok {
			res.Slot, res.SlotWAL, res.SlotWALMax = slot, n, limit
		}
	}
	x.log().Info("extracted", "source", sourceName, "entity", entityName, "rows", res.Rows,
		"rejected", res.Rejected, "files", res.Files, "seconds", res.Duration.Round(time.Millisecond).Seconds())
	return res, nil
}

// startCount counts the rows a read will return, for the progress line. It
// returns -1 when the source cannot count or no one watches the progress;
// a source that counts in the background sends its count on the channel
// instead, and stop cancels that count.
func (x *Extractor) startCount(ctx context.Context, src Source, req ReadRequest, sourceName, entityName string) (total int64, counted chan int64, stop func()) {
	total, stop = -1, func() {}
	// Counting costs the source a query; only pay it when someone watches.
	c, ok := src.(Counter)
	if !ok || x.Progress == nil {
		return total, nil, stop
	}
	count := func(ctx context.Context) int64 {
		n, err := c.Count(ctx, req)
		if err != nil {
			x.log().Debug("counting rows", "source", sourceName, "entity", entityName, "err", err)
			return -1
		}
		return n
	}
	if b, ok := src.(backgroundCounter); ok && b.CountInBackground() {
		// The count is only for the progress line: the read need not wait.
		counted = make(chan int64, 1)
		cctx, cancel := context.WithCancel(ctx)
		go func() { counted <- count(cctx) }()
		return total, counted, cancel
	}
	return count(ctx), nil, stop
}

// copyChunks writes the read's chunks into the batch until the source ends,
// committing at each checkpoint the source marks, and keeps tick current.
func (x *Extractor) copyChunks(pf *prefetch, rd Reader, b *batch, tick *Tick, counted chan int64, sourceName, entityName string) error {
	for {
		ch, err := pf.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tick.Done()
			return fmt.Errorf("source %s: reading %s: %w", sourceName, entityName, err)
		}
		if err := b.add(ch); err != nil {
			tick.Done()
			return fmt.Errorf("source %s: writing %s: %w", sourceName, entityName, err)
		}
		if ch.Checkpoint != nil {
			if err := b.checkBudget(ch.Unit); err != nil {
				tick.Done()
				return err
			}
			if err := b.commit(ch.Checkpoint, ch.Unit); err != nil {
				tick.Done()
				return fmt.Errorf("source %s: committing %s: %w", sourceName, entityName, err)
			}
			if a, ok := rd.(Acknowledger); ok {
				a.Committed(ch.Checkpoint)
			}
			pf.committed()
		}
		select {
		case n := <-counted:
			tick.setTotal(n)
		default:
		}
		tick.Set(b.rows)
	}
	return nil
}

// backgroundCounter is implemented by Counters whose Count may run while the
// read runs (its own connection, no state shared with Read), so that the
// count costs the read no time.
type backgroundCounter interface {
	CountInBackground() bool
}

// setTotal tells a running tick the total, once known.
func (t *Tick) setTotal(n int64) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.total = n
	t.mu.Unlock()
}

// batch is the in-flight part of one read: open files not yet committed.
type batch struct {
	x              *Extractor
	st             *EntityState
	store          StateStore
	ent            Entity
	schema         interface{ Schema() *arrow.Schema }
	data           map[string]*ParquetFile // open raw files by dt= directory ("": the extract day's)
	lastWrite      map[string]int64        // when (in writes) each open file was last written to
	writes         int64
	finished       []*ParquetFile // files of this checkpoint already renamed into place (schema changed, or too many days open)
	quar           *ParquetFile
	rows, rejected int64
	files          int
	superseded     int // raw and quarantine files of earlier unit versions removed
	last           json.RawMessage
	budget         *Budget // nil: none
	rowRejects     int64   // rejects of single rows (Line > 0), which the budget counts
	reasons        reasonTally
}

// checkBudget fails the extract before a commit once the rows rejected in
// this run exceed the budget. A whole-file reject (Line 0: a changed file
// refused by on_change: reject) is a policy at work, not a bad row, and
// does not count.
func (b *batch) checkBudget(unit string) error {
	if b.budget == nil || !b.budget.exceeded(b.rowRejects, b.rows+b.rowRejects) {
		return nil
	}
	return &BudgetError{Source: b.st.Source, Entity: b.st.Entity, Unit: unit, Rejected: b.rowRejects,
		Read: b.rows + b.rowRejects, Budget: *b.budget, Top: b.reasons.describe(3)}
}

func (b *batch) add(ch Chunk) error {
	if ch.Rows != nil {
		defer ch.Rows.Release()
		if ch.Rows.NumRows() > 0 {
			if err := b.writeRows(ch.Rows); err != nil {
				return err
			}
			failpoint.Hit("extract.mid-write") // rows in a temporary file only
			b.rows += ch.Rows.NumRows()
		}
	}
	if len(ch.Rejects) > 0 {
		if b.quar == nil {
			f, err := CreateParquet(b.x.rawPath("quarantine", b.st, "", ".parquet"), quarantineSchema)
			if err != nil {
				return err
			}
			b.quar = f
		}
		rec := rejectsRecord(b.st.Source, b.st.Entity, ch.Rejects)
		defer rec.Release()
		if err := b.quar.Write(rec); err != nil {
			return err
		}
		b.rejected += int64(len(ch.Rejects))
		for _, r := range ch.Rejects {
			if r.Line > 0 {
				b.rowRejects++
				b.reasons.add(r)
			}
		}
	}
	return nil
}

// commit makes open files durable and then commits them with the cursor
// (nil = keep the last checkpoint seen). A non-empty unit supersedes the
// files of the unit's earlier versions: they leave state in the same commit
// and are deleted after it (a crash in between leaves orphans, which the
// next run removes).
func (b *batch) commit(cursor json.RawMessage, unit string) error {
	if cursor == nil {
		cursor = b.last
	}
	if cursor == nil && len(b.data) == 0 && b.quar == nil && len(b.finished) == 0 {
		return nil
	}
	now := b.x.now().UTC()
	var gone, dropped []RawFile
	if b.st.Refresh != nil {
		b.st.Refresh.Files, gone = supersede(b.st.Refresh.Files, unit)
	} else {
		b.st.Files, gone = supersede(b.st.Files, unit)
		for _, f := range gone {
			b.st.Rows -= f.Rows
		}
	}
	b.st.Quarantine, dropped = supersede(b.st.Quarantine, unit)
	gone = append(gone, dropped...)
	var added []RawFile
	if err := b.finishOpen(); err != nil {
		return err
	}
	for _, f := range b.finished {
		added = append(added, RawFile{Path: b.x.rel(f.Path()), Rows: f.Rows(), At: now, Unit: unit, Format: RawFormat})
		b.files++
	}
	b.finished = nil
	if b.quar != nil {
		if err := b.quar.Finish(); err != nil {
			return err
		}
		b.st.Quarantine = append(b.st.Quarantine, RawFile{Path: b.x.rel(b.quar.Path()), Rows: b.quar.Rows(), At: now, Unit: unit})
		b.quar = nil
	}
	if b.st.Refresh != nil {
		b.st.Refresh.Files = append(b.st.Refresh.Files, added...)
		if cursor != nil {
			b.st.Refresh.Cursor = cursor
		}
	} else {
		b.st.Files = append(b.st.Files, added...)
		for _, f := range added {
			b.st.Rows += f.Rows
		}
		if cursor != nil {
			b.st.Cursor = cursor
		}
	}
	b.last = cursor
	failpoint.Hit("extract.before-commit") // files renamed into place, state not yet committed
	if err := b.store.Commit(b.st); err != nil {
		return err
	}
	failpoint.Hit("extract.after-commit")
	if b.x.Committed != nil {
		names := make([]string, len(added))
		for i, f := range added {
			names[i] = strings.TrimSuffix(filepath.Base(f.Path), ".parquet")
		}
		if err := b.x.Committed(b.st, strings.Join(names, ",")); err != nil {
			return err
		}
	}
	for _, f := range gone {
		b.superseded++
		b.x.log().Info("removing superseded version", "unit", f.Unit, "file", f.Path, "rows", f.Rows)
		if err := os.Remove(filepath.Join(b.x.Dir, f.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			b.x.log().Warn("removing superseded raw file", "file", f.Path, "err", err)
		}
	}
	return nil
}

// finishRefresh swaps the refreshed files in and deletes the old ones.
func (b *batch) finishRefresh() error {
	old := b.st.Files
	b.st.Files = b.st.Refresh.Files
	b.st.Cursor = b.st.Refresh.Cursor
	b.st.Refresh = nil
	b.st.Rows = 0
	for _, f := range b.st.Files {
		b.st.Rows += f.Rows
	}
	if err := b.store.Commit(b.st); err != nil {
		return err
	}
	if b.x.Committed != nil {
		if err := b.x.Committed(b.st, "refresh"); err != nil {
			return err
		}
	}
	for _, f := range old {
		if err := os.Remove(filepath.Join(b.x.Dir, f.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			b.x.log().Warn("removing replaced raw file", "file", f.Path, "err", err)
		}
	}
	return nil
}

func (b *batch) abort() {
	for _, f := range b.data {
		f.Abort()
	}
	for _, f := range b.finished {
		os.Remove(f.Path()) // renamed into place but never committed
	}
	if b.quar != nil {
		b.quar.Abort()
	}
}

// rawPath names a new batch file: <layer>/<source>/<entity>/dt=<date>/<batch>.parquet
// for raw, <layer>/<source>/<entity>/<batch>.parquet for quarantine. Batch ids
// sort by time, which staging uses to pick the latest version of a row. day
// is the event day of the file's rows (EventDays), "" for the extract day.
func (x *Extractor) rawPath(layer string, st *EntityState, day, ext string) string {
	now := x.now().UTC()
	id := fmt.Sprintf("%s-%04d", now.Format("20060102T150405.000000000Z"), x.seq.Add(1)%10000)
	dir := filepath.Join(x.Dir, layer, st.Source, st.Entity)
	if layer == "raw" {
		if day == "" {
			day = now.Format("2006-01-02")
		}
		dir = filepath.Join(dir, "dt="+day)
	}
	return filepath.Join(dir, id+ext)
}

// openEntity resolves an entity and loads its committed state, reconciled
// with what a run that died left behind: the Committed hook (the Iceberg
// view) sees the state first, then files state does not list are removed.
// Extract and Compact both start here, so both recover the same way.
func (x *Extractor) openEntity(source, entity string) (Entity, StateStore, *EntityState, error) {
	store := StateStore{Dir: x.Dir}
	ent, err := ResolveEntity(entity)
	if err != nil {
		return ent, store, nil, fmt.Errorf("source %s: %w", source, err)
	}
	st, err := store.Load(source, entity)
	if err != nil {
		return ent, store, nil, err
	}
	if x.Committed != nil {
		if err := x.Committed(st, ""); err != nil {
			return ent, store, nil, err
		}
	}
	if err := x.removeOrphans(st); err != nil {
		return ent, store, nil, err
	}
	return ent, store, st, nil
}

// removeOrphans deletes raw and quarantine files that state does not list:
// files renamed into place by a run that died before committing its state.
func (x *Extractor) removeOrphans(st *EntityState) error {
	sp := StateStore{Dir: x.Dir}.path(st.Source, st.Entity) // a commit killed mid-write leaves ".<state>.tmp-*"
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(sp), "."+filepath.Base(sp)+".tmp-*"))
	for _, f := range tmps {
		os.Remove(f)
	}
	keep := map[string]bool{}
	for _, f := range st.Files {
		keep[f.Path] = true
	}
	for _, f := range st.Quarantine {
		keep[f.Path] = true
	}
	if st.Refresh != nil {
		for _, f := range st.Refresh.Files {
			keep[f.Path] = true
		}
	}
	for _, layer := range []string{"raw", "quarantine"} {
		root := filepath.Join(x.Dir, layer, st.Source, st.Entity)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.IsDir() || keep[x.rel(path)] {
				return nil
			}
			x.log().Info("removing uncommitted file from an interrupted run", "file", x.rel(path))
			return os.Remove(path)
		})
		if err != nil {
			return fmt.Errorf("cleaning uncommitted files of %s.%s: %w", st.Source, st.Entity, err)
		}
	}
	return nil
}

func (x *Extractor) rel(path string) string {
	r, err := filepath.Rel(x.Dir, path)
	if err != nil || strings.HasPrefix(r, "..") {
		return path
	}
	return filepath.ToSlash(r)
}

func (x *Extractor) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now()
}

func (x *Extractor) log() *slog.Logger {
	if x.Log != nil {
		return x.Log
	}
	return slog.Default()
}

// prefetch reads a Reader one chunk ahead in its own goroutine. Chunks arrive
// in order, so checkpoints are still committed only after every row before
// them is durable. After a chunk that carries a checkpoint it waits for the
// commit before reading on: a source that checkpoints per page must not have
// fetched page n+1 while page n is still uncommitted, or a kill there would
// resume a page early.
type prefetch struct {
	ch     chan prefetched
	ack    chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

type prefetched struct {
	chunk Chunk
	err   error
}

func startPrefetch(ctx context.Context, rd Reader) *prefetch {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetch{ch: make(chan prefetched, 1), ack: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer close(p.ch)
		for {
			ch, err := rd.Next(ctx)
			select {
			case p.ch <- prefetched{ch, err}:
			case <-ctx.Done():
				if ch.Rows != nil {
					ch.Rows.Release()
				}
				return
			}
			if err != nil {
				return
			}
			if ch.Checkpoint != nil {
				select {
				case <-p.ack:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return p
}

// committed tells the prefetcher that the last checkpoint is durable.
func (p *prefetch) committed() { p.ack <- struct{}{} }

// next returns the next chunk or the reader's error (io.EOF at the end).
func (p *prefetch) next() (Chunk, error) {
	r, ok := <-p.ch
	if !ok {
		return Chunk{}, io.EOF
	}
	return r.chunk, r.err
}

// stop ends the goroutine and releases a chunk read ahead but not used.
func (p *prefetch) stop() {
	p.cancel()
	for r := range p.ch {
		if r.chunk.Rows != nil {
			r.chunk.Rows.Release()
		}
	}
	<-p.done
}
