package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/failpoint"
)

// The stream of a cdc entity (cdc.go) hands over the changes of every
// transaction that committed after the committed position, in commit order,
// as row versions: each row has the entity's columns plus
//
//	_cdw_op         insert, update or delete (a delete is a tombstone: the
//	                deleted row, its deleted column true, which staging drops)
//	_cdw_lsn        the transaction's commit LSN, as a number: rows of one
//	                transaction share it, and it orders transactions
//	_cdw_commit_ts  the commit time
//	_source_line    the change's place in the read, which orders the versions
//	                of one row within one raw file (staging's tie-break)
//
// A checkpoint falls only at a transaction's end, so a raw file never holds
// part of one; its position is the end of that transaction's commit record.
// A read resumed from it skips every transaction that committed before (the
// server does, and so does the stream), and the slot is confirmed only up to
// positions the runner has committed (Committed), so a kill anywhere repeats
// nothing and loses nothing. The read ends once the server has sent
// everything up to the WAL written when it began.

// CDC columns added to every streamed row.
const (
	colOp       = "_cdw_op"
	colLSN      = "_cdw_lsn"
	colCommitTS = "_cdw_commit_ts"
	colSeq      = "_source_line"
)

// statusInterval is how often the stream reports its confirmed position and
// asks the server where it is; well within wal_sender_timeout (60 s).
const statusInterval = time.Second

// stallKeepalives: this many keepalives in a row at one position, with no
// change between them, end a read short of its target (see receive).
const stallKeepalives = 5

// stream reads one entity's changes from its slot.
type stream struct {
	src  *Source
	ec   *entityConfig
	sql  *pgx.Conn // catalog lookups (type names of new columns)
	repl *pgconn.PgConn
	slot string
	oid  uint32 // the table's, as Relation messages name it

	start     pglogrepl.LSN // transactions committed before it are in raw
	target    pglogrepl.LSN // the server's WAL end when the read began
	committed atomic.Uint64 // the newest committed position: the slot may be confirmed up to it
	confirmed pglogrepl.LSN // sent to the server
	retained  int64         // WAL the slot held back at the start, bytes

	types      *pgtype.Map
	cols       []field // of the rows committed so far, for drift checks
	dec        *changeDecoder
	inTxn      bool
	skip       bool // the transaction is in raw already
	txnLSN     pglogrepl.LSN
	txnTime    time.Time
	handedTxn  bool          // a chunk of the open transaction was handed over
	endLSN     pglogrepl.LSN // end of the last transaction received
	sinceCheck int64         // rows since the last checkpoint
	seq        int64
	lastAlive  pglogrepl.LSN // the server's position in its last keepalive
	stalls     int           // keepalives since in a row at that position
	nextStatus time.Time
	out        []extract.Chunk
	done       bool
	err        error // ends the read once out is handed over
	txnRows    int   // rows of the open transaction decoded

	batchRows, checkpointRows int64
}

