-- materialized: table
-- description: Per identified customer with at least one order up to as_of:
--   the order history the marts and the CLV fit need. BG/NBD inputs are in
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
), days AS (
    SELECT customer_key, order_date, sum(net_amount) AS day_value
    FROM customer_orders
    WHERE is_purchase
    GROUP BY customer_key, order_date
), day_stats AS (
    SELECT customer_key,
           count(*)                         AS purchase_days,
           min(order_date)                  AS first_day,
           max(order_date)                  AS last_day,
           arg_min(day_value, order_date)   AS first_day_value,
           sum(day_value)                   AS total_day_value
    FROM days
    GROUP BY customer_key
), gap_list AS (
    SELECT customer_key,
           date_diff('day', lag(order_date) OVER (PARTITION BY customer_key ORDER BY order_date), order_date) AS gap
    FROM days
), gaps AS (
    -- The median as the mean of the middle one or two gaps in order: window
    -- functions spill to disk, median() keeps every customer's values in
    -- memory (tens of millions of gaps at 100M order lines).
    SELECT customer_key, avg(gap)::DOUBLE AS median_gap_days
    FROM (SELECT customer_key, gap,
                 row_number() OVER (PARTITION BY customer_key ORDER BY gap) AS k,
                 count(*) OVER (PARTITION BY customer_key) AS n
          FROM gap_list
          WHERE gap IS NOT NULL)
    WHERE k IN ((n + 1) // 2, (n + 2) // 2)
    GROUP BY customer_key
), orders AS (
    SELECT o.customer_key,
           count(*) FILTER (WHERE o.is_purchase)                             AS orders,
           count(*) FILTER (WHERE NOT o.is_purchase)                         AS reversal_orders,
           sum(o.net_amount)                                                 AS net_revenue,
           sum(o.net_cost)                                                   AS net_cost,
           min(o.order_date)                                                 AS first_any,
           max(o.order_date)                                                 AS last_any,
           max(o.order_ts)                                                   AS last_order_ts,
           count(*) FILTER (WHERE o.is_purchase AND o.order_date > p.as_of - p.w::INTEGER)     AS recent_orders,
           count(*) FILTER (WHERE o.is_purchase AND o.order_date <= p.as_of - p.w::INTEGER
                                               AND o.order_date > p.as_of - 2 * p.w::INTEGER) AS prior_orders
    FROM customer_orders o, p
    GROUP BY o.customer_key
)
SELECT o.customer_key,
       p.as_of,
       coalesce(d.first_day, o.first_any)                               AS first_order_date,
       coalesce(d.last_day, o.last_any)                                 AS last_order_date,
       o.last_order_ts,
       o.orders,
       o.reversal_orders,
       coalesce(d.purchase_days, 0)                                     AS purchase_days,
       o.net_revenue,
       o.net_cost,
       greatest(coalesce(d.purchase_days, 0) - 1, 0)::DOUBLE            AS frequency,
       coalesce(date_diff('day', d.first_day, d.last_day), 0)::DOUBLE   AS recency,
       date_diff('day', coalesce(d.first_day, o.first_any), p.as_of)::DOUBLE AS t,
       CASE WHEN d.purchase_days > 1
            THEN (d.total_day_value - d.first_day_value) / (d.purchase_days - 1) END AS monetary,
       g.median_gap_days,
       o.recent_orders,
       o.prior_orders
FROM orders o
CROSS JOIN p
LEFT JOIN day_stats d USING (customer_key)
LEFT JOIN gaps g USING (customer_key)
