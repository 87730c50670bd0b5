-- materialized: table
-- description: Per identified customer with at least one order up to as_of:
--   the order history the marts and the CLV fit need: customer_history (kept
--   up to date by merge) with what moves with as_of. BG/NBD inputs are in
--   days and count purchase days: frequency = distinct purchase days − 1,
--   recency = days from the first to the last purchase day, t = days from the
--   first purchase day to as_of, monetary = mean net value of the repeat
--   purchase days (the first day excluded; NULL when frequency is 0). A
--   customer whose orders are all returns/cancellations has frequency 0 and
--   dates from those orders.
-- tests: unique(customer_key), not_null(as_of)
-- column: customer_key: the resolved customer
-- column: as_of: the reporting date
-- column: first_order_date: first purchase day (first order of any kind when there is no purchase)
-- column: last_order_date: last purchase day (last order of any kind when there is no purchase)
-- column: last_order_ts: time of the last order of any kind
-- column: orders: number of purchase orders
-- column: reversal_orders: number of orders that only return or cancel
-- column: purchase_days: distinct days with a purchase
-- column: net_revenue: net revenue of all orders (returns and cancellations subtracted)
-- column: net_cost: net cost of all orders
-- column: frequency: BG/NBD x, repeat purchase days
-- column: recency: BG/NBD t_x in days
-- column: t: BG/NBD T in days (customer age at as_of)
-- column: monetary: Gamma-Gamma input, mean net value of repeat purchase days
-- column: median_gap_days: median days between consecutive purchase days (NULL with fewer than two)
-- column: recent_orders: purchase orders in the last var lifecycle_window_days days up to as_of
-- column: prior_orders: purchase orders in the window before that
WITH p AS (
    SELECT as_of, {{ var('lifecycle_window_days', 180) }} AS w FROM as_of_date
), windows AS (
    -- only the last two windows of orders: as_of moves them on every run
    SELECT o.customer_key,
           count(*) FILTER (WHERE o.order_date > p.as_of - p.w::INTEGER) AS recent_orders,
           count(*) FILTER (WHERE o.order_date <= p.as_of - p.w::INTEGER)  AS prior_orders
    FROM customer_orders o, p
    WHERE o.is_purchase AND o.order_date > p.as_of - 2 * p.w::INTEGER
    GROUP BY o.customer_key
)
SELECT h.customer_key,
       p.as_of,
       h.first_order_date,
       h.last_order_date,
       h.last_order_ts,
       h.orders,
       h.reversal_orders,
       h.purchase_days,
       h.net_revenue,
       h.net_cost,
       h.frequency,
       h.recency,
       date_diff('day', h.first_order_date, p.as_of)::DOUBLE AS t,
       h.monetary,
       h.median_gap_days,
       coalesce(w.recent_orders, 0)                          AS recent_orders,
       coalesce(w.prior_orders, 0)                           AS prior_orders
FROM customer_history h
CROSS JOIN p
LEFT JOIN windows w USING (customer_key)
