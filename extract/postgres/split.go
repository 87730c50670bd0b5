package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultParallel is how many connections read a large table at once. One
// backend formats rows at about the speed one client core decodes them, so on
// a read of millions of rows two backends on one snapshot nearly halve the
// server's share of the wall time.
const DefaultParallel = 2

// splitMinRows: a read estimated to return fewer rows stays whole, since the
// second connection and the sample would cost more than they save. A
// variable so that tests can split small tables.
var splitMinRows int64 = 250_000

// samplePages is about how many table pages the split samples: enough for
// even parts (about 1 % apart on a table of 80 rows a page), little enough
// to cost milliseconds.
const samplePages = 300

// split divides sp into up to n consecutive spans of the By order holding
// about as many rows each, cut at rows of a sample of the table's pages
// (TABLESAMPLE SYSTEM) that the read would return. A read of a query, a view
// or a foreign table, without an order, or estimated under splitMinRows
// stays whole.
func split(ctx context.Context, conn *pgx.Conn, p *plan, sp span, cutoff []byte, n int) ([]span, error) {
	whole := []span{sp}
	if n < 2 || p.ent.table == nil || len(p.by) == 0 {
		return whole, nil
	}
	// A partitioned table is sampled through its partitions: its pages are
	// theirs. Views and foreign tables have no pages to sample.
	var kind string
	var pages int64
	err := conn.QueryRow(ctx, `SELECT c.relkind::text,
       CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t)
            ELSE pg_relation_size(c.oid) END / current_setting('block_size')::bigint
FROM pg_class c WHERE c.oid = $1::regclass`, p.ent.table.Sanitize()).Scan(&kind, &pages)
	if err != nil {
		return nil, fmt.Errorf("sizing %s to split its read: %w", p.ent.what(), err)
	}
	if kind != "r" && kind != "m" && kind != "p" {
		return whole, nil
	}
	pct := 100.0
	if pages > samplePages {
		pct = 100 * float64(samplePages) / float64(pages)
	}
	texts := make([]string, len(p.by))
	for i, b := range p.by {
		texts[i] = quote(b) + "::text"
	}
	where, args := p.where(sp, cutoff)
	sql := "SELECT " + strings.Join(texts, ", ") + " FROM " + p.ent.from() +
		" TABLESAMPLE SYSTEM (" + strconv.FormatFloat(pct, 'f', -1, 64) + ") REPEATABLE (0)" + where +
		" ORDER BY " + quoteList(p.by)
	res := conn.PgConn().ExecParams(ctx, sql, args, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, fmt.Errorf("sampling %s to split its read: %w", p.ent.what(), res.Err)
	}
	m := len(res.Rows)
	if float64(m)*100/pct < float64(splitMinRows) {
		return whole, nil
	}
	spans := make([]span, 0, n)
	lo := sp.After
	for i := 1; i < n; i++ {
		row := res.Rows[m*i/n]
		cut := make([]*string, len(row))
		for j, v := range row {
			if v == nil {
				return whole, nil // a NULL compares as unknown: rows beside it would fall out of both parts
			}
			s := string(v)
			cut[j] = &s
		}
		if slices.EqualFunc(cut, lo, func(a, b *string) bool { return *a == *b }) {
			continue
		}
		spans = append(spans, span{After: lo, Upto: cut})
		lo = cut
	}
	return append(spans, span{After: lo, Upto: sp.Upto}), nil
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
	return "SET TRANSACTION SNAPSHOT '" + strings.ReplaceAll(id, "'", "''") + "'"
}
