package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// A cursor alone skips commits: a transaction that wrote a row with a cursor
// value at or before the committed position, but committed after the read
// that moved the position there (a long transaction stamping now() at its
// start, a bigserial drawn before a concurrent one, a back-dated value), is
// behind the cursor for good. So every incremental read of a table also
// remembers its snapshot's horizon: the transactions it did not see. The next
// read adds a part for the rows at or before the position that were written by
// one of those (the late part, span.Unseen), whatever their cursor value.
//
// pg_current_snapshot lists the top-level transactions in progress, not their
// subtransactions (savepoints, PL/pgSQL exception blocks), whose ids the rows
// they write carry; a released savepoint even gives up the lock on its id. So
// right after the snapshot the read asks the server which ids between the
// snapshot's xmin and xmax that it does not list are still in progress: those
// are subtransactions of a transaction in progress. A transaction of the
// snapshot that ended before that question may have had subtransactions that
// no longer answer "in progress": for those the horizon ends at the
// transaction's id, so everything from there on counts as not seen (a few
// rows of the last moments may then be read twice; none are lost). The same
// holds beyond maxHorizonIDs ids, and on a hot standby, whose snapshots list
// no transactions: there the horizon is the snapshot's xmin.

// maxHorizonIDs bounds the transaction ids whose status a read asks for:
// about as many as a transaction open for a few minutes on a busy server
// spans (0.1 s of server time per 100k).
const maxHorizonIDs = 1_000_000

// horizon is what one read saw: the pg_snapshot text to commit (rows of
// transactions it does not count as seen may still come), and the read's
// own snapshot xmax as text, against which 32-bit row xids get their epoch.
type horizon struct {
	seen string
	xmax string
}

// readHorizon captures the horizon of conn's transaction, whose snapshot is
// taken by now (the read's first statement has run).
func readHorizon(ctx context.Context, conn *pgx.Conn) (horizon, error) {
	var snap string
	var standby bool
	if err := conn.QueryRow(ctx, "SELECT pg_current_snapshot()::text, pg_is_in_recovery()").Scan(&snap, &standby); err != nil {
		return horizon{}, fmt.Errorf("reading the snapshot's horizon: %w", err)
	}
	xmin, xmax, xip, err := parseSnapshot(snap)
	if err != nil {
		return horizon{}, err
	}
	if standby || xmax-xmin > maxHorizonIDs {
		return makeHorizon(xmin, xmax, xip, nil, []uint64{xmin}), nil
	}
	var sub, ended []uint64
	if xmax-xmin > uint64(len(xip)) {
		// Subtransactions first, then whether their parents still run: a
		// parent running now ran when its subtransactions were asked about.
		err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(x), '{}') FROM generate_series($1::bigint, $2::bigint - 1) x
WHERE x <> ALL ($3::bigint[]) AND pg_xact_status(x::text::xid8) = 'in progress'`, int64(xmin), int64(xmax), toInt64s(xip)).Scan(&sub)
		if err != nil {
			return horizon{}, fmt.Errorf("reading the snapshot's horizon: %w", err)
		}
	}
	if len(xip) > 0 {
		err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(x), '{}') FROM unnest($1::bigint[]) x
WHERE pg_xact_status(x::text::xid8) IS DISTINCT FROM 'in progress'`, toInt64s(xip)).Scan(&ended)
		if err != nil {
			return horizon{}, fmt.Errorf("reading the snapshot's horizon: %w", err)
		}
	}
	return makeHorizon(xmin, xmax, xip, sub, ended), nil
}

