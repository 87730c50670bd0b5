-- materialized: table
-- early_cutoff: true
-- description: Every explicit customer id seen in contacts, orders or
--   tickets (up to var as_of when set), with the entities it appears in. An
--   id used only by orders or tickets still becomes a customer.
-- tests: unique(customer_id), not_null(seen_in)
-- column: customer_id: the source systems' customer id
-- column: seen_in: the entities the id appears in, comma-separated (contacts, orders, tickets)
-- Plain DISTINCT and bool_or, not string_agg(DISTINCT … ORDER BY …): an ordered
-- aggregate keeps every group's values in memory, which ran out of memory at
-- 100M order lines; these spill to disk.
WITH seen AS (
    SELECT customer_id, bool_or(entity = 1) AS in_contacts, bool_or(entity = 2) AS in_orders,
           bool_or(entity = 3) AS in_tickets
    -- with var as_of (a backtest's cutoff), only ids seen by then
    FROM (SELECT DISTINCT customer_id, 1 AS entity FROM stg_contacts WHERE customer_id IS NOT NULL
          UNION ALL SELECT DISTINCT customer_id, 2 FROM stg_orders WHERE customer_id IS NOT NULL
              AND (CAST({{ var('as_of', NULL) }} AS DATE) IS NULL OR order_date <= CAST({{ var('as_of', NULL) }} AS DATE))
          UNION ALL SELECT DISTINCT customer_id, 3 FROM stg_tickets WHERE customer_id IS NOT NULL
              AND (CAST({{ var('as_of', NULL) }} AS DATE) IS NULL OR created_at IS NULL
                   OR timezone({{ var('timezone', 'UTC') }}, created_at)::DATE <= CAST({{ var('as_of', NULL) }} AS DATE)))
    GROUP BY customer_id
)
SELECT customer_id,
       concat_ws(',', CASE WHEN in_contacts THEN 'contacts' END, CASE WHEN in_orders THEN 'orders' END,
                 CASE WHEN in_tickets THEN 'tickets' END) AS seen_in
FROM seen
