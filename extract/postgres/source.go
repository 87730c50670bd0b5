// Package postgres is the "postgres" source kind: it extracts entities from
// PostgreSQL tables or queries, in full or incrementally by a cursor column,
// streaming rows into Arrow records of exact types (numeric stays decimal,
// timestamptz stays a UTC instant).
//
// Each read is one REPEATABLE READ, READ ONLY transaction on its own
// connection; rows stream in binary through pgx's low-level protocol reader
// and are decoded straight into Arrow builders, so memory stays flat however
// large the table is. Import the package for its side effect of registering
// the kind:
//
//	import _ "github.com/cdwhq/cdw/extract/postgres"
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cdwhq/cdw/extract"
)

// KindName is the kind under which sources of this package are configured.
const KindName = "postgres"

// countTimeout bounds the row count done for a progress ETA: on a huge table
// without a usable index an exact count costs a full scan, and the ETA is not
// worth that.
const countTimeout = 30 * time.Second

func init() {
	extract.Register(extract.Kind{
		Name:     KindName,
		Doc:      "PostgreSQL tables or queries, full or incremental by a cursor column (updated_at, id), with exact types",
		Open:     Open,
		Entities: extract.EntitiesKey,
	})
}

// Source is an open postgres source. It holds settings only: every Read and
// Count opens its own connection, so a server restart between reads needs no
// reconnect logic.
type Source struct {
	name           string
	conn           connSettings
	lag            time.Duration
	checkpointRows int64
	parallel       int
	entities       map[string]*entityConfig
	maxSlotWAL     int64 // bytes; a slot holding more is warned about
	log            *slog.Logger
}

var (
	_ extract.Source      = (*Source)(nil)
	_ extract.Counter     = (*Source)(nil)
	_ extract.Snapshotter = (*Source)(nil)
)

// Open validates a postgres source's settings (see README.md). It does not
// connect: a server that is down fails the read that needs it, naming it.
func Open(ctx context.Context, cfg extract.SourceConfig) (extract.Source, error) {
	o, cs, ents, err := parseOptions(cfg.Options)
	if err != nil {
		return nil, err
	}
	s := &Source{
		name:           cfg.Name,
		conn:           cs,
		lag:            DefaultSafetyLag,
		checkpointRows: DefaultCheckpointRows,
		parallel:       DefaultParallel,
		entities:       ents,
		log:            slog.Default().With("source", cfg.Name),
	}
	if o.SafetyLag != nil {
		s.lag = *o.SafetyLag
	}
	if o.CheckpointRows > 0 {
		s.checkpointRows = o.CheckpointRows
	}
	if o.Parallel > 0 {
		s.parallel = o.Parallel
	}
	s.maxSlotWAL = DefaultMaxSlotWAL
	if o.MaxSlotWAL != "" {
		s.maxSlotWAL, _ = parseSize(o.MaxSlotWAL) // checked by parseOptions
	}
	return s, nil
}

