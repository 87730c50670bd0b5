-- materialized: incremental
-- unique_key: customer_key
-- rebuild_on: customer_identity
-- description: Per identified customer with at least one order up to as_of:
--   the part of the order history that does not move with as_of (see
--   customer_summary, which adds the rest). BG/NBD inputs are in days and
--   count purchase days: frequency = distinct purchase days − 1, recency =
--   days from the first to the last purchase day, monetary = mean net value of
--   the repeat purchase days (the first day excluded; NULL when frequency is
--   0). Net values: each line of a return or cancellation order offsets the
--   purchase it reverses (the latest earlier purchase order of the same
--   product, else the customer's latest earlier purchase order), and a
--   purchase day returned in full is no purchase day. A customer whose orders
--   are all returns/cancellations has frequency 0 and dates from those orders. Incremental: a run recomputes the customers
--   who own, or owned under an older version, an order line in raw files
--   committed since the last build; a new customer_identity rebuilds it in
--   full.
-- tests: unique(customer_key)
-- column: customer_key: the resolved customer
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
-- column: monetary: Gamma-Gamma input, mean net value of repeat purchase days
-- column: median_gap_days: median days between consecutive purchase days (NULL with fewer than two)
WITH touched AS (
    -- Every version of the new raw lines: an update that moves a line to
    -- another customer touches the old owner too (read by incremental runs).
    SELECT DISTINCT i.customer_key
    FROM raw.orders r
    SEMI JOIN (SELECT DISTINCT _source, order_id, line_no FROM {{ new_rows('raw.orders') }}) n
        ON r._source IS NOT DISTINCT FROM n._source AND r.order_id IS NOT DISTINCT FROM n.order_id
       AND r.line_no IS NOT DISTINCT FROM n.line_no
    JOIN customer_identity i ON i.member_kind = 'customer_id' AND i.member_id = nullif(trim(r.customer_id), '')
), scope AS (
    SELECT o.*
    FROM customer_orders o
{% if is_incremental() %}
    SEMI JOIN touched USING (customer_key)
{% endif %}
), reversing AS (
    -- customers with a return or cancellation order to net
    SELECT DISTINCT customer_key FROM scope WHERE NOT is_purchase AND net_amount < 0
), lines AS (
    -- their order lines, with the order's customer and time
    SELECT o.customer_key, o.source, o.order_id, o.order_ts, o.is_purchase, l.product_id, l.net_amount, l.is_return
    FROM stg_orders l
    JOIN scope o USING (source, order_id)
    SEMI JOIN reversing r USING (customer_key)
), reversal_lines AS (
    SELECT * FROM lines WHERE NOT is_purchase AND net_amount < 0
), bought AS (
    -- purchase lines of a product the customer later returned
    SELECT customer_key, product_id, order_ts, source, order_id
    FROM lines
    WHERE is_purchase AND NOT is_return
      AND (customer_key, product_id) IN (SELECT customer_key, product_id FROM reversal_lines)
), purchases AS (
    SELECT customer_key, order_ts, source, order_id FROM scope WHERE is_purchase
), matched AS (
    -- a reversal line offsets the latest earlier purchase of the same
    -- product, else the customer's latest earlier purchase; one before any
    -- purchase stays in net revenue only
    SELECT r.customer_key, r.order_ts, r.net_amount, b.source, b.order_id
    FROM reversal_lines r
    ASOF LEFT JOIN bought b
        ON r.customer_key = b.customer_key AND r.product_id = b.product_id AND r.order_ts >= b.order_ts
), offsets AS (
    SELECT coalesce(m.source, p.source) AS source, coalesce(m.order_id, p.order_id) AS order_id,
           sum(m.net_amount) AS offset_amount
    FROM matched m
    ASOF LEFT JOIN purchases p ON m.customer_key = p.customer_key AND m.order_ts >= p.order_ts
    WHERE coalesce(m.order_id, p.order_id) IS NOT NULL
    GROUP BY ALL
), netted_days AS (
    SELECT o.customer_key, o.order_date,
           sum(o.net_amount) + coalesce(sum(f.offset_amount), 0) AS day_value,
           count(f.order_id) > 0                                 AS returned
    FROM scope o
    LEFT JOIN offsets f USING (source, order_id)
    WHERE o.is_purchase
    GROUP BY o.customer_key, o.order_date
), days AS (
    -- a purchase day returned in full is no purchase day
    SELECT customer_key, order_date, day_value
    FROM netted_days
    WHERE NOT (returned AND day_value <= 0)
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
), totals AS (
    SELECT customer_key,
           count(*) FILTER (WHERE is_purchase)     AS orders,
           count(*) FILTER (WHERE NOT is_purchase) AS reversal_orders,
           sum(net_amount)                         AS net_revenue,
           sum(net_cost)                           AS net_cost,
           min(order_date)                         AS first_any,
           max(order_date)                         AS last_any,
           max(order_ts)                           AS last_order_ts
    FROM scope
    GROUP BY customer_key
)
SELECT o.customer_key,
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
       CASE WHEN d.purchase_days > 1
            THEN (d.total_day_value - d.first_day_value) / (d.purchase_days - 1) END AS monetary,
       g.median_gap_days,
       false                                                            AS _cdw_deleted
FROM totals o
LEFT JOIN day_stats d USING (customer_key)
LEFT JOIN gaps g USING (customer_key)
{% if is_incremental() %}
UNION ALL BY NAME
-- a touched customer without an order left leaves the table
SELECT customer_key, true AS _cdw_deleted
FROM touched
ANTI JOIN totals USING (customer_key)
{% endif %}