// openStream starts streaming an entity's slot from the committed position
// pos; acked is a position already committed beyond it (an initial load's,
// in the same read), 0 if none.
func (s *Source) openStream(ctx context.Context, ec *entityConfig, pos *position, batchRows int, acked pglogrepl.LSN) (*stream, error) {
	start, err := pglogrepl.ParseLSN(pos.LSN)
	if err != nil || pos.Slot == "" {
		return nil, fmt.Errorf("reading the committed cdc position of %s: slot %q, lsn %q", ec.what(), pos.Slot, pos.LSN)
	}
	if batchRows <= 0 {
		batchRows = 64 * 1024
	}
	st := &stream{src: s, ec: ec, slot: pos.Slot, start: start, cols: pos.Columns, types: pgtype.NewMap(),
		batchRows: int64(batchRows), checkpointRows: s.checkpointRows}
	ok := false
	defer func() {
		if !ok {
			st.close()
		}
	}()
	if st.sql, err = s.connect(ctx); err != nil {
		return nil, err
	}
	var confirmed, current string
	var active bool
	// The target is the insert position: with synchronous_commit off a
	// commit may not be written yet, and it counts all the same.
	err = st.sql.QueryRow(ctx, `SELECT confirmed_flush_lsn::text, pg_current_wal_insert_lsn()::text, active,
       coalesce(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), restart_lsn), 0)::bigint
FROM pg_replication_slots WHERE slot_name = $1`, pos.Slot).Scan(&confirmed, &current, &active, &st.retained)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("the replication slot %s of %s is gone (dropped with cdw extract --drop-slot, or by hand): the changes since %s went with it; run a full refresh (cdw extract --full-refresh) to load the table afresh",
			pos.Slot, ec.what(), pos.LSN)
	}
	if err != nil {
		return nil, s.redact(fmt.Errorf("looking up replication slot %s: %w", pos.Slot, err))
	}
	if active {
		return nil, fmt.Errorf("replication slot %s of %s is in use by another connection (another cdw run?)", pos.Slot, ec.what())
	}
	if st.retained > s.maxSlotWAL {
		s.log.Warn("the replication slot holds back more WAL than max_slot_wal: the server keeps every WAL segment since its position; extract more often, raise max_slot_wal, or drop the slot (cdw extract --drop-slot)",
			"entity", ec.entity.Name, "slot", pos.Slot, "retained", humanBytes(st.retained), "max_slot_wal", humanBytes(s.maxSlotWAL))
	}
	c, _ := pglogrepl.ParseLSN(confirmed)
	st.target, _ = pglogrepl.ParseLSN(current)
	// Never report less than the slot has: it would move back. The
	// committed position is at or after it (it is confirmed only up to
	// committed positions), so it may be confirmed at once.
	st.confirmed = c
	st.committed.Store(uint64(max(c, start, acked)))
	if err := st.sql.QueryRow(ctx, "SELECT $1::regclass::oid", ec.table.Sanitize()).Scan(&st.oid); err != nil {
		return nil, s.redact(fmt.Errorf("looking up %s: %w", ec.what(), err))
	}
	if st.repl, err = s.connectReplication(ctx); err != nil {
		return nil, err
	}
	err = pglogrepl.StartReplication(ctx, st.repl, pos.Slot, start, pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication, PluginArgs: []string{"proto_version '1'", "publication_names '" + pos.Slot + "'"}})
	if err != nil {
		return nil, s.redact(fmt.Errorf("starting to stream replication slot %s: %w", pos.Slot, err))
	}
	s.log.Debug("streaming changes", "entity", ec.entity.Name, "slot", pos.Slot, "from", start, "until", st.target, "retained", st.retained)
	ok = true
	return st, nil
}

