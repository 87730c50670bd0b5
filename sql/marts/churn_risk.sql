-- materialized: table
-- description: Churn risk per identified customer: a 0–100 score, its band and
--   the top three drivers in words. Churn means no purchase in the next var
--   churn_horizon_days (90). Each signal gives weighted points (weights are
--   vars): (1 − p_repurchase) × churn_weight_alive (35), where p_repurchase =
--   P(alive) × P(a purchase in the horizon at the customer's posterior rate,
--   before a Pareto/NBD customer dies: bgnbd_p_purchase, pnbd_p_purchase);
--   lapse: the percentile within the unit of (recency + 30 days) ÷ purchase
--   days × churn_weight_lapse (55); value: the percentile of low spend per
--   purchase day (net revenue ÷ purchase days) within the unit ×
--   churn_weight_value (10); open tickets at as_of,
--   min(n, 2)/2 × churn_weight_open (10); any ticket open longer than var
--   ticket_overdue_days → churn_weight_overdue (10); complaints in the last
--   var churn_window_days (90), min(n, 2)/2 × churn_weight_complaint (10);
--   any rating ≤ var low_satisfaction_max (2) in the last var
--   satisfaction_window_days (365) → churn_weight_satisfaction (10). The
--   score is 100 × points ÷ the weights of the signals present in the unit
--   (weight_present): ticket signals count where the unit has tickets, the
--   rating signal where it has ratings, so an orders-only warehouse still
--   scores 0–100. The order-signal weights were chosen by cdw backtest on
--   Online Retail and CDNOW (sql/README.md); the ticket and rating weights
--   could not be (neither has tickets). Bands: critical ≥ var
--   churn_band_critical (75), high ≥ churn_band_high (60), medium ≥
--   churn_band_medium (40), else low. early_warning flags high-value
--   customers (ABC class A or predicted CLV in the unit's top var
--   churn_high_value_clv_share, 0.2) in band high or critical. Every
--   customer is listed, also those known only from tickets or the CRM
--   (issue 17: any entity alone is enough): without orders the order
--   signals are absent (their points and weights 0, ranks taken among the
--   unit's customers with orders only, so those scores do not change), and
--   the score comes from the ticket signals; a customer with neither orders
--   nor a unit with tickets has no signal to score: churn_score NULL, band
--   unscored.
-- tests: unique(customer_id), accepted_values(churn_band, 'low', 'medium', 'high', 'critical', 'unscored')
-- column: customer_id: the resolved customer (customer_identity.customer_key)
-- column: business_unit: the unit that owns the customer
-- column: channel: the customer's channel
-- column: customer_type: business or consumer
-- column: as_of: the reporting date
-- column: churn_score: 0–100, higher = more likely to leave; NULL when the customer has no signal (no orders, no tickets in the unit)
-- column: churn_band: low, medium, high or critical; unscored without any signal
-- column: drivers: the top (up to three) reasons in words, largest first
-- column: early_warning: true for a high-value customer at high or critical risk
-- column: high_value: ABC class A or predicted CLV in the unit's top churn_high_value_clv_share
-- column: p_alive: probability the customer is still active (customer_value.p_alive)
-- column: p_repurchase: probability of a purchase in the next churn_horizon_days
-- column: recency_days: days since the last purchase
-- column: rhythm_days: the customer's purchase rhythm, for the lapse driver's words
-- column: rhythm_source: own (median gap), unit (unit median) or default
-- column: open_tickets: tickets open at as_of
-- column: overdue_tickets: tickets open longer than ticket_overdue_days
-- column: complaints_90d: complaints in the churn window
-- column: low_satisfaction: low ratings in the satisfaction window
-- column: abc_class: ABC class within the unit
-- column: clv: predicted CLV
-- column: points_alive: points from 1 − p_repurchase
-- column: points_lapse: points from days per purchase day, ranked in the unit
-- column: points_value: points from low spend per purchase day, ranked in the unit
-- column: points_open: points from open tickets
-- column: points_overdue: points from overdue tickets
-- column: points_complaints: points from complaints
-- column: points_satisfaction: points from low satisfaction
-- column: weight_present: the sum of the weights of the signals the unit has data for
-- column: has_orders: false for a customer known only from tickets or contacts
WITH unit_rhythm AS (
    SELECT business_unit, median(median_gap_days) AS unit_gap
    FROM customer_segments
    WHERE median_gap_days IS NOT NULL
    GROUP BY business_unit
), base AS (
    SELECT c.customer_key AS customer_id, c.business_unit, c.channel, c.customer_type, d.as_of, s.recency_days, s.abc_class,
           s.customer_id IS NOT NULL           AS has_orders,
           s.monetary AS net_revenue, m.purchase_days,
           v.p_alive, v.clv,
           -- P(a purchase in the next churn_horizon_days): alive, and a
           -- purchase at the posterior rate Gamma(r + x, α + T) before a
           -- Pareto/NBD customer dies (transform/clv README)
           CASE WHEN pa.model = 'pnbd'
                THEN pnbd_p_purchase(pa.pnbd_r, pa.pnbd_alpha, pa.pnbd_s, pa.pnbd_beta, {{ var('churn_horizon_days', 90) }}, m.frequency, m.recency, m.t)
                ELSE bgnbd_p_purchase(pa.r, pa.alpha, pa.a, pa.b, {{ var('churn_horizon_days', 90) }}, m.frequency, m.recency, m.t) END AS p_repurchase,
           t.customer_key IS NOT NULL          AS has_tickets,
           coalesce(t.ratings, 0) > 0          AS has_ratings,
           coalesce(t.open_tickets, 0)         AS open_tickets,
           coalesce(t.overdue_tickets, 0)      AS overdue_tickets,
           coalesce(t.complaints_90d, 0)       AS complaints_90d,
           coalesce(t.low_satisfaction, 0)     AS low_satisfaction,
           t.min_satisfaction,
           CASE WHEN s.customer_id IS NULL THEN NULL
                WHEN s.median_gap_days > 0 THEN s.median_gap_days
                WHEN u.unit_gap > 0 THEN u.unit_gap
                ELSE {{ var('churn_default_rhythm_days', 90) }} END::DOUBLE AS rhythm_days,
           CASE WHEN s.customer_id IS NULL THEN NULL
                WHEN s.median_gap_days > 0 THEN 'own' WHEN u.unit_gap > 0 THEN 'unit' ELSE 'default' END AS rhythm_source,
           cume_dist() OVER (PARTITION BY c.business_unit, s.customer_id IS NOT NULL ORDER BY v.clv) AS clv_cume
    FROM customers c
    CROSS JOIN as_of_date d
    LEFT JOIN customer_segments s ON s.customer_id = c.customer_key
    LEFT JOIN customer_value v ON v.customer_id = s.customer_id
    LEFT JOIN customer_summary m ON m.customer_key = s.customer_id
    -- the model customer_value predicts with
    LEFT JOIN clv_params pa ON true
    LEFT JOIN customer_tickets t ON t.customer_key = c.customer_key
    -- customers with orders are those customer_segments ranks; the others
    -- are known from tickets or contacts
    LEFT JOIN unit_rhythm u ON u.business_unit = c.business_unit
), signals AS (
    SELECT *,
           -- the unit's days per purchase day up to now, counted to as_of
           -- (the purchase-rate baseline, so the weights can always fall
           -- back on it), and the spend per purchase day, as percentiles
           -- within the unit (the formula's owner: sql/macros/churn.sql)
           {{ churn_lapse_rank('business_unit, has_orders', 'recency_days', 'purchase_days') }} AS lapse_rank,
           {{ churn_value_rank('business_unit, has_orders', 'net_revenue', 'purchase_days') }} AS value_rank,
           -- ticket and rating signals count where the unit has such data
           -- (among its customers with orders, or among those without)
           bool_or(has_tickets) OVER (PARTITION BY business_unit, has_orders) AS unit_tickets,
           bool_or(has_ratings) OVER (PARTITION BY business_unit, has_orders) AS unit_ratings
    FROM base
), points AS (
    SELECT *,
           CASE WHEN has_orders THEN {{ churn_points_alive('p_repurchase') }} ELSE 0 END AS points_alive,
           CASE WHEN has_orders THEN {{ churn_points_lapse('lapse_rank') }} ELSE 0 END   AS points_lapse,
           CASE WHEN has_orders THEN {{ churn_points_value('value_rank') }} ELSE 0 END   AS points_value,
           round({{ var('churn_weight_open', 10) }} * least(open_tickets, 2) / 2.0, 1)                           AS points_open,
           round(CASE WHEN overdue_tickets > 0 THEN {{ var('churn_weight_overdue', 10) }} ELSE 0 END, 1)         AS points_overdue,
           round({{ var('churn_weight_complaint', 10) }} * least(complaints_90d, 2) / 2.0, 1)                    AS points_complaints,
           round(CASE WHEN low_satisfaction > 0 THEN {{ var('churn_weight_satisfaction', 10) }} ELSE 0 END, 1)   AS points_satisfaction,
           CASE WHEN has_orders THEN {{ churn_weight_alive() }} + {{ churn_weight_lapse() }} + {{ churn_weight_value() }} ELSE 0 END
             + CASE WHEN unit_tickets THEN {{ var('churn_weight_open', 10) }} + {{ var('churn_weight_overdue', 10) }}
                                           + {{ var('churn_weight_complaint', 10) }} ELSE 0 END
             + CASE WHEN unit_ratings THEN {{ var('churn_weight_satisfaction', 10) }} ELSE 0 END       AS weight_present
    FROM signals
), scored AS (
    SELECT *,
           coalesce(abc_class = 'A' OR (clv > 0 AND clv_cume > 1 - {{ var('churn_high_value_clv_share', 0.2) }}), false) AS high_value,
           {{ churn_score('points_alive + points_lapse + points_value + points_open + points_overdue
                          + points_complaints + points_satisfaction', 'weight_present') }} AS churn_score,
           -- (points, tie order, words); sorted descending, ties keep this order
           [{'pts': points_alive,        'ord': -1, 'txt': format('{:.0f}% chance of a purchase in the next {} days', 100 * p_repurchase, {{ var('churn_horizon_days', 90) }})},
            {'pts': points_lapse,        'ord': -2, 'txt': format('{} days since last order, usually every {:.0f}', recency_days, rhythm_days)},
            {'pts': points_value,        'ord': -7, 'txt': format('low spend: {:.2f} per purchase day', net_revenue / greatest(purchase_days, 1))},
            {'pts': points_open,         'ord': -3, 'txt': format('{} open ticket(s)', open_tickets)},
            {'pts': points_overdue,      'ord': -4, 'txt': format('{} ticket(s) open over {} days', overdue_tickets, {{ var('ticket_overdue_days', 14) }})},
            {'pts': points_complaints,   'ord': -5, 'txt': format('{} complaint(s) in {} days', complaints_90d, {{ var('churn_window_days', 90) }})},
            {'pts': points_satisfaction, 'ord': -6, 'txt': format('low satisfaction ({}/5) in {} days', min_satisfaction, {{ var('satisfaction_window_days', 365) }})}
           ] AS driver_list
    FROM points
)
SELECT
    customer_id,
    business_unit,
    channel,
    customer_type,
    as_of,
    churn_score,
    {{ churn_band('churn_score') }}                                        AS churn_band,
    CASE WHEN churn_score IS NULL THEN 'no orders or tickets to score'
         ELSE array_to_string(list_transform(
                  list_slice(list_sort(list_filter(driver_list, d -> d.pts > 0), 'DESC'), 1, 3),
                  d -> d.txt), '; ') END                                    AS drivers,
    coalesce(churn_score >= {{ var('churn_band_high', 60) }} AND high_value, false)  AS early_warning,
    high_value,
    p_alive,
    round(p_repurchase, 4)                                                  AS p_repurchase,
    recency_days,
    round(rhythm_days, 1)                                                   AS rhythm_days,
    rhythm_source,
    open_tickets,
    overdue_tickets,
    complaints_90d,
    low_satisfaction,
    abc_class,
    clv,
    points_alive,
    points_lapse,
    points_value,
    points_open,
    points_overdue,
    points_complaints,
    points_satisfaction,
    weight_present,
    has_orders
FROM scored
