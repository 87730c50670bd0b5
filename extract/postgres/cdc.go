package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/dustin/go-humanize"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/duck"
	"github.com/cdwhq/cdw/internal/failpoint"
	"github.com/cdwhq/cdw/internal/pgconf"
)

// Change data capture (mode: cdc). A cursor sees a row's latest version when
// it reads, never a delete, and only what its cursor column tells; logical
// replication hands over every committed change in commit order. An entity in
// cdc mode has its own replication slot and publication, both named by cdw
// (slotName), created by its first read:
//
//  1. the publication (FOR TABLE), and REPLICA IDENTITY FULL on the table,
//     so that updates and deletes carry the whole old row: a delete lands as
//     a tombstone with every column of the row it removes (staging orders
//     versions by updated_at, and a tombstone without it would lose to the
//     version it deletes), and a TOAST value an update left alone (sent as
//     "unchanged", without the value) is taken from the old row. The
//     alternative, a local store of the last version of every key, would be
//     a second copy of the table that has to survive crashes in step with
//     raw; FULL costs WAL instead (the old row of every update and delete),
//     and the role already owns the table, which publishing it requires;
//  2. the slot, with its snapshot exported (CREATE_REPLICATION_SLOT …
//     EXPORT_SNAPSHOT): the initial load reads the table in that snapshot
//     with the split reader, and the stream starts at the slot's consistent
//     point, so nothing is missed or read twice;
//  3. the stream (stream.go), from the committed LSN on each later read,
//     until it has caught up with the WAL written when the read began.
//
// The initial load commits once, at its end: its snapshot dies with the
// connection that exported it, so a load cut short starts over (the slot is
// dropped and created again); the stream then commits every checkpoint_rows
// rows at a transaction's end.
const (
	modeCursor = "cursor"
	modeCDC    = "cdc"
)

// DefaultMaxSlotWAL is how much WAL a slot may hold back before a read warns
// (max_slot_wal): a slot nobody reads keeps every WAL segment from its
// position on, until the server's disk fills.
const DefaultMaxSlotWAL = 1 << 30

// parseSize reads a size such as 512MB, 1GB or 2GiB.
func parseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	if err != nil || n == 0 || n > math.MaxInt64 {
		return 0, fmt.Errorf("expected a size such as 512MB or 2GiB, found %q", s)
	}
	return int64(n), nil
}

// slotName names the replication slot and the publication of one entity:
// cdw_<source>_<entity>, lower case, other characters as _, a hash in place
// of the end when longer than PostgreSQL's 63 bytes.
func slotName(source, entity string) string {
	var b strings.Builder
	b.WriteString("cdw_")
	for _, r := range strings.ToLower(source + "_" + entity) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 63 {
		sum := sha256.Sum256([]byte(source + "\x00" + entity))
		name = name[:54] + "_" + hex.EncodeToString(sum[:4])
	}
	return name
}

// Slot names the replication slot (and publication) of a cdc entity; ok is
// false for other entities.
func (s *Source) Slot(entity string) (name string, ok bool) {
	ec, err := s.entity(entity)
	if err != nil || !ec.cdc {
		return "", false
	}
	return slotName(s.name, entity), true
}

// connectReplication opens a logical replication connection.
func (s *Source) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	cfg := s.conn.Config.Copy().Config
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, &cfg)
	if err != nil {
		err = fmt.Errorf("opening a replication connection to PostgreSQL at %s (the role needs the REPLICATION attribute): %w", s.conn.Where, err)
		return nil, pgconf.OneLine(err)
	}
	return conn, nil
}

