-- materialized: table
-- description: RFM, ABC and lifecycle per identified customer with orders up
--   to as_of. Recency = days from the last purchase to as_of; frequency =
--   purchase orders; monetary = net revenue (returns and cancellations
--   subtracted). Each is scored 1–5 by quintile within the business unit:
--   score = 1 + floor(5 × customers with a worse value / customers in the
--   unit), so ties share the lower score (all one-time buyers get F = 1); 5
--   is best (most recent, most orders, most revenue). A measure without spread
--   in the unit (one customer, or all equal) follows the value: R scores 3, F
--   scores the number of orders (1–5; one order is F = 1), M scores 3 for
--   positive net revenue, else 1.
--   The named segment comes from the R and F scores (the RFM grid). ABC ranks
--   the unit's customers by monetary: A while the cumulative share of positive
--   net revenue before the customer is below var abc_a_share (0.75), B below
--   var abc_b_share (0.95), else C; customers with monetary ≤ 0 are C.
--   Lifecycle, first rule that applies: lost when recency > max(var
--   lifecycle_lost_days, var lifecycle_lost_gap_multiple × own median gap);
--   acquisition when the first purchase is at most var
--   lifecycle_acquisition_days days before as_of; decline when there is no purchase in
--   the last var lifecycle_window_days days or fewer than var
--   lifecycle_decline_ratio × the purchases of the window before; development
--   when purchases grew window on window or tenure < var
--   lifecycle_development_days; otherwise stable.
-- tests: unique(customer_id), not_null(segment), not_null(business_unit), accepted_values(r_score, 1, 2, 3, 4, 5), accepted_values(abc_class, 'A', 'B', 'C'), accepted_values(lifecycle_stage, 'acquisition', 'development', 'stable', 'decline', 'lost')
-- column: customer_id: the resolved customer (customer_identity.customer_key)
-- column: business_unit: the unit that owns the customer
-- column: channel: the customer's channel
-- column: customer_type: business or consumer
-- column: as_of: the date recency is measured at (var as_of, default the latest order date)
-- column: first_order_date: first purchase day
-- column: last_order_date: last purchase day
-- column: recency_days: days from the last purchase to as_of
-- column: frequency: number of purchase orders
-- column: monetary: net revenue (returns and cancellations subtracted)
-- column: r_score: recency score 1–5 (5 = most recent)
-- column: f_score: frequency score 1–5 (5 = most orders)
-- column: m_score: monetary score 1–5 (5 = most revenue)
-- column: rfm_cell: the three scores as text, e.g. 543
-- column: segment: champions, loyal, potential loyalist, new, promising, need attention, at risk, can't lose, hibernating, lost
-- column: revenue_share: the customer's share of the unit's positive net revenue
-- column: cumulative_share: cumulative revenue share down to and including this customer (ranked by monetary)
-- column: abc_class: A, B or C within the business unit
-- column: abc_class_channel: A, B or C within the business unit and channel
-- column: tenure_days: days from the first purchase to as_of
-- column: median_gap_days: the customer's median days between purchase days
-- column: recent_orders: purchases in the last lifecycle window
-- column: prior_orders: purchases in the window before
-- column: lifecycle_stage: acquisition, development, stable, decline or lost
WITH base AS (
    SELECT s.*, c.business_unit, c.channel, c.customer_type,
           date_diff('day', s.last_order_date, s.as_of) AS recency_days,
           greatest(s.net_revenue, 0)                   AS positive_revenue
    FROM customer_summary s
    JOIN customers c USING (customer_key)
), ranked AS (
    SELECT *,
           -- customers with a worse value, customers tied (incl. self), customers in the unit
           rank() OVER (PARTITION BY business_unit ORDER BY recency_days DESC) - 1 AS r_below,
           count(*) OVER (PARTITION BY business_unit, recency_days)               AS r_ties,
           rank() OVER (PARTITION BY business_unit ORDER BY orders) - 1           AS f_below,
           count(*) OVER (PARTITION BY business_unit, orders)                     AS f_ties,
           rank() OVER (PARTITION BY business_unit ORDER BY net_revenue) - 1      AS m_below,
           count(*) OVER (PARTITION BY business_unit, net_revenue)                AS m_ties,
           count(*) OVER (PARTITION BY business_unit)                             AS n,
           sum(positive_revenue) OVER (PARTITION BY business_unit)                AS unit_total,
           coalesce(sum(positive_revenue) OVER (PARTITION BY business_unit ORDER BY net_revenue DESC, customer_key
                                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS unit_before,
           sum(positive_revenue) OVER (PARTITION BY business_unit, channel)       AS channel_total,
           coalesce(sum(positive_revenue) OVER (PARTITION BY business_unit, channel ORDER BY net_revenue DESC, customer_key
                                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS channel_before
    FROM base
), scored AS (
    SELECT *,
           CASE WHEN r_ties = n THEN 3 ELSE 1 + (5 * r_below) // n END::INTEGER AS r_score,
           -- without spread F and M follow the value: one order is F = 1,
           -- no net revenue is M = 1 (a unit where nobody repeats must not
           -- make its one-time buyers average)
           CASE WHEN f_ties = n THEN least(5, greatest(1, orders)) ELSE 1 + (5 * f_below) // n END::INTEGER AS f_score,
           CASE WHEN m_ties = n THEN CASE WHEN net_revenue > 0 THEN 3 ELSE 1 END
                ELSE 1 + (5 * m_below) // n END::INTEGER AS m_score
    FROM ranked
)
SELECT
    customer_key AS customer_id,
    business_unit,
    channel,
    customer_type,
    as_of,
    first_order_date,
    last_order_date,
    recency_days,
    orders                                    AS frequency,
    round(net_revenue, 2)                     AS monetary,
    r_score,
    f_score,
    m_score,
    r_score::VARCHAR || f_score::VARCHAR || m_score::VARCHAR AS rfm_cell,
    {{ rfm_segment('r_score', 'f_score') }} AS segment,
    CASE WHEN unit_total > 0 THEN round(positive_revenue / unit_total, 6) ELSE 0 END AS revenue_share,
    CASE WHEN unit_total > 0 THEN round((unit_before + positive_revenue) / unit_total, 6) ELSE 0 END AS cumulative_share,
    {{ abc_class('net_revenue', 'unit_before', 'unit_total') }} AS abc_class,
    {{ abc_class('net_revenue', 'channel_before', 'channel_total') }} AS abc_class_channel,
    t::INTEGER                                AS tenure_days,
    median_gap_days,
    recent_orders,
    prior_orders,
    {{ lifecycle_stage() }} AS lifecycle_stage
FROM scored
