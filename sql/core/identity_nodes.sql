-- materialized: table
-- description: The nodes of the identity graph with dense integer ids 1..n,
--   which the Go model identity_components needs for its union-find arrays:
--   every contact, every customer id and every e-mail or phone a contact has.
--   Ids are internal: they may differ between runs, and nothing published
--   depends on them.
-- tests: unique(node), unique(id), not_null(id)
-- column: node: c:<source>:<contact_id>, i:<customer_id>, e:<email_norm> or p:<phone_norm>
-- column: id: dense id 1..n
-- The node list is materialized before it is deduplicated: DuckDB (1.5)
-- ran out of memory grouping straight from the union of the three scans
-- (43M distinct nodes at 100M order lines, memory_limit 2GB), while the
-- same GROUP BY over the materialized list spills.
WITH all_nodes AS MATERIALIZED (
    SELECT 'c:' || source || ':' || contact_id AS node FROM stg_contacts
    UNION ALL SELECT 'i:' || customer_id FROM identity_ids
    UNION ALL SELECT attr FROM identity_links
)
SELECT node, row_number() OVER () AS id
FROM (SELECT node FROM all_nodes GROUP BY node)
