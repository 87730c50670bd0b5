-- materialized: incremental
-- unique_key: entity, source, file
-- description: Keys that occur more than once within one raw file (one
--   extract batch): an export that lists an order line, ticket or contact
--   twice. Staging keeps one row per key by the rule in winning_rule; this
--   table lets the run count and name them (one row per file with
--   duplicates). Incremental: the files of each new batch are counted; a
--   re-exported file replaces its counts. Keyed by the source file, not the
--   raw batch, so a rerun from scratch gives the same table.
-- tests: not_null(keys)
-- column: entity: orders, tickets or contacts
-- column: source: the source
-- column: file: the source file the rows came from (file sources; empty for databases and APIs)
-- column: keys: keys that occur more than once in the file
-- column: extra_rows: rows beyond the first of each such key
-- column: example: one duplicated key, e.g. order_id/line_no
-- column: winning_rule: which row of a key staging keeps
WITH dups AS (
    SELECT 'orders' AS entity, _source, coalesce(_source_file, '') AS _file, order_id || '/' || coalesce(line_no::VARCHAR, '') AS k, count(*) AS n
    FROM {{ new_rows('raw.orders') }}
    GROUP BY ALL HAVING count(*) > 1
    UNION ALL
    SELECT 'tickets', _source, coalesce(_source_file, ''), ticket_id, count(*)
    FROM {{ new_rows('raw.tickets') }}
    WHERE NOT list_contains(string_split({{ var('ticket_event_sources', '') }}, ','), _source)  -- events repeat ids by design
    GROUP BY ALL HAVING count(*) > 1
    UNION ALL
    SELECT 'contacts', _source, coalesce(_source_file, ''), contact_id, count(*)
    FROM {{ new_rows('raw.contacts') }}
    GROUP BY ALL HAVING count(*) > 1
)
SELECT entity, _source AS source, _file AS file, count(*) AS keys, sum(n - 1)::BIGINT AS extra_rows, min(k) AS example,
       'the latest updated_at, then the later file, then the later line of the file' AS winning_rule
FROM dups
GROUP BY ALL
