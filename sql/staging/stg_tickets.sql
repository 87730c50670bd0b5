-- materialized: table
-- description: Service tickets, the latest version of each ticket only.
-- tests: not_null(ticket_id), unique(source, ticket_id)
WITH ranked AS (
    SELECT *,
           row_number() OVER (PARTITION BY _source, ticket_id
                              ORDER BY updated_at DESC NULLS LAST, _file DESC) AS _rn
    FROM raw.tickets
)
SELECT
    _source                                 AS source,
    ticket_id,
    nullif(trim(customer_id), '')           AS customer_id,
    created_at,
    resolved_at,
    lower(coalesce(status, CASE WHEN resolved_at IS NULL THEN 'open' ELSE 'resolved' END)) AS status,
    lower(coalesce(priority, 'normal'))     AS priority,
    lower(coalesce(category, 'other'))      AS category,
    satisfaction,
    business_unit,
    channel,
    updated_at
FROM ranked
WHERE _rn = 1 AND NOT coalesce(deleted, false)
