-- materialized: table
-- description: RFM per customer who ordered: recency (days since the last
--   order at as_of), frequency (orders with non-negative net value) and
--   monetary (net revenue), each scored 1–5 by quintile rank (ties share a
--   score; 5 is best), and the named segment from the R and F scores.
-- tests: unique(customer_id), not_null(segment), accepted_values(r_score, 1, 2, 3, 4, 5)
-- column: customer_id: the customer
-- column: business_unit: the unit that owns the customer
-- column: as_of: the date recency is measured at (var as_of, default the latest order date)
-- column: recency_days: days from the last order to as_of
-- column: frequency: number of orders with non-negative net value
-- column: monetary: net revenue (returns and cancellations subtracted)
-- column: segment: champions, loyal, potential loyalist, new, promising, need attention, at risk, can't lose, hibernating, lost
WITH params AS (
    SELECT coalesce(TRY_CAST({{ var('as_of', 'NULL') }} AS DATE),
                    (SELECT max(order_ts)::DATE FROM stg_orders)) AS as_of
), orders AS (
    SELECT customer_id, order_id, min(order_ts) AS order_ts, sum(net_amount) AS amount
    FROM stg_orders
    WHERE customer_id IS NOT NULL
    GROUP BY customer_id, order_id
), rfm AS (
    SELECT o.customer_id,
           p.as_of,
           date_diff('day', max(o.order_ts)::DATE, p.as_of)   AS recency_days,
           count(*) FILTER (WHERE o.amount >= 0)               AS frequency,
           round(sum(o.amount), 2)                             AS monetary
    FROM orders o, params p
    WHERE o.order_ts::DATE <= p.as_of
    GROUP BY o.customer_id, p.as_of
), scored AS (
    SELECT *,
           least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY recency_days DESC)))::INTEGER AS r_score,
           least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY frequency)))::INTEGER         AS f_score,
           least(5, 1 + floor(5 * percent_rank() OVER (ORDER BY monetary)))::INTEGER          AS m_score
    FROM rfm
)
SELECT
    s.customer_id,
    c.business_unit,
    c.channel,
    c.customer_type,
    s.as_of,
    s.recency_days,
    s.frequency,
    s.monetary,
    s.r_score,
    s.f_score,
    s.m_score,
    CASE
        WHEN s.r_score = 5 AND s.f_score >= 4 THEN 'champions'
        WHEN s.r_score >= 3 AND s.f_score >= 4 THEN 'loyal'
        WHEN s.r_score >= 4 AND s.f_score BETWEEN 2 AND 3 THEN 'potential loyalist'
        WHEN s.r_score = 5 AND s.f_score = 1 THEN 'new'
        WHEN s.r_score = 4 AND s.f_score = 1 THEN 'promising'
        WHEN s.r_score = 3 THEN 'need attention'
        WHEN s.r_score <= 2 AND s.f_score = 5 THEN 'can''t lose'
        WHEN s.r_score <= 2 AND s.f_score >= 3 THEN 'at risk'
        WHEN s.r_score = 2 THEN 'hibernating'
        ELSE 'lost'
    END AS segment
FROM scored s
JOIN customers c USING (customer_id)
