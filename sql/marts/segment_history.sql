-- materialized: incremental
-- partition_by: as_of
-- description: Each customer's RFM segment, ABC class and lifecycle stage at
--   every period end: every Sunday (ISO week end) and every month end from
--   the first order up to as_of, computed from the orders up to that day with
--   the rules and vars of customer_segments (so a period end that equals
--   as_of gives the same segments as customer_segments). Rebuilt from raw
--   orders, so it is deterministic and survives a warehouse rebuild. Built
--   incrementally: a run adds the new period ends and recomputes only those
--   on or after the earliest order date a new raw line (any version of it)
--   carries, or on or after the first period of a customer whose key or
--   unit changed (an identity merge or split, a CRM edit; so new contacts
--   do not rebuild the whole history); var segment_history_since (a date, default none) drops periods
--   before it to bound the table on long histories. The churn score and
--   band per period use churn_risk's formula (sql/macros/churn.sql) on its
--   order-history signals as of the period end: lapse ((recency + 30) ÷
--   purchase days, ranked in the unit) and value (low spend per purchase
--   day, ranked in the unit), over their weights. Left out: P(repurchase), which needs
--   the purchase model fitted as of each period end (a Go fit per period),
--   and the ticket and rating signals (no ticket history per period); so
--   the band equals churn_risk's where those are absent or weigh 0.
-- tests: not_null(segment), not_null(business_unit), accepted_values(churn_band, 'low', 'medium', 'high', 'critical'), unique(as_of, customer_id), accepted_values(abc_class, 'A', 'B', 'C'), accepted_values(lifecycle_stage, 'acquisition', 'development', 'stable', 'decline', 'lost')
-- column: as_of: the period end (a Sunday and/or a month end)
-- column: week_end: as_of is a Sunday
-- column: month_end: as_of is the last day of a month
-- column: customer_id: the resolved customer (customer_identity.customer_key)
-- column: business_unit: the unit that owns the customer
-- column: recency_days: days from the last purchase to as_of
-- column: frequency: purchase orders up to as_of
-- column: monetary: net revenue up to as_of
-- column: r_score: recency score 1–5
-- column: f_score: frequency score 1–5
-- column: m_score: monetary score 1–5
-- column: segment: the RFM segment at as_of
-- column: abc_class: A, B or C within the business unit at as_of
-- column: lifecycle_stage: acquisition, development, stable, decline or lost at as_of
-- column: churn_score: 0–100 from the order signals at as_of (lapse and value points over their weights)
-- column: churn_band: low, medium, high or critical from churn_score, with churn_risk's thresholds
WITH p AS (
    SELECT as_of, {{ var('lifecycle_window_days', 180) }}::INTEGER AS w FROM as_of_date
), touched AS (
    -- the earliest day any version of a new raw line is dated: periods from
    -- then on may change (outside the if block: raw.orders stays an input)
    SELECT min(make_timestamp(epoch_us(r.order_ts))::DATE) AS since
    FROM raw.orders r
    SEMI JOIN (SELECT DISTINCT _source, order_id, line_no FROM {{ new_rows('raw.orders') }}) n
        ON r._source IS NOT DISTINCT FROM n._source AND r.order_id IS NOT DISTINCT FROM n.order_id
       AND r.line_no IS NOT DISTINCT FROM n.line_no
{% if is_incremental() %}
), last_period AS (
    -- every customer seen so far is in the latest period (orders only add up)
    SELECT customer_id, business_unit FROM {{ this }} WHERE as_of = (SELECT max(as_of) FROM {{ this }})
), moved AS (
    -- a key that is gone or whose unit changed: from its first period on;
    -- a key not seen yet (a split, or a new customer): from its first order
    SELECT least(
        (SELECT min(h.as_of) FROM {{ this }} h
         WHERE h.customer_id IN (SELECT l.customer_id FROM last_period l LEFT JOIN customers c ON c.customer_key = l.customer_id
                                 WHERE c.business_unit IS DISTINCT FROM l.business_unit)),
        (SELECT min(o.order_date) FROM customer_orders o ANTI JOIN last_period l ON l.customer_id = o.customer_key)) AS since
{% endif %}
), first_day AS (
    SELECT greatest(min(order_date), coalesce(CAST({{ var('segment_history_since', NULL) }} AS DATE), DATE '0001-01-01')) AS d
    FROM customer_orders
), candidates AS (
    SELECT unnest(generate_series(date_trunc('week', f.d)::DATE + 6, p.as_of, INTERVAL 7 DAY))::DATE AS as_of
    FROM first_day f, p
    UNION
    SELECT (unnest(generate_series(date_trunc('month', f.d)::DATE, p.as_of, INTERVAL 1 MONTH)) + INTERVAL 1 MONTH - INTERVAL 1 DAY)::DATE
    FROM first_day f, p
), periods AS (
    SELECT c.as_of, p.w,
           dayofweek(c.as_of) = 0                         AS week_end,
           c.as_of = last_day(c.as_of)                    AS month_end
    FROM candidates c, p, first_day f
    WHERE c.as_of <= p.as_of AND c.as_of >= f.d
{% if is_incremental() %}
      AND (c.as_of >= (SELECT since FROM touched)
           OR c.as_of >= (SELECT since FROM moved)
           OR c.as_of > (SELECT coalesce(max(as_of), DATE '0001-01-01') FROM {{ this }}))
{% endif %}
), order_days AS (
    -- one row per customer and order day; purchase days carry the gap to
    -- the customer's previous purchase day
    SELECT *,
           CASE WHEN purchase_day THEN date_diff('day', max(CASE WHEN purchase_day THEN d END) OVER (
               PARTITION BY customer_key ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), d) END AS gap
    FROM (SELECT customer_key, order_date AS d,
                 count(*) FILTER (WHERE is_purchase) AS day_orders,
                 sum(net_amount)                     AS day_net,
                 bool_or(is_purchase)                AS purchase_day
          FROM customer_orders
          GROUP BY ALL)
), running AS (
    -- each customer's history summed up to every order day
    SELECT customer_key, d,
           {'orders': (sum(day_orders) OVER c)::BIGINT,
            'net_revenue': sum(day_net) OVER c,
            'first_any': min(d) OVER c,
            'first_purchase': min(CASE WHEN purchase_day THEN d END) OVER c,
            'last_any': d,
            'last_purchase': max(CASE WHEN purchase_day THEN d END) OVER c,
            'purchase_days': count(CASE WHEN purchase_day THEN 1 END) OVER c,
            'median_gap_days': median(gap) OVER c} AS state
    FROM order_days
    WINDOW c AS (PARTITION BY customer_key ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), start AS (
    SELECT (SELECT min(as_of) FROM periods) AS d, w FROM p
), ends AS (
    -- the period end a day counts in first (the next Sunday or month end);
    -- those before the first period built go to one row before all periods
    SELECT customer_key, state, b
    FROM (SELECT r.customer_key, r.state,
                 CASE WHEN e < s.d THEN DATE '0001-01-01' ELSE e END AS b
          FROM (SELECT *, least(d + ((7 - dayofweek(d)) % 7)::INTEGER, last_day(d)) AS e FROM running) r, start s)
), at_end AS (
    -- the customer's state at the last order day of each period
    SELECT customer_key, b, arg_max(state, state.last_any) AS state FROM ends GROUP BY ALL
), aged AS (
    -- purchases by the first period end at which they are w and 2w days old:
    -- summed up to a period end they count the purchases before its window
    -- and before the window before that
    SELECT customer_key, b,
           sum(day_orders) FILTER (WHERE k = 1) AS older_w,
           sum(day_orders) FILTER (WHERE k = 2) AS older_2w
    FROM (SELECT customer_key, day_orders, k,
                 CASE WHEN least(y + ((7 - dayofweek(y)) % 7)::INTEGER, last_day(y)) < start_d THEN DATE '0001-01-01'
                      ELSE least(y + ((7 - dayofweek(y)) % 7)::INTEGER, last_day(y)) END AS b
          FROM (SELECT o.customer_key, o.day_orders, k.k, o.d + (k.k * s.w)::INTEGER AS y, s.d AS start_d
                FROM order_days o, start s, (VALUES (1), (2)) k(k)
                WHERE o.day_orders > 0))
    GROUP BY ALL
), first_days AS (
    SELECT customer_key, min(d) AS first_d FROM order_days GROUP BY ALL
), grid AS (
    -- every customer at every period end from its first order day on, and
    -- one row before the first period for a customer who ordered earlier
    SELECT pe.as_of, pe.week_end, pe.month_end, f.customer_key
    FROM periods pe JOIN first_days f ON f.first_d <= pe.as_of
    UNION ALL
    SELECT DATE '0001-01-01', NULL, NULL, f.customer_key
    FROM first_days f, start s WHERE f.first_d < s.d
), carried AS (
    SELECT g.*,
           last_value(a.state IGNORE NULLS) OVER h                    AS st,
           coalesce(sum(o.older_w) OVER h, 0)                          AS cum_w,
           coalesce(sum(o.older_2w) OVER h, 0)                         AS cum_2w
    FROM grid g
    LEFT JOIN at_end a ON a.customer_key = g.customer_key AND a.b = g.as_of
    LEFT JOIN aged o ON o.customer_key = g.customer_key AND o.b = g.as_of
    WINDOW h AS (PARTITION BY g.customer_key ORDER BY g.as_of ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), stats AS (
    -- a period's figures are the customer's state at its last order day up
    -- to the period end: one window pass over the order days and one over
    -- customers × periods, not every order once per later period (which
    -- ran out of memory at 1M order lines with the demo's 2GB)
    SELECT as_of, week_end, month_end, customer_key,
           st.orders                                                   AS orders,
           st.net_revenue                                              AS net_revenue,
           coalesce(st.first_purchase, st.first_any)                   AS first_order_date,
           coalesce(st.last_purchase, st.last_any)                     AS last_order_date,
           st.orders - cum_w                                           AS recent_orders,
           cum_w - cum_2w                                              AS prior_orders,
           st.purchase_days                                            AS purchase_days,
           st.median_gap_days                                          AS median_gap_days
    FROM carried
    WHERE as_of > DATE '0001-01-01'
), base AS (
    -- without the day list: every window below copies the rows it sorts,
    -- and a list per row made each of them cost seconds
    SELECT s.*, c.business_unit,
           date_diff('day', s.last_order_date, s.as_of)                            AS recency_days,
           greatest(s.net_revenue, 0)                                              AS positive_revenue,
    FROM stats s
    JOIN customers c USING (customer_key)
), ranked AS (
    SELECT *,
           rank() OVER (PARTITION BY as_of, business_unit ORDER BY recency_days DESC) - 1 AS r_below,
           -- every value of the unit the same (score 3): min = max over the
           -- unit's one partition, instead of a count per value, which took
           -- a partitioning of its own each
           min(recency_days) OVER u = max(recency_days) OVER u                          AS r_same,
           rank() OVER (PARTITION BY as_of, business_unit ORDER BY orders) - 1           AS f_below,
           min(orders) OVER u = max(orders) OVER u                                      AS f_same,
           rank() OVER (PARTITION BY as_of, business_unit ORDER BY net_revenue) - 1      AS m_below,
           CASE WHEN count(net_revenue) OVER u = 0 THEN true
                ELSE count(net_revenue) OVER u = count(*) OVER u
                     AND min(net_revenue) OVER u = max(net_revenue) OVER u END          AS m_same,
           count(*) OVER u                                                              AS n,
           {{ churn_lapse_rank('as_of, business_unit', 'recency_days', 'purchase_days') }} AS lapse_rank,
           {{ churn_value_rank('as_of, business_unit', 'round(net_revenue, 2)', 'purchase_days') }} AS value_rank,
           sum(positive_revenue) OVER (PARTITION BY as_of, business_unit)                AS unit_total,
           coalesce(sum(positive_revenue) OVER (PARTITION BY as_of, business_unit ORDER BY net_revenue DESC, customer_key
                                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS unit_before
    FROM base
    WINDOW u AS (PARTITION BY as_of, business_unit)
), scored AS (
    SELECT *,
           CASE WHEN r_same THEN 3 ELSE 1 + (5 * r_below) // n END::INTEGER AS r_score,
           CASE WHEN f_same THEN 3 ELSE 1 + (5 * f_below) // n END::INTEGER AS f_score,
           CASE WHEN m_same THEN 3 ELSE 1 + (5 * m_below) // n END::INTEGER AS m_score,
           {{ churn_score(churn_points_lapse('lapse_rank') ~ ' + ' ~ churn_points_value('value_rank'),
                          churn_weight_lapse() ~ ' + ' ~ churn_weight_value()) }} AS churn_score
    FROM ranked
)
SELECT
    as_of,
    week_end,
    month_end,
    customer_key                              AS customer_id,
    business_unit,
    recency_days,
    orders                                    AS frequency,
    round(net_revenue, 2)                     AS monetary,
    r_score,
    f_score,
    m_score,
    {{ rfm_segment('r_score', 'f_score') }} AS segment,
    {{ abc_class('net_revenue', 'unit_before', 'unit_total') }} AS abc_class,
    {{ lifecycle_stage() }} AS lifecycle_stage,
    churn_score,
    {{ churn_band('churn_score') }}          AS churn_band
FROM scored