func humanBytes(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// schema is the shape of the rows handed over so far (before any change:
// the committed columns' shape is not known yet, so nil).
func (st *stream) schema() *arrow.Schema {
	if st.dec == nil {
		return nil
	}
	return st.dec.schema
}

// commit records that pos is durable.
func (st *stream) commit(pos pglogrepl.LSN) {
	for {
		old := st.committed.Load()
		if uint64(pos) <= old || st.committed.CompareAndSwap(old, uint64(pos)) {
			return
		}
	}
}

func (st *stream) next(ctx context.Context) (extract.Chunk, error) {
	for len(st.out) == 0 {
		if st.err != nil {
			return extract.Chunk{}, st.err
		}
		if st.done {
			return extract.Chunk{}, io.EOF
		}
		if err := st.receive(ctx); err != nil {
			return extract.Chunk{}, err
		}
	}
	ch := st.out[0]
	st.out = st.out[1:]
	return ch, nil
}

// receive handles one message from the server, or reports the position
// when none came for statusInterval.
func (st *stream) receive(ctx context.Context) error {
	if st.target <= st.start && !st.inTxn {
		st.finish(st.start) // nothing was written since the committed position
		return nil
	}
	if !time.Now().Before(st.nextStatus) {
		if err := st.sendStatus(true); err != nil {
			return err
		}
		st.nextStatus = time.Now().Add(statusInterval)
	}
	rctx, cancel := context.WithDeadline(ctx, st.nextStatus)
	msg, err := st.repl.ReceiveMessage(rctx)
	cancel()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case pgconn.Timeout(err):
		return nil
	case err != nil:
		return st.src.redact(fmt.Errorf("receiving changes from replication slot %s: %w", st.slot, err))
	}
	switch m := msg.(type) {
	case *pgproto3.ErrorResponse:
		return st.src.redact(fmt.Errorf("streaming replication slot %s: %w", st.slot, pgconn.ErrorResponseToPgError(m)))
	case *pgproto3.CopyData:
		if len(m.Data) == 0 {
			return nil
		}
		switch m.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			k, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
			if err != nil {
				return fmt.Errorf("streaming replication slot %s: %w", st.slot, err)
			}
			if k.ReplyRequested {
				st.nextStatus = time.Time{}
			}
			// Everything before the server's position has been sent:
			// caught up once that is past the target, or (a position that
			// never reaches it exactly: the target may point past a page
			// header) when it stood still over stallKeepalives replies.
			if k.ServerWALEnd == st.lastAlive {
				st.stalls++
			} else {
				st.stalls = 0
			}
			st.lastAlive = k.ServerWALEnd
			if !st.inTxn && (k.ServerWALEnd >= st.target || st.stalls >= stallKeepalives) {
				st.finish(k.ServerWALEnd)
			}
		case pglogrepl.XLogDataByteID:
			x, err := pglogrepl.ParseXLogData(m.Data[1:])
			if err != nil {
				return fmt.Errorf("streaming replication slot %s: %w", st.slot, err)
			}
			lm, err := pglogrepl.Parse(x.WALData)
			if err != nil {
				return fmt.Errorf("decoding a change from replication slot %s: %w", st.slot, err)
			}
			st.lastAlive, st.stalls = 0, 0
			return st.handle(ctx, lm)
		}
	}
	return nil
}

// sendStatus confirms the committed position to the server.
func (st *stream) sendStatus(reply bool) error {
	pos := pglogrepl.LSN(st.committed.Load())
	if pos < st.confirmed {
		pos = st.confirmed
	}
	if pos > st.confirmed {
		failpoint.Hit("postgres.cdc.before-confirm") // committed in state, not yet confirmed
	}
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), st.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos, ReplyRequested: reply})
	if err != nil {
		return st.src.redact(fmt.Errorf("confirming replication slot %s up to %s: %w", st.slot, pos, err))
	}
	if pos > st.confirmed {
		st.confirmed = pos
		failpoint.Hit("postgres.cdc.after-confirm")
	}
	return nil
}

func (st *stream) handle(ctx context.Context, msg pglogrepl.Message) error {
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		if m.RelationID == st.oid {
			return st.relation(ctx, m)
		}
	case *pglogrepl.BeginMessage:
		st.inTxn, st.handedTxn, st.txnRows = true, false, 0
		st.txnLSN, st.txnTime = m.FinalLSN, m.CommitTime
		st.skip = m.FinalLSN < st.start
	case *pglogrepl.CommitMessage:
		st.inTxn = false
		if !st.skip {
			st.endLSN = max(st.endLSN, m.TransactionEndLSN)
		}
		if st.sinceCheck >= st.checkpointRows {
			st.flush(true)
		}
	case *pglogrepl.InsertMessage:
		if m.RelationID == st.oid && !st.skip {
			return st.change(opInsert, m.Tuple, nil)
		}
	case *pglogrepl.UpdateMessage:
		if m.RelationID == st.oid && !st.skip {
			return st.change(opUpdate, m.NewTuple, m.OldTuple)
		}
	case *pglogrepl.DeleteMessage:
		if m.RelationID == st.oid && !st.skip {
			if m.OldTupleType != pglogrepl.UpdateMessageTupleTypeOld {
				return fmt.Errorf("a delete from %s came without the whole old row: its REPLICA IDENTITY is no longer FULL (ALTER TABLE %s REPLICA IDENTITY FULL)", st.ec.what(), st.ec.table.Sanitize())
			}
			return st.change(opDelete, m.OldTuple, m.OldTuple)
		}
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if id == st.oid && !st.skip {
				return fmt.Errorf("%s was truncated (at LSN %s): a TRUNCATE is no row change cdw can land as tombstones; run a full refresh (cdw extract --full-refresh) to load the table afresh", st.ec.what(), st.txnLSN)
			}
		}
	}
	return nil
}