// makeHorizon is the snapshot xmin:xmax:xip widened by the subtransactions
// in progress (sub) and cut short at the first transaction that ended before
// they were listed.
func makeHorizon(xmin, xmax uint64, xip, sub, ended []uint64) horizon {
	end := xmax // ids from end on count as not seen
	for _, x := range ended {
		end = min(end, max(x, xmin))
	}
	var unseen []uint64
	for _, x := range slices.Concat(xip, sub) {
		if x >= xmin && x < end {
			unseen = append(unseen, x)
		}
	}
	slices.Sort(unseen)
	unseen = slices.Compact(unseen)
	ids := make([]string, len(unseen))
	for i, x := range unseen {
		ids[i] = strconv.FormatUint(x, 10)
	}
	seen := strconv.FormatUint(xmin, 10) + ":" + strconv.FormatUint(end, 10) + ":" + strings.Join(ids, ",")
	return horizon{seen: seen, xmax: strconv.FormatUint(xmax, 10)}
}

func toInt64s(xs []uint64) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(x)
	}
	return out
}

// parseSnapshot splits pg_snapshot's text form.
func parseSnapshot(s string) (xmin, xmax uint64, xip []uint64, err error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, 0, nil, fmt.Errorf("reading the snapshot's horizon: unexpected snapshot %q", s)
	}
	xmin, err1 := strconv.ParseUint(parts[0], 10, 64)
	xmax, err2 := strconv.ParseUint(parts[1], 10, 64)
	if err1 != nil || err2 != nil || xmin > xmax {
		return 0, 0, nil, fmt.Errorf("reading the snapshot's horizon: unexpected snapshot %q", s)
	}
	if parts[2] != "" {
		for _, p := range strings.Split(parts[2], ",") {
			x, err := strconv.ParseUint(p, 10, 64)
			if err != nil {
				return 0, 0, nil, fmt.Errorf("reading the snapshot's horizon: unexpected snapshot %q", s)
			}
			xip = append(xip, x)
		}
	}
	return xmin, xmax, xip, nil
}

// unseenSQL is true for a row written by a transaction its horizon did not
// see; its parameters are the horizon (hp), its xmin's low 32 bits (kp), and
// the reading snapshot's xmax (xp). The cheap test comes first: a row whose
// xmin is older than the horizon's, by age() within this transaction, was
// seen (age is exact for every id not frozen, all within 2^31 of now; the
// special frozen ids have the largest age). Only younger rows pay for
// pg_visible_in_snapshot, their 32-bit xmin given its epoch against xp: the
// newest full id at or below it with those low bits.
func unseenSQL(xp, hp, kp string) string {
	return "(age(src.xmin) <= (SELECT age(" + kp + "::xid)) AND NOT pg_visible_in_snapshot(greatest(" + xp + "::bigint - ((" + xp +
		"::bigint - src.xmin::text::bigint) & 4294967295), 0)::text::xid8, " + hp + "::pg_snapshot))"
}

// xminLow is the horizon's xmin as a 32-bit transaction id, for unseenSQL.
func xminLow(seen string) []byte {
	xmin, _, _, err := parseSnapshot(seen)
	if err != nil {
		return []byte("0") // committed by this code, so never: every row then takes the exact test
	}
	return []byte(strconv.FormatUint(xmin&0xffffffff, 10))
}

// horizonKind says whether rows of the entity's relation carry their
// transaction id (xmin): tables, partitioned tables and materialized views
// do; views, foreign tables and query: results do not.
func horizonKind(ctx context.Context, conn *pgx.Conn, ec *entityConfig) (bool, error) {
	if ec.table == nil {
		return false, nil
	}
	major, _, _ := strings.Cut(conn.PgConn().ParameterStatus("server_version"), ".")
	if v, err := strconv.Atoi(major); err == nil && v < 13 {
		return false, nil // pg_current_snapshot and pg_visible_in_snapshot are PostgreSQL 13+
	}
	var kind string
	if err := conn.QueryRow(ctx, "SELECT relkind::text FROM pg_class WHERE oid = $1::regclass", ec.table.Sanitize()).Scan(&kind); err != nil {
		return false, fmt.Errorf("looking up %s: %w", ec.what(), err)
	}
	return kind == "r" || kind == "p" || kind == "m", nil
}
