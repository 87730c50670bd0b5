-- materialized: incremental
-- unique_key: source, order_id
-- rebuild_on: customer_identity
-- description: One row per order of an identified customer up to as_of: the
--   order's net value (returns and cancellations negative) and whether it is a
--   purchase. An order is a purchase when at least one of its lines is not a
--   reversal; a pure cancellation or return order is not a purchase but still
--   reduces revenue. Zero-value orders are purchases worth 0. Incremental: a
--   run recomputes the orders with a line in raw files committed since the
--   last build, from all their lines in stg_orders; a new customer_identity
--   (customers merged or split) rebuilds it in full.
-- tests: unique(source, order_id), not_null(customer_key)
-- column: customer_key: the resolved customer
-- column: source: the order's source
-- column: order_id: the order (invoice) number
-- column: order_ts: when the order was placed (its earliest line)
-- column: order_date: order_ts as a date
-- column: net_amount: sum of the order's signed line amounts
-- column: net_cost: sum of the order's signed line costs
-- column: lines: number of order lines
-- column: is_purchase: true unless every line of the order is a reversal
WITH ids AS (
    SELECT customer_key, member_id AS customer_id
    FROM customer_identity
    WHERE member_kind = 'customer_id'
), touched AS (
    -- orders with a new, changed or deleted line (read by incremental runs)
    SELECT DISTINCT _source AS source, order_id FROM {{ new_rows('raw.orders') }}
), orders AS (
    SELECT i.customer_key,
           o.source,
           o.order_id,
           min(o.order_ts)              AS order_ts,
           min(o.order_date)            AS order_date,
           sum(o.net_amount)            AS net_amount,
           sum(o.net_cost)              AS net_cost,
           count(*)                     AS lines,
           bool_or(NOT o.is_return)     AS is_purchase
    FROM stg_orders o
    JOIN ids i USING (customer_id)
{% if is_incremental() %}
    SEMI JOIN touched t ON o.source = t.source AND o.order_id = t.order_id
{% endif %}
    GROUP BY ALL
    -- as_of is var as_of, else the latest order day, which no order is after:
    -- only the var filters, so rows do not depend on as_of_date, which
    -- every new order moves
    HAVING CAST({{ var('as_of', NULL) }} AS DATE) IS NULL
        OR min(o.order_date) <= CAST({{ var('as_of', NULL) }} AS DATE)
)
SELECT *, false AS _cdw_deleted FROM orders
{% if is_incremental() %}
UNION ALL BY NAME
-- a touched order without an identified line left leaves the table
SELECT source, order_id, true AS _cdw_deleted
FROM touched
ANTI JOIN orders USING (source, order_id)
{% endif %}
