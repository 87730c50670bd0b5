package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cdwhq/cdw/internal/duck"
)

// DefaultParallel is how many connections read a large table at once. One
// backend formats rows at about the speed one client core decodes them, so on
// a read of millions of rows two backends on one snapshot nearly halve the
// server's share of the wall time.
const DefaultParallel = 2

// partsPerConnection: a split read has a few parts per connection, taken in
// turn by whichever connection is free, so that a part the sample made too
// large delays the end of the read by a fraction of a part, not by the
// difference itself.
const partsPerConnection = 4

// splitMinRows: a read estimated to return fewer rows stays whole, since the
// second connection and the sample would cost more than they save. A
// variable so that tests can split small tables.
var splitMinRows int64 = 250_000

// samplePages is about how many table pages the split samples. Rows on one
// page tend to be close in cursor order, so the sample is worth about as
// many rows as pages: 1000 put the parts within a few percent of even, for
// about 10 ms.
const samplePages = 1000

// split divides sp into up to n consecutive spans of the By order holding
// about as many rows each, cut at rows of a sample of the table's pages
// (TABLESAMPLE SYSTEM) that the read would return. A read of a query, a view
// or a foreign table, without an order, or estimated under splitMinRows
// stays whole.
func split(ctx context.Context, conn *pgx.Conn, p *plan, sp span, cutoff []byte, n int) ([]span, error) {
	whole := []span{sp}
	if n < 2 || len(p.by) == 0 {
		return whole, nil
	}
	from, ok, err := sampleFrom(ctx, conn, p)
	if err != nil || !ok {
		return whole, err
	}
	// The server cuts the sample in n tiles and returns the last row of each
	// (and the sample's size): n rows, not the whole sample.
	by := duck.Idents(p.by)
	texts := make([]string, len(p.by))
	desc := make([]string, len(p.by))
	for i, b := range p.by {
		texts[i] = duck.Ident(b) + "::text"
		desc[i] = duck.Ident(b) + " DESC"
	}
	where, args := p.where(sp, cutoff)
	sql := "SELECT DISTINCT ON (cdw_part) " + strings.Join(texts, ", ") + ", cdw_rows FROM (SELECT " + by +
		", ntile(" + strconv.Itoa(n) + ") OVER (ORDER BY " + by + ") AS cdw_part, count(*) OVER () AS cdw_rows FROM " + from.sql + where +
		") s ORDER BY cdw_part, " + strings.Join(desc, ", ")
	res := conn.PgConn().ExecParams(ctx, sql, args, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, fmt.Errorf("sampling %s to split its read: %w", p.ent.what(), res.Err)
	}
	if len(res.Rows) == 0 {
		return whole, nil
	}
	m, err := strconv.Atoi(string(res.Rows[0][len(p.by)]))
	if err != nil || from.estimate(m) < splitMinRows {
		return whole, nil
	}
	spans := make([]span, 0, n)
	lo := sp.After
	for _, row := range res.Rows[:len(res.Rows)-1] {
		cut := make([]*string, len(p.by))
		for j, v := range row[:len(p.by)] {
			if v == nil {
				return whole, nil // a NULL compares as unknown: rows beside it would fall out of both parts
			}
			s := string(v)
			cut[j] = &s
		}
		spans = append(spans, span{After: lo, Upto: cut})
		lo = cut
	}
	return append(spans, span{After: lo, Upto: sp.Upto}), nil
}

// sample is a FROM item over about samplePages pages of a table.
type sample struct {
	sql string
	pct float64
}

// estimate scales rows of the sample to the table.
func (s sample) estimate(rows int) int64 { return int64(float64(rows) * 100 / s.pct) }

// sampleFrom samples the entity's table; ok is false for a query, a view or
// a foreign table, which have no pages to sample.
func sampleFrom(ctx context.Context, conn *pgx.Conn, p *plan) (sample, bool, error) {
	if p.ent.table == nil {
		return sample{}, false, nil
	}
	// A partitioned table is sampled through its partitions: its pages are
	// theirs.
	var kind string
	var pages int64
	err := conn.QueryRow(ctx, `SELECT c.relkind::text,
       CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t)
            ELSE pg_relation_size(c.oid) END / current_setting('block_size')::bigint
FROM pg_class c WHERE c.oid = $1::regclass`, p.ent.table.Sanitize()).Scan(&kind, &pages)
	if err != nil {
		return sample{}, false, fmt.Errorf("sizing %s to sample it: %w", p.ent.what(), err)
	}
	if kind != "r" && kind != "m" && kind != "p" {
		return sample{}, false, nil
	}
	s := sample{pct: 100}
	if pages > samplePages {
		s.pct = 100 * float64(samplePages) / float64(pages)
	}
	s.sql = p.ent.from() + " TABLESAMPLE SYSTEM (" + strconv.FormatFloat(s.pct, 'f', -1, 64) + ") REPEATABLE (0)"
	return s, true, nil
}

// exportSnapshot names the snapshot of conn's transaction, for the other
// connections of a split read to share. It fails inside a subtransaction, so
// a failure cannot be caught with a savepoint (see exportOrRestart).
func exportSnapshot(ctx context.Context, conn *pgx.Conn) (string, error) {
	var id string
	if err := conn.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&id); err != nil {
		return "", fmt.Errorf("exporting the read's snapshot: %w", err)
	}
	return id, nil
}

// snapshotSQL sets a new transaction's snapshot to an exported one.
func snapshotSQL(id string) string {
	return "SET TRANSACTION SNAPSHOT " + duck.Literal(id)
}
