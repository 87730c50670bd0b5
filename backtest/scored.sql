-- The customers scored at the cutoff (everyone in churn_risk, i.e. with an
-- order up to the cutoff) beside what they did in the horizon: purchase days
-- (days with an order that is not only a reversal) and net spend (returns
-- and cancellations subtracted) of the orders placed in (cutoff, cutoff +
-- horizon]. $1 = cutoff, $2 = horizon in days.
CREATE TEMP TABLE backtest_scored AS
WITH ids AS (
    SELECT customer_key, member_id AS customer_id
    FROM customer_identity
    WHERE member_kind = 'customer_id'
), future_orders AS (
    SELECT i.customer_key,
           min(o.order_date)        AS order_date,
           sum(o.net_amount)        AS net_amount,
           bool_or(NOT o.is_return) AS is_purchase
    FROM stg_orders o
    JOIN ids i USING (customer_id)
    GROUP BY i.customer_key, o.source, o.order_id
    HAVING min(o.order_date) > CAST($1 AS DATE)
       AND min(o.order_date) <= CAST($1 AS DATE) + CAST($2 AS INTEGER)
), future AS (
    SELECT customer_key,
           count(DISTINCT order_date) FILTER (WHERE is_purchase) AS purchase_days,
           sum(net_amount)::DOUBLE                               AS spend
    FROM future_orders
    GROUP BY customer_key
)
SELECT r.customer_id,
       r.churn_score::DOUBLE                                    AS churn_score,
       r.churn_band,
       r.early_warning,
       r.high_value,
       v.p_alive,
       CASE WHEN p.model = 'pnbd' THEN pnbd_expected_purchases(p.pnbd_r, p.pnbd_alpha, p.pnbd_s, p.pnbd_beta, $2, s.frequency, s.recency, s.t)
            ELSE bgnbd_expected_purchases(p.r, p.alpha, p.a, p.b, $2, s.frequency, s.recency, s.t) END AS predicted_purchases,
       v.expected_avg_spend                                     AS predicted_avg_spend,
       r.recency_days::DOUBLE                                   AS recency_days,
       s.frequency, s.recency, s.t, s.monetary, s.net_revenue::DOUBLE AS net_revenue, r.rhythm_days,
       p.r, p.alpha, p.a, p.b, p.model, p.pnbd_r, p.pnbd_alpha, p.pnbd_s, p.pnbd_beta,
       r.business_unit, r.p_repurchase, r.points_alive, r.points_lapse, r.points_value, r.weight_present,
       s.purchase_days::DOUBLE                                  AS purchase_days,
       coalesce(f.purchase_days, 0)::DOUBLE                     AS actual_purchases,
       coalesce(f.spend, 0)                                     AS actual_spend,
       coalesce(f.purchase_days, 0) = 0                         AS churned
FROM churn_risk r
JOIN customer_value v USING (customer_id)
JOIN customer_summary s ON s.customer_key = r.customer_id
CROSS JOIN clv_params p
LEFT JOIN future f ON f.customer_key = r.customer_id
