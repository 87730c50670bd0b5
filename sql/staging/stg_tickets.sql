-- materialized: table
-- description: Service tickets, the latest version of each ticket only
--   (updates replace, soft deletes remove).
-- tests: not_null(ticket_id), unique(source, ticket_id)
-- column: status: lower case; open or resolved from resolved_at when the source has none
-- column: category: lower case, e.g. complaint, question, repair; other when missing
-- column: satisfaction: 1 (very unhappy) to 5 (very happy); NULL when not rated
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
    lower(coalesce(nullif(trim(status), ''), CASE WHEN resolved_at IS NULL THEN 'open' ELSE 'resolved' END)) AS status,
    lower(coalesce(nullif(trim(priority), ''), 'normal'))  AS priority,
    lower(coalesce(nullif(trim(category), ''), 'other'))   AS category,
    satisfaction,
    nullif(trim(business_unit), '')         AS business_unit,
    lower(nullif(trim(channel), ''))        AS channel,
    updated_at
FROM ranked
WHERE _rn = 1 AND NOT coalesce(deleted, false)
