package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cdwhq/cdw/extract"
)

// A table without a cursor is read whole every run and replaces its previous
// snapshot in raw (Snapshot). Most such tables (reference data, small
// dimensions) rarely change, so a run first asks PostgreSQL's statistics
// whether the table changed since the read that committed the last snapshot:
// the rows inserted, updated and deleted as counted by the server, the file
// each leaf relation is stored in (TRUNCATE, VACUUM FULL and CLUSTER give
// the table a new one; partitions coming or going change the list) and the
// columns. Equal counts mean nothing was committed since: the run adds
// nothing.
//
// The counts are read before the read's snapshot is taken, so a change
// counted there is in the snapshot, and a change the snapshot holds but the
// counts miss (statistics reach shared memory up to seconds after a commit)
// only makes the next run read again. A change is never hidden: it shows in
// the counts by the next run at the latest. Without track_counts the counts
// never move, so the check is not used; nor for a query:, a view or a
// foreign table, which have no counts.
const changesSQL = `SELECT CASE WHEN current_setting('track_counts')::bool THEN
  (SELECT string_agg(t.relid::text || ':' || pg_relation_filenode(t.relid)::text || ':' ||
          coalesce(s.n_tup_ins, 0)::text || ':' || coalesce(s.n_tup_upd, 0)::text || ':' || coalesce(s.n_tup_del, 0)::text, ',' ORDER BY t.relid)
   FROM (SELECT p.relid FROM pg_partition_tree($1::regclass) p WHERE p.isleaf AND c.relkind = 'p'
         UNION ALL SELECT c.oid::regclass WHERE c.relkind <> 'p') t
   LEFT JOIN pg_stat_all_tables s ON s.relid = t.relid
   WHERE pg_relation_filenode(t.relid) IS NOT NULL)
  || '/' || md5((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ',' ORDER BY attnum)
                 FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped))
END
FROM pg_class c WHERE c.oid = $1::regclass AND c.relkind IN ('r', 'p', 'm')`

// changeCounts returns the table's change fingerprint, "" when it has none.
func changeCounts(ctx context.Context, conn *pgx.Conn, ec *entityConfig) (string, error) {
	if ec.table == nil {
		return "", nil
	}
	var fp *string
	err := conn.QueryRow(ctx, changesSQL, ec.table.Sanitize()).Scan(&fp)
	if err == pgx.ErrNoRows || (err == nil && fp == nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the change counts of %s: %w", ec.what(), err)
	}
	return *fp, nil
}

var _ extract.ChangeDetector = (*Source)(nil)

// Unchanged reports whether a table read without a cursor has the change
// counts the last committed snapshot of it was read with.
func (s *Source) Unchanged(ctx context.Context, entity string, cursor json.RawMessage) (bool, error) {
	ec, err := s.entity(entity)
	if err != nil || ec.cursor != "" {
		return false, err
	}
	prev, err := decodePosition(cursor)
	if err != nil || prev == nil || prev.Mode != modeFull || !prev.Done || prev.Changes == "" {
		return false, err
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	now, err := changeCounts(ctx, conn, ec)
	if err != nil {
		return false, s.redact(err)
	}
	return now == prev.Changes, nil
}
