-- materialized: table
-- description: Order lines from every source, the latest version of each line only
--   (updates replace, soft deletes remove). net_amount is the line amount (or
--   quantity × unit_price) and is negative for negative quantities and for
--   cancelled or returned lines, so sums give net revenue.
-- tests: not_null(order_id), not_null(order_ts), unique(source, order_id, line_no)
-- column: source: the source the line came from
-- column: net_amount: signed line revenue; negative for returns and cancellations
WITH ranked AS (
    SELECT *,
           row_number() OVER (PARTITION BY _source, order_id, line_no
                              ORDER BY updated_at DESC NULLS LAST, _file DESC) AS _rn
    FROM raw.orders
)
SELECT
    _source                                   AS source,
    order_id,
    line_no,
    nullif(trim(customer_id), '')             AS customer_id,
    order_ts,
    lower(coalesce(status, 'completed'))      AS status,
    product_id,
    product_name,
    coalesce(category, 'Uncategorised')       AS category,
    quantity,
    unit_price,
    CASE WHEN lower(coalesce(status, '')) IN ('cancelled', 'canceled', 'returned', 'refunded')
         THEN -abs(coalesce(amount, quantity * unit_price, 0))
         ELSE coalesce(amount, quantity * unit_price, 0)
    END                                       AS net_amount,
    CASE WHEN lower(coalesce(status, '')) IN ('cancelled', 'canceled', 'returned', 'refunded')
         THEN -abs(coalesce(cost, 0))
         ELSE coalesce(cost, 0)
    END                                       AS net_cost,
    currency,
    business_unit,
    channel,
    updated_at
FROM ranked
WHERE _rn = 1 AND NOT coalesce(deleted, false)