// Entities lists the configured entities.
func (s *Source) Entities() []string {
	names := make([]string, 0, len(s.entities))
	for n := range s.entities {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close releases nothing: connections live only as long as a read.
func (s *Source) Close() error { return nil }

// Snapshot reports whether an entity is read without a cursor (full mode), so
// the runner replaces its raw files on each run instead of appending copies.
func (s *Source) Snapshot(entity string) bool {
	ec, err := s.entity(entity)
	return err == nil && ec.cursor == "" && !ec.cdc
}

func (s *Source) entity(name string) (*entityConfig, error) {
	ec, ok := s.entities[name]
	if !ok {
		return nil, fmt.Errorf("entity %s is not configured for postgres source %s (configured: %v)", name, s.name, s.Entities())
	}
	return ec, nil
}

// begin connects and starts the read's transaction on ec: one snapshot for
// the whole read, and a guarantee that a query: cannot write. With a snapshot
// id (exportSnapshot), the transaction shares that snapshot.
func (s *Source) begin(ctx context.Context, ec *entityConfig, snapshot string) (*pgx.Conn, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	return s.beginOn(ctx, conn, ec, snapshot)
}

// beginOn starts the read's transaction on an open connection (see begin);
// it closes the connection when that fails.
func (s *Source) beginOn(ctx context.Context, conn *pgx.Conn, ec *entityConfig, snapshot string) (*pgx.Conn, error) {
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		conn.Close(context.Background())
		return nil, s.redact(fmt.Errorf("starting a read-only transaction on %s: %w", s.conn.Where, err))
	}
	if snapshot != "" {
		if _, err := conn.Exec(ctx, snapshotSQL(snapshot)); err != nil {
			conn.Close(context.Background())
			return nil, s.redact(fmt.Errorf("sharing the read's snapshot on %s: %w", s.conn.Where, err))
		}
	}
	// A read of a table streams in (cursor, key) order from the index on
	// those columns. For a part of a split read the planner would rather sort
	// a bitmap scan in parallel workers: the first row waits for the sort,
	// the sort spills to disk, and the workers take the cores the other parts
	// need. Without the index the server still sorts: these only weigh the
	// choice. A query: is the user's to plan, so it keeps the defaults.
	if ec.table != nil {
		if _, err := conn.Exec(ctx, "SET LOCAL enable_sort = off; SET LOCAL max_parallel_workers_per_gather = 0"); err != nil {
			conn.Close(context.Background())
			return nil, s.redact(fmt.Errorf("setting up the read on %s: %w", s.conn.Where, err))
		}
	}
	return conn, nil
}

// prepare describes the entity's source and plans the read: the spans of the
// By order it reads, and the newest cursor value it takes (nil unless the
// cursor is a timestamp).
func (s *Source) prepare(ctx context.Context, conn *pgx.Conn, ec *entityConfig, cursor []byte) (*plan, []span, []byte, error) {
	prev, err := decodePosition(cursor)
	if err != nil {
		return nil, nil, nil, err
	}
	fields, err := describe(ctx, conn, ec)
	if err != nil {
		return nil, nil, nil, s.redact(err)
	}
	p, err := makePlan(ec, fields, prev)
	if err != nil {
		return nil, nil, nil, err
	}
	spans, err := prev.resume(p.mode, p.by)
	if err != nil {
		return nil, nil, nil, err
	}
	if p.mode == modeIncremental {
		if spans, err = s.planHorizon(ctx, conn, ec, p, prev, spans); err != nil {
			return nil, nil, nil, s.redact(err)
		}
	}
	var cutoff []byte
	if p.lag {
		var t string
		if err := conn.QueryRow(ctx, cutoffSQL, lagArg(s.lag)).Scan(&t); err != nil {
			return nil, nil, nil, s.redact(fmt.Errorf("reading the server's clock on %s: %w", s.conn.Where, err))
		}
		cutoff = []byte(t)
	}
	return p, spans, cutoff, nil
}

// planHorizon reads the snapshot's horizon for an incremental read of a
// table and adds the late part to a read from a plain position (horizon.go).
func (s *Source) planHorizon(ctx context.Context, conn *pgx.Conn, ec *entityConfig, p *plan, prev *position, spans []span) ([]span, error) {
	ok, err := horizonKind(ctx, conn, ec)
	if err != nil {
		return nil, err
	}
	if !ok {
		p.notes = append(p.notes, "the cursor of "+ec.what()+" cannot see transactions that commit after a read with older cursor values "+
			"(a view, foreign table or query: has no row transaction ids); only safety_lag protects them")
		return spans, nil
	}
	h, err := readHorizon(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ec.what(), err)
	}
	p.xmax, p.horizon = h.xmax, h.seen
	switch {
	case len(spans) > 1 && prev.Horizon != "":
		// A split read cut short: its finished parts hold what its first
		// attempt saw, so the rest takes the same rows, and rows committed
		// since are the next read's late part.
		p.horizon, p.seenIn, p.commitEmpty = prev.Horizon, prev.Horizon, true
	case len(spans) > 1:
		p.commitEmpty = true
	default:
		p.commitEmpty = prev != nil && prev.Horizon == "" && len(spans[0].After) > 0
		spans = prev.lateSpans(spans)
	}
	return spans, nil
}

// CountInBackground says Count may run beside Read: each has its own
// connection, so the count does not delay the read.
func (s *Source) CountInBackground() bool { return true }

// Count returns about how many rows Read would return now, for the progress
// ETA: from a sample of the table when that finds many, else exactly. A split
// read cut short counts from its first unfinished part on.
func (s *Source) Count(ctx context.Context, req extract.ReadRequest) (int64, error) {
	ec, err := s.entity(req.Entity.Name)
	if err != nil {
		return 0, err
	}
	if ec.cdc {
		return 0, errors.New("a cdc read does not know its changes before it streams them")
	}
	conn, err := s.begin(ctx, ec, "")
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET LOCAL statement_timeout = "+strconv.FormatInt(countTimeout.Milliseconds(), 10)); err != nil {
		return 0, s.redact(fmt.Errorf("limiting the count of %s: %w", ec.what(), err))
	}
	p, spans, cutoff, err := s.prepare(ctx, conn, ec, req.Cursor)
	if err != nil {
		return 0, err
	}
	from := span{}
	if i := slices.IndexFunc(spans, func(sp span) bool { return !sp.Done && sp.Unseen == "" }); i >= 0 {
		from.After = spans[i].After
	}
	// A large read is counted from a sample: an exact count scans what the
	// read is about to scan, on the server the read needs (a tenth of the
	// read's own server time on the benchmark's orders table).
	if smp, ok, err := sampleFrom(ctx, conn, p); err == nil && ok {
		where, args := p.where(from, cutoff)
		res := conn.PgConn().ExecParams(ctx, "SELECT count(*) FROM "+smp.sql+where, args, nil, nil, nil).Read()
		if res.Err == nil && len(res.Rows) == 1 && len(res.Rows[0]) == 1 {
			if n, err := strconv.Atoi(string(res.Rows[0][0])); err == nil {
				if est := smp.estimate(n); est >= splitMinRows {
					return est, nil
				}
			}
		}
	}
	sql, args := p.countSQL(from, cutoff)
	res := conn.PgConn().ExecParams(ctx, sql, args, nil, nil, nil).Read()
	if res.Err != nil {
		return 0, s.redact(fmt.Errorf("counting rows of %s: %w", ec.what(), res.Err))
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return 0, fmt.Errorf("counting rows of %s: unexpected result", ec.what())
	}
	return strconv.ParseInt(string(res.Rows[0][0]), 10, 64)
}