// relation takes the table's (new) columns: a column added, dropped or
// retyped goes through the same checks as a cursor read's (makePlan): a
// type change that would lose data stops the entity, the rest is noted.
func (st *stream) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	fields := make([]field, len(m.Columns))
	oids := make([]int64, len(m.Columns))
	mods := make([]int32, len(m.Columns))
	for i, c := range m.Columns {
		fields[i] = field{Name: c.Name, OID: c.DataType, Mod: c.TypeModifier}
		oids[i], mods[i] = int64(c.DataType), c.TypeModifier
	}
	rows, err := st.sql.Query(ctx, formatTypesSQL, oids, mods)
	if err != nil {
		return st.src.redact(fmt.Errorf("naming column types of %s: %w", st.ec.what(), err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) != len(fields) {
		return st.src.redact(fmt.Errorf("naming column types of %s: %d names for %d columns: %v", st.ec.what(), len(names), len(fields), err))
	}
	for i := range fields {
		fields[i].Type = names[i]
	}
	if st.dec != nil && sameFields(st.dec.fields, fields) {
		return nil // sent again (every session sends it before the first change)
	}
	p, err := makePlan(st.ec, fields, &position{Columns: st.cols})
	if err != nil {
		// What came before is committed first; the error stays.
		st.flush(true)
		st.err = fmt.Errorf("%w (the transaction committed at LSN %s)", err, st.txnLSN)
		return nil
	}
	for _, n := range p.notes {
		st.src.log.Warn("source schema: "+n, "entity", st.ec.entity.Name, "from", st.ec.what(), "lsn", st.txnLSN.String())
	}
	if st.dec != nil {
		st.flush(false) // the rows so far keep their shape
	}
	st.dec = newChangeDecoder(st, p, fields)
	st.cols = p.columns
	return nil
}

func sameFields(a, b []field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// change adds one row version.
func (st *stream) change(op string, tup, old *pglogrepl.TupleData) error {
	if st.dec == nil {
		return fmt.Errorf("a change of %s came before its columns (no Relation message)", st.ec.what())
	}
	if st.handedTxn {
		failpoint.Hit("postgres.cdc.mid-transaction") // part of a transaction handed over, its commit not yet seen
	}
	st.seq++
	if err := st.dec.add(op, tup, old, st.txnLSN, st.txnTime, st.seq); err != nil {
		return err
	}
	st.sinceCheck++
	st.txnRows++
	if st.dec.full() {
		st.flush(false)
		st.handedTxn = st.inTxn
	}
	return nil
}

// flush hands over the rows decoded so far; with checkpoint, the position
// after the last transaction received, when no rows of a later one are
// among them.
func (st *stream) flush(checkpoint bool) {
	var ch extract.Chunk
	if st.dec != nil {
		ch = st.dec.chunk()
	}
	if checkpoint && (!st.inTxn || st.txnRows == 0) && st.endLSN > st.start {
		cols := st.cols
		ch.Checkpoint = (&position{V: positionVersion, Mode: modeCDC, Slot: st.slot, LSN: st.endLSN.String(), Columns: cols}).encode()
		st.start = st.endLSN
		st.sinceCheck = 0
	}
	if ch.Rows != nil || ch.Rejects != nil || ch.Checkpoint != nil {
		st.out = append(st.out, ch)
	}
}

// finish ends the read at the server's position end: every transaction
// committed before it has been received.
func (st *stream) finish(end pglogrepl.LSN) {
	st.endLSN = max(st.endLSN, end)
	st.flush(true)
	st.done = true
}

// close confirms what was committed and ends the stream.
func (st *stream) close() error {
	var errs []error
	if st.repl != nil {
		if !st.repl.IsClosed() {
			if err := st.sendStatus(false); err != nil {
				errs = append(errs, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st.repl.Close(ctx)
		cancel()
		st.repl = nil
	}
	if st.sql != nil {
		st.sql.Close(context.Background())
		st.sql = nil
	}
	if st.dec != nil {
		st.dec.release()
	}
	for _, ch := range st.out {
		if ch.Rows != nil {
			ch.Rows.Release()
		}
	}
	st.out = nil
	return errors.Join(errs...)
}

// Change operations, as _cdw_op says them.
const (
	opInsert = "insert"
	opUpdate = "update"
	opDelete = "delete"
)

// changeDecoder turns row versions of one shape of the table into records:
// the plan's columns (as a read of the table has them) and the cdc columns.
type changeDecoder struct {
	st      *stream
	plan    *plan
	fields  []field
	schema  *arrow.Schema
	rb      *array.RecordBuilder
	cols    []changeCol
	deleted int // the plan's deleted column, set true on tombstones; -1 none
	meta    int // first cdc column in the record
	vals    [][]byte
	rows    int
	bytes   int
	rejects []extract.Reject
}

// changeCol is one plan column with a source.
type changeCol struct {
	out    int   // field in the record
	idx    int   // relation column
	parts  []int // a composite key's relation columns
	binder binder
	wire   toWire
	buf    []byte
	name   string
}

func newChangeDecoder(st *stream, p *plan, fields []field) *changeDecoder {
	af := append(p.schema.Fields(),
		arrow.Field{Name: colOp, Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: colLSN, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: colCommitTS, Type: timestampUTC, Nullable: true},
		arrow.Field{Name: colSeq, Type: arrow.PrimitiveTypes.Int64, Nullable: true})
	d := &changeDecoder{st: st, plan: p, fields: fields, schema: arrow.NewSchema(af, nil), deleted: -1, meta: len(p.outs)}
	d.rb = array.NewRecordBuilder(memory.DefaultAllocator, d.schema)
	byName := map[string]int{}
	for i, f := range fields {
		byName[f.Name] = i
	}
	opts := bindOptions{}
	for i, o := range p.outs {
		if o.name == "deleted" && !p.ent.entity.Raw {
			d.deleted = i
		}
		if o.src == nil {
			continue
		}
		c := changeCol{out: i, name: o.src.Name}
		if o.parts != nil {
			for _, part := range o.parts {
				c.parts = append(c.parts, byName[part])
			}
		} else {
			c.idx = byName[o.src.Name]
			c.wire = wireFor(o.spec, *o.src, st.types)
		}
		opts.required = o.required
		c.binder = bind(o.spec, d.rb.Field(i), opts)
		d.cols = append(d.cols, c)
	}
	d.vals = make([][]byte, len(d.cols))
	return d
}

// value is column i of a row version: the new tuple's, or for a TOAST
// value the update did not touch, the old row's.
func value(i int, tup, old *pglogrepl.TupleData) ([]byte, error) {
	if i >= len(tup.Columns) {
		return nil, nil
	}
	c := tup.Columns[i]
	switch c.DataType {
	case pglogrepl.TupleDataTypeNull:
		return nil, nil
	case pglogrepl.TupleDataTypeText:
		return c.Data, nil
	case pglogrepl.TupleDataTypeToast:
		if old != nil && i < len(old.Columns) && old.Columns[i].DataType != pglogrepl.TupleDataTypeToast {
			return value(i, old, nil)
		}
		return nil, errToastUnknown
	}
	return nil, fmt.Errorf("unexpected value kind %q", c.DataType)
}

var errToastUnknown = errors.New("its TOAST value was unchanged and the update carried no old row")

func (d *changeDecoder) add(op string, tup, old *pglogrepl.TupleData, lsn pglogrepl.LSN, ts time.Time, seq int64) error {
	reject := func(name string, err error) {
		d.rejects = append(d.rejects, extract.Reject{File: d.st.ec.what() + " (slot " + d.st.slot + ")", Line: seq,
			Reason: fmt.Sprintf("column %s: %v (%s at LSN %s)", name, err, op, lsn), Raw: d.describe(tup)})
	}
	for i := range d.cols {
		c := &d.cols[i]
		if c.parts != nil {
			d.vals[i] = d.key(c, tup, old)
			continue
		}
		v, err := value(c.idx, tup, old)
		if errors.Is(err, errToastUnknown) {
			return fmt.Errorf("%s column %s: %w: set REPLICA IDENTITY FULL on the table", d.st.ec.what(), c.name, err)
		}
		if err == nil && v != nil && c.wire != nil {
			v, err = c.wire(v, c.buf)
			c.buf = v
		}
		if err != nil {
			reject(c.name, err)
			return nil
		}
		if i := c.out; i == d.deleted && op == opDelete {
			v = []byte{1}
		}
		d.vals[i] = v
		d.bytes += len(v) + valueOverhead
	}
	for i := range d.cols {
		c := &d.cols[i]
		if c.binder.check == nil {
			continue
		}
		if err := c.binder.check(d.vals[i]); err != nil {
			reject(d.plan.outs[c.out].name, err)
			return nil
		}
	}
	for i := range d.cols {
		d.cols[i].binder.add(d.vals[i])
	}
	for i, o := range d.plan.outs {
		if o.src != nil {
			continue
		}
		b := d.rb.Field(i)
		if i == d.deleted {
			bb := b.(*array.BooleanBuilder)
			if op == opDelete {
				bb.Append(true)
			} else {
				bb.AppendNull()
			}
			continue
		}
		b.AppendNull()
	}
	d.rb.Field(d.meta).(*array.StringBuilder).Append(op)
	d.rb.Field(d.meta + 1).(*array.Int64Builder).Append(int64(lsn))
	d.rb.Field(d.meta + 2).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
	d.rb.Field(d.meta + 3).(*array.Int64Builder).Append(seq)
	d.rows++
	return nil
}

// key is a composite key's text (keySQL): NULL when a part is NULL, empty or
// holds the separator.
func (d *changeDecoder) key(c *changeCol, tup, old *pglogrepl.TupleData) []byte {
	var b []byte
	for j, idx := range c.parts {
		v, err := value(idx, tup, old)
		if err != nil || len(v) == 0 || strings.Contains(string(v), extract.KeySeparator) {
			return nil
		}
		if j > 0 {
			b = append(b, extract.KeySeparator...)
		}
		b = append(b, v...)
	}
	return b
}

// describe renders a row for quarantine.
func (d *changeDecoder) describe(tup *pglogrepl.TupleData) string {
	var sb strings.Builder
	for i, f := range d.fields {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(f.Name + "=")
		if i < len(tup.Columns) && tup.Columns[i].DataType == pglogrepl.TupleDataTypeText {
			sb.Write(tup.Columns[i].Data)
		} else {
			sb.WriteString("NULL")
		}
		if sb.Len() > rawLimit {
			return sb.String()[:rawLimit] + "…"
		}
	}
	return sb.String()
}

// full: a chunk ends at BatchRows, maxChunkBytes or checkpoint_rows rows
// (as the split reader's do), also inside a transaction.
func (d *changeDecoder) full() bool {
	return int64(d.rows+len(d.rejects)) >= min(d.st.batchRows, d.st.checkpointRows) || d.bytes >= maxChunkBytes
}

// chunk takes the rows and rejects decoded so far.
func (d *changeDecoder) chunk() extract.Chunk {
	ch := extract.Chunk{Rejects: d.rejects}
	d.rejects = nil
	if d.rows == 0 {
		return ch
	}
	arrs := make([]arrow.Array, len(d.schema.Fields()))
	for _, c := range d.cols {
		if c.binder.array != nil {
			arrs[c.out] = c.binder.array()
		}
	}
	for i, a := range arrs {
		if a == nil {
			arrs[i] = d.rb.Field(i).NewArray()
		}
	}
	ch.Rows = array.NewRecordBatch(d.schema, arrs, int64(d.rows))
	for _, a := range arrs {
		a.Release()
	}
	d.rows, d.bytes = 0, 0
	return ch
}

func (d *changeDecoder) release() {
	if d.rb != nil {
		d.rb.Release()
		d.rb = nil
	}
}
