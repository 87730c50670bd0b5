-- materialized: table
-- description: One row per order of an identified customer up to as_of: the
--   order's net value (returns and cancellations negative) and whether it is a
--   purchase. An order is a purchase when at least one of its lines is not a
--   reversal; a pure cancellation or return order is not a purchase but still
--   reduces revenue. Zero-value orders are purchases worth 0.
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
)
SELECT i.customer_key,
       o.source,
       o.order_id,
       min(o.order_ts)              AS order_ts,
       min(o.order_ts)::DATE        AS order_date,
       sum(o.net_amount)            AS net_amount,
       sum(o.net_cost)              AS net_cost,
       count(*)                     AS lines,
       bool_or(NOT o.is_return)     AS is_purchase
FROM stg_orders o
JOIN ids i USING (customer_id)
GROUP BY ALL
HAVING min(o.order_ts)::DATE <= (SELECT as_of FROM as_of_date)