// Read starts streaming the entity's rows after req.Cursor. A large table is
// split into parts read on up to `parallel` connections at once, all sharing
// the first connection's snapshot.
func (s *Source) Read(ctx context.Context, req extract.ReadRequest) (extract.Reader, error) {
	ec, err := s.entity(req.Entity.Name)
	if err != nil {
		return nil, err
	}
	if ec.cdc {
		return s.readCDC(ctx, ec, req)
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	// A table read whole notes its change counts before the snapshot is
	// taken (changes.go); a read resumed keeps those of its first attempt.
	var changes string
	if ec.cursor == "" {
		if changes, err = changeCounts(ctx, conn, ec); err != nil {
			conn.Close(context.Background())
			return nil, s.redact(err)
		}
		if prev, _ := decodePosition(req.Cursor); prev != nil && prev.Mode == modeFull && !prev.Done && prev.Changes != "" {
			changes = prev.Changes
		}
	}
	if conn, err = s.beginOn(ctx, conn, ec, ""); err != nil {
		return nil, err
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
	log := s.log.With("entity", ec.entity.Name)
	// The snapshot is exported first, while a refusal costs nothing: it
	// aborts the transaction.
	var snapshot string
	if s.parallel > 1 && ec.table != nil {
		if snapshot, err = s.exportOrRestart(ctx, conn, log); err != nil {
			return nil, err
		}
	}
	p, spans, cutoff, err := s.prepare(ctx, conn, ec, req.Cursor)
	if err != nil {
		return nil, err
	}
	p.changes = changes
	for _, n := range p.notes {
		log.Warn("source schema: "+n, "from", ec.what())
	}
	if last := len(spans) - 1; last == 0 || (last == 1 && spans[0].Unseen != "" && p.seenIn == "") {
		// A new read: split the part after the position (a late part
		// before it stays whole; it is a scan of the table either way).
		parts, err := split(ctx, conn, p, spans[last], cutoff, s.parallel*partsPerConnection)
		if err != nil {
			return nil, s.redact(err)
		}
		spans = append(spans[:last:last], parts...)
	}
	if n := min(s.parallel, unfinished(spans)); n > 1 && snapshot != "" {
		more, err := s.share(ctx, ec, snapshot, n-1)
		conns = append(conns, more...)
		if err != nil {
			log.Warn("reading the parts of a large read on fewer connections", "connections", len(conns), "wanted", n, "err", err)
		}
	}
	log.Debug("reading", "from", ec.what(), "mode", p.mode, "parts", len(spans), "connections", len(conns))
	qctx, cancel := context.WithCancel(ctx)
	r := newReader(qctx, s, p, conns, spans, cutoff, cancel, req.BatchRows)
	ok = true
	return r, nil
}

// exportOrRestart exports the snapshot of conn's new transaction, for the
// other connections of a split read. Where the server refuses (a hot standby
// of an old version, say), the read goes on on one connection, in a fresh
// transaction: the refusal aborted this one, before it read anything.
func (s *Source) exportOrRestart(ctx context.Context, conn *pgx.Conn, log *slog.Logger) (string, error) {
	id, err := exportSnapshot(ctx, conn)
	if err == nil {
		return id, nil
	}
	log.Warn("reading on one connection: the server did not export the read's snapshot", "err", s.redact(err))
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		return "", s.redact(fmt.Errorf("restarting the read's transaction on %s: %w", s.conn.Where, err))
	}
	if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return "", s.redact(fmt.Errorf("restarting the read's transaction on %s: %w", s.conn.Where, err))
	}
	return "", nil
}

// share opens up to n more connections on an exported snapshot. A server out
// of connections for this role leaves the read with the connections it has:
// one connection reads the parts in turn.
func (s *Source) share(ctx context.Context, ec *entityConfig, snapshot string, n int) ([]*pgx.Conn, error) {
	var conns []*pgx.Conn
	for range n {
		c, err := s.begin(ctx, ec, snapshot)
		if err != nil {
			return conns, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}
