-- materialized: table
-- description: Order lines from every source, the latest version of each line only
--   (updates replace, soft deletes remove). net_amount is the line amount (or
--   quantity × unit_price) made negative for negative quantities and for
--   cancelled, returned or refunded lines, so sums give net revenue; a line of
--   value 0 stays in (its order still counts as an order).
-- tests: not_null(order_id), not_null(order_ts), unique(source, order_id, line_no)
-- column: source: the source the line came from
-- column: customer_id: the source system's customer id (NULL for anonymous sales)
-- column: status: lower-case status; completed when the source has none
-- column: category: product category; Uncategorised when the source has none
-- column: net_amount: signed line revenue; negative for returns and cancellations
-- column: net_cost: signed line cost, negative when the line is reversed
-- column: is_return: true for lines that reduce revenue (negative quantity or
--   amount, or a cancelled/returned/refunded status)
WITH ranked AS (
    SELECT *,
           row_number() OVER (PARTITION BY _source, order_id, line_no
                              ORDER BY updated_at DESC NULLS LAST, _file DESC) AS _rn
    FROM raw.orders
), flagged AS (
    SELECT *,
           lower(coalesce(status, '')) IN ('cancelled', 'canceled', 'returned', 'refunded', 'storno')
               OR coalesce(quantity, 0) < 0
               OR coalesce(amount, 0) < 0 AS _reversed
    FROM ranked
    WHERE _rn = 1 AND NOT coalesce(deleted, false)
)
SELECT
    _source                                   AS source,
    order_id,
    line_no,
    nullif(trim(customer_id), '')             AS customer_id,
    order_ts,
    lower(coalesce(nullif(trim(status), ''), 'completed')) AS status,
    product_id,
    product_name,
    coalesce(nullif(trim(category), ''), 'Uncategorised') AS category,
    quantity,
    unit_price,
    -- Money is DECIMAL: sums of DOUBLE depend on the order parallel threads
    -- add them in, and marts must be identical on a rerun of the same data.
    CAST(CASE WHEN _reversed THEN -abs(coalesce(amount, quantity * unit_price, 0))
              ELSE coalesce(amount, quantity * unit_price, 0)
         END AS DECIMAL(18, 4))               AS net_amount,
    CAST(CASE WHEN _reversed THEN -abs(coalesce(cost, 0))
              ELSE coalesce(cost, 0)
         END AS DECIMAL(18, 4))               AS net_cost,
    _reversed                                 AS is_return,
    currency,
    nullif(trim(business_unit), '')           AS business_unit,
    lower(nullif(trim(channel), ''))          AS channel,
    updated_at
FROM flagged
