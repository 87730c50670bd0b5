-- materialized: table
-- description: Benchmark model, not a product mart: RFM scores, the RFM
--   segment and the ABC class per order customer_id, computed from stg_orders
--   with the definitions of customer_segments (scores 1 + floor(5 × worse /
--   customers in the unit), 3 when a measure has no spread, the same segment
--   grid, ABC by the cumulative share of positive net revenue before the
--   customer, A < 0.75, B < 0.95) but without identity resolution, customer
--   attributes or lifecycle. bench/rfm_abc.py computes exactly this in pandas,
--   so `cdw bench --workloads pandas` compares like with like.
--   business_unit is the customer's smallest non-empty unit ('Unassigned' if
--   none); frequency counts distinct orders with a non-return line; recency
--   is measured to the latest order day.
-- tests: unique(customer_id), not_null(segment), accepted_values(abc_class, 'A', 'B', 'C')
WITH lines AS (
    SELECT customer_id, order_id, order_date, net_amount, is_return, business_unit
    FROM {{ ref('stg_orders') }}
    WHERE customer_id IS NOT NULL
), per_customer AS (
    SELECT customer_id,
           coalesce(min(business_unit), 'Unassigned')          AS business_unit,
           max(order_date)                                     AS last_order_date,
           count(DISTINCT order_id) FILTER (WHERE NOT is_return) AS frequency,
           sum(net_amount)                                     AS monetary
    FROM lines
    GROUP BY customer_id
), base AS (
    SELECT *,
           date_diff('day', last_order_date, (SELECT max(order_date) FROM lines)) AS recency_days,
           greatest(monetary, 0)                                                    AS positive
    FROM per_customer
), ranked AS (
    SELECT *,
           rank() OVER (PARTITION BY business_unit ORDER BY recency_days DESC) - 1 AS r_below,
           count(*) OVER (PARTITION BY business_unit, recency_days)               AS r_ties,
           rank() OVER (PARTITION BY business_unit ORDER BY frequency) - 1        AS f_below,
           count(*) OVER (PARTITION BY business_unit, frequency)                  AS f_ties,
           rank() OVER (PARTITION BY business_unit ORDER BY monetary) - 1         AS m_below,
           count(*) OVER (PARTITION BY business_unit, monetary)                   AS m_ties,
           count(*) OVER (PARTITION BY business_unit)                             AS n,
           sum(positive) OVER (PARTITION BY business_unit)                        AS unit_total,
           coalesce(sum(positive) OVER (PARTITION BY business_unit ORDER BY monetary DESC, customer_id
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS unit_before
    FROM base
), scored AS (
    SELECT *,
           CASE WHEN r_ties = n THEN 3 ELSE 1 + (5 * r_below) // n END::INTEGER AS r_score,
           CASE WHEN f_ties = n THEN 3 ELSE 1 + (5 * f_below) // n END::INTEGER AS f_score,
           CASE WHEN m_ties = n THEN 3 ELSE 1 + (5 * m_below) // n END::INTEGER AS m_score
    FROM ranked
)
SELECT
    customer_id,
    business_unit,
    recency_days,
    frequency,
    round(monetary, 2) AS monetary,
    r_score,
    f_score,
    m_score,
    CASE
        WHEN r_score = 5 AND f_score >= 4 THEN 'champions'
        WHEN r_score >= 3 AND f_score >= 4 THEN 'loyal'
        WHEN r_score >= 4 AND f_score BETWEEN 2 AND 3 THEN 'potential loyalist'
        WHEN r_score = 5 AND f_score = 1 THEN 'new'
        WHEN r_score = 4 AND f_score = 1 THEN 'promising'
        WHEN r_score = 3 THEN 'need attention'
        WHEN r_score <= 2 AND f_score = 5 THEN 'can''t lose'
        WHEN r_score <= 2 AND f_score >= 3 THEN 'at risk'
        WHEN r_score = 2 THEN 'hibernating'
        ELSE 'lost'
    END AS segment,
    CASE WHEN monetary <= 0 OR unit_total <= 0 THEN 'C'
         WHEN unit_before / unit_total < 0.75 THEN 'A'
         WHEN unit_before / unit_total < 0.95 THEN 'B'
         ELSE 'C' END AS abc_class
FROM scored