// setupCDC checks the server and creates the entity's publication, and sets
// the table's replica identity to FULL (see above).
func (s *Source) setupCDC(ctx context.Context, conn *pgx.Conn, ec *entityConfig, name string) error {
	var level string
	if err := conn.QueryRow(ctx, "SELECT current_setting('wal_level')").Scan(&level); err != nil {
		return fmt.Errorf("reading wal_level on %s: %w", s.conn.Where, err)
	}
	if level != "logical" {
		return fmt.Errorf("mode: cdc needs wal_level = logical on %s, which has %s: set it in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart the server", s.conn.Where, level)
	}
	var kind, ident string
	if err := conn.QueryRow(ctx, "SELECT relkind::text, relreplident::text FROM pg_class WHERE oid = $1::regclass", ec.table.Sanitize()).Scan(&kind, &ident); err != nil {
		return fmt.Errorf("looking up %s: %w", ec.what(), err)
	}
	if kind != "r" {
		return fmt.Errorf("mode: cdc reads plain tables; %s is not one (relkind %s): read it with a cursor or in full", ec.what(), kind)
	}
	if ident != "f" {
		if _, err := conn.Exec(ctx, "ALTER TABLE "+ec.table.Sanitize()+" REPLICA IDENTITY FULL"); err != nil {
			return fmt.Errorf("setting REPLICA IDENTITY FULL on %s (deletes and unchanged TOAST values need the whole old row; the role must own the table): %w", ec.what(), err)
		}
		s.log.Info("set REPLICA IDENTITY FULL, so that deletes and updates carry the whole old row", "table", ec.what(), "was", ident)
	}
	var exists, has bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1),
       EXISTS (SELECT FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid WHERE p.pubname = $1 AND r.prrelid = $2::regclass)`,
		name, ec.table.Sanitize()).Scan(&exists, &has)
	if err != nil {
		return fmt.Errorf("looking up publication %s: %w", name, err)
	}
	switch {
	case !exists:
		_, err = conn.Exec(ctx, "CREATE PUBLICATION "+duck.Ident(name)+" FOR TABLE "+ec.table.Sanitize())
	case !has:
		_, err = conn.Exec(ctx, "ALTER PUBLICATION "+duck.Ident(name)+" ADD TABLE "+ec.table.Sanitize())
	}
	if err != nil {
		return fmt.Errorf("publishing %s as %s (the role must own the table and may create in the database): %w", ec.what(), name, err)
	}
	return nil
}

// dropSlot drops the named slot if it exists. A slot another connection is
// streaming from is not dropped: the error says so.
// Slots are the cluster's, not a database's: a slot of this name on
// another database belongs to someone else and is refused, never dropped.
func dropSlot(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var other string
	err := conn.QueryRow(ctx, "SELECT database FROM pg_replication_slots WHERE slot_name = $1 AND database IS DISTINCT FROM current_database()", name).Scan(&other)
	if err == nil {
		return false, fmt.Errorf("replication slot %s belongs to database %s, not this one: another warehouse's source of the same name reads it; give this source another name", name, other)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("looking up replication slot %s: %w", name, err)
	}
	tag, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()", name)
	if err != nil {
		return false, fmt.Errorf("dropping replication slot %s: %w", name, err)
	}
	return tag.RowsAffected() > 0, nil
}

// DropSlot removes a cdc entity's replication slot and publication (cdw
// extract --drop-slot): the server stops keeping WAL for it. The committed
// position is then of no use, so the entity's next read asks for a full
// refresh. It reports what it removed.
func (s *Source) DropSlot(ctx context.Context, entity string) ([]string, error) {
	name, ok := s.Slot(entity)
	if !ok {
		return nil, fmt.Errorf("entity %s of source %s is not in mode: cdc; it has no replication slot", entity, s.name)
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	var gone []string
	dropped, err := dropSlot(ctx, conn, name)
	if err != nil {
		return nil, s.redact(err)
	}
	if dropped {
		gone = append(gone, "replication slot "+name)
	}
	var pub bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1)", name).Scan(&pub); err != nil {
		return gone, s.redact(fmt.Errorf("looking up publication %s: %w", name, err))
	}
	if pub {
		if _, err := conn.Exec(ctx, "DROP PUBLICATION "+duck.Ident(name)); err != nil {
			return gone, s.redact(fmt.Errorf("dropping publication %s: %w", name, err))
		}
		gone = append(gone, "publication "+name)
	}
	return gone, nil
}

// readCDC starts a read of a cdc entity: the initial load, or the stream
// from the committed position.
func (s *Source) readCDC(ctx context.Context, ec *entityConfig, req extract.ReadRequest) (extract.Reader, error) {
	prev, err := decodePosition(req.Cursor)
	if err != nil {
		return nil, err
	}
	name := slotName(s.name, ec.entity.Name)
	if prev != nil && prev.Mode != modeCDC {
		return nil, fmt.Errorf("%s was read in %s mode so far and is now in mode: cdc; run a full refresh once (cdw extract --full-refresh) to load it afresh from a replication slot's snapshot, so that rows deleted meanwhile leave raw too",
			ec.what(), prev.Mode)
	}
	r := &cdcReader{src: s, ec: ec, batchRows: req.BatchRows}
	if prev != nil {
		if r.stream, err = s.openStream(ctx, ec, prev, req.BatchRows, 0); err != nil {
			return nil, err
		}
		return r, nil
	}
	if r.snap, r.start, err = s.initialLoad(ctx, ec, name, req.BatchRows); err != nil {
		return nil, err
	}
	return r, nil
}

// initialLoad creates the slot and starts reading the table in its
// exported snapshot; start is where the stream goes on.
func (s *Source) initialLoad(ctx context.Context, ec *entityConfig, name string, batchRows int) (*reader, *position, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	conns := []*pgx.Conn{conn}
	ok := false
	defer func() {
		if !ok {
			for _, c := range conns {
				c.Close(context.Background())
			}
		}
	}()
	if err := s.setupCDC(ctx, conn, ec, name); err != nil {
		return nil, nil, s.redact(err)
	}
	// A slot of this name without a committed position is what a first
	// load cut short leaves: its snapshot is gone, so it starts over.
	if dropped, err := dropSlot(ctx, conn, name); err != nil {
		return nil, nil, s.redact(err)
	} else if dropped {
		s.log.Info("dropped the replication slot of an initial load that did not finish; starting it over", "slot", name)
	}
	repl, err := s.connectReplication(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer repl.Close(context.Background())
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, name, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{SnapshotAction: "EXPORT_SNAPSHOT", Mode: pglogrepl.LogicalReplication})
	if err != nil {
		return nil, nil, s.redact(fmt.Errorf("creating replication slot %s on %s (needs the REPLICATION attribute and a free slot under max_replication_slots): %w", name, s.conn.Where, err))
	}
	failpoint.Hit("postgres.cdc.slot-created")
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return nil, nil, fmt.Errorf("replication slot %s: %w", name, err)
	}
	if conns[0], err = s.beginOn(ctx, conn, ec, res.SnapshotName); err != nil {
		conns = nil
		return nil, nil, err
	}
	p, spans, _, err := s.prepare(ctx, conns[0], ec, nil)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range p.notes {
		s.log.Warn("source schema: "+n, "entity", ec.entity.Name, "from", ec.what())
	}
	parts, err := split(ctx, conns[0], p, spans[0], nil, s.parallel*partsPerConnection)
	if err != nil {
		return nil, nil, s.redact(err)
	}
	if n := min(s.parallel, len(parts)); n > 1 {
		more, err := s.share(ctx, ec, res.SnapshotName, n-1)
		conns = append(conns, more...)
		if err != nil {
			s.log.Warn("reading the initial load on fewer connections", "connections", len(conns), "wanted", n, "err", err)
		}
	}
	// Every connection holds the snapshot now; the slot outlives repl.
	start := &position{V: positionVersion, Mode: modeCDC, Slot: name, LSN: lsn.String(), Columns: p.columns}
	s.log.Info("initial load from the replication slot's snapshot", "entity", ec.entity.Name, "slot", name, "lsn", start.LSN, "parts", len(parts))
	qctx, cancel := context.WithCancel(ctx)
	r := newReader(qctx, s, p, conns, parts, nil, cancel, batchRows)
	r.checkpointRows = math.MaxInt64 // see above: one commit, at the end
	r.final = start.encode()
	ok = true
	return r, start, nil
}

// cdcReader is the read of a cdc entity: the initial load, then the
// stream, or the stream alone.
type cdcReader struct {
	src       *Source
	ec        *entityConfig
	batchRows int
	snap      *reader   // the initial load, until it ends
	start     *position // where the stream after it starts
	stream    *stream

	mu    sync.Mutex
	acked pglogrepl.LSN // the newest committed checkpoint's LSN
}

var _ extract.Acknowledger = (*cdcReader)(nil)

func (c *cdcReader) Schema() *arrow.Schema {
	if c.snap != nil {
		return c.snap.Schema()
	}
	return c.stream.schema()
}

func (c *cdcReader) Next(ctx context.Context) (extract.Chunk, error) {
	if c.snap != nil {
		ch, err := c.snap.Next(ctx)
		if !errors.Is(err, io.EOF) {
			return ch, err
		}
		c.snap.Close()
		c.snap = nil
		c.mu.Lock()
		acked := c.acked
		c.mu.Unlock()
		st, err := c.src.openStream(ctx, c.ec, c.start, c.batchRows, acked)
		if err != nil {
			return extract.Chunk{}, err
		}
		c.mu.Lock()
		c.stream = st
		c.mu.Unlock()
	}
	return c.stream.next(ctx)
}

// Committed learns that a checkpoint is durable: the slot may be confirmed
// up to it.
func (c *cdcReader) Committed(checkpoint json.RawMessage) {
	p, err := decodePosition(checkpoint)
	if err != nil || p == nil || p.Mode != modeCDC {
		return
	}
	lsn, err := pglogrepl.ParseLSN(p.LSN)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.acked = max(c.acked, lsn)
	st := c.stream
	c.mu.Unlock()
	if st != nil {
		st.commit(lsn)
	}
}

// RetainedWAL reports the WAL the entity's slot held when the stream began.
func (c *cdcReader) RetainedWAL() (slot string, bytes, limit int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil {
		return "", 0, 0, false
	}
	return c.stream.slot, c.stream.retained, c.src.maxSlotWAL, true
}

func (c *cdcReader) Close() error {
	var errs []error
	if c.snap != nil {
		errs = append(errs, c.snap.Close())
	}
	c.mu.Lock()
	st := c.stream
	c.mu.Unlock()
	if st != nil {
		errs = append(errs, st.close())
	}
	return errors.Join(errs...)
}
