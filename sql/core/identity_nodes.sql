-- materialized: table
-- description: The nodes of the identity graph with dense integer ids 1..n,
--   which the Go model identity_components needs for its union-find arrays:
--   every contact, every customer id and every e-mail or phone a contact has.
--   Ids are internal: they may differ between runs, and nothing published
--   depends on them.
-- tests: unique(node), unique(id), not_null(id)
-- column: node: c:<source>:<contact_id>, i:<customer_id>, e:<email_norm> or p:<phone_norm>
-- column: id: dense id 1..n
SELECT node, row_number() OVER () AS id
FROM (SELECT 'c:' || source || ':' || contact_id AS node FROM stg_contacts
      UNION SELECT 'i:' || customer_id FROM identity_ids
      UNION SELECT attr FROM identity_links)
