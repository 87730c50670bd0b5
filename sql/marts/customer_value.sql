-- materialized: table
-- description: Historic and predicted value per identified customer. Historic:
--   net revenue, purchase orders, average order value, margin and tenure.
--   Predicted with the purchase model clv_params chose (BG/NBD or
--   Pareto/NBD, see clv_model) and Gamma-Gamma, fitted on all customers
--   (table clv_params; time unit days, a month = 365.25/12 days): expected
--   purchases in the next 90 and 365 days, P(alive), expected average spend
--   per purchase, and CLV = the monthly discounted sum of expected purchases ×
--   expected spend over var clv_horizon_months (12) at var
--   clv_monthly_discount (0.01), times var clv_margin (1 = revenue CLV; set the
--   gross margin ratio for a profit CLV). Gamma-Gamma needs positive spend:
--   customers with one purchase day or a non-positive mean repeat spend are
--   left out of its fit and get the population mean spend; a degenerate fit
--   uses the fallback named in model_fallback. Spend inputs are net: returns
--   offset the purchases they reverse (customer_history), and a customer with
--   net revenue ≤ 0 has CLV 0.
-- tests: unique(customer_id), not_null(clv), not_null(p_alive)
-- column: customer_id: the resolved customer (customer_identity.customer_key)
-- column: business_unit: the unit that owns the customer
-- column: channel: the customer's channel
-- column: customer_type: business or consumer
-- column: as_of: the reporting date
-- column: historic_revenue: net revenue to date
-- column: orders: purchase orders to date
-- column: avg_order_value: historic_revenue / orders (NULL without purchase orders)
-- column: margin: net revenue − net cost
-- column: tenure_days: days from the first purchase to as_of
-- column: frequency: BG/NBD repeat purchase days
-- column: recency: days from the first to the last purchase day
-- column: t: days from the first purchase day to as_of
-- column: monetary: mean net value of repeat purchase days (Gamma-Gamma input)
-- column: p_alive: probability that the customer is still active (the chosen purchase model)
-- column: expected_purchases_90d: expected purchase days in the next 90 days
-- column: expected_purchases_365d: expected purchase days in the next 365 days
-- column: expected_avg_spend: Gamma-Gamma expected spend per purchase
-- column: clv: predicted discounted value over the horizon
-- column: clv_horizon_months: the CLV horizon used
-- column: model_fallback: empty when both models are maximum-likelihood fits, else what was used instead
-- column: purchase_model: bgnbd or pnbd, the model clv_params chose
WITH p AS (
    SELECT *,
           {{ var('clv_horizon_months', 12) }}::INTEGER    AS horizon,
           {{ var('clv_monthly_discount', 0.01) }}::DOUBLE AS discount,
           365.25 / 12                                     AS days_per_month
    FROM clv_params
), scored AS (
    SELECT s.*, c.business_unit, c.channel, c.customer_type,
           p.horizon, p.discount, p.days_per_month, p.fallback, p.gg_population_mean,
           p.r, p.alpha, p.a, p.b, p.p, p.q, p.gamma, p.model, p.pnbd_r, p.pnbd_alpha, p.pnbd_s, p.pnbd_beta,
           -- Gamma-Gamma needs a positive mean repeat spend
           s.frequency = 0 OR s.monetary > 0 AS gg_ok,
           CASE WHEN p.model = 'pnbd' THEN pnbd_p_alive(p.pnbd_r, p.pnbd_alpha, p.pnbd_s, p.pnbd_beta, s.frequency, s.recency, s.t)
                ELSE bgnbd_p_alive(p.r, p.alpha, p.a, p.b, s.frequency, s.recency, s.t) END AS p_alive,
           CASE WHEN p.model = 'pnbd' THEN pnbd_expected_purchases(p.pnbd_r, p.pnbd_alpha, p.pnbd_s, p.pnbd_beta, 90, s.frequency, s.recency, s.t)
                ELSE bgnbd_expected_purchases(p.r, p.alpha, p.a, p.b, 90, s.frequency, s.recency, s.t) END  AS e90,
           CASE WHEN p.model = 'pnbd' THEN pnbd_expected_purchases(p.pnbd_r, p.pnbd_alpha, p.pnbd_s, p.pnbd_beta, 365, s.frequency, s.recency, s.t)
                ELSE bgnbd_expected_purchases(p.r, p.alpha, p.a, p.b, 365, s.frequency, s.recency, s.t) END AS e365
    FROM customer_summary s
    JOIN customers c USING (customer_key)
    CROSS JOIN p
), valued AS (
    SELECT *,
           coalesce(CASE WHEN gg_ok THEN gg_expected_spend(p, q, gamma, frequency, coalesce(monetary, 0)) END,
                    gg_population_mean, 0) AS spend,
           CASE WHEN NOT gg_ok THEN NULL
                WHEN model = 'pnbd' THEN pnbd_clv_value(pnbd_r, pnbd_alpha, pnbd_s, pnbd_beta, p, q, gamma, frequency, recency, t,
                                                        coalesce(monetary, 0), horizon, discount, days_per_month)
                ELSE clv_value(r, alpha, a, b, p, q, gamma, frequency, recency, t, coalesce(monetary, 0),
                               horizon, discount, days_per_month) END AS clv_gg
    FROM scored
)
SELECT
    customer_key AS customer_id,
    business_unit,
    channel,
    customer_type,
    as_of,
    round(net_revenue, 2)                                         AS historic_revenue,
    orders,
    round(net_revenue / nullif(orders, 0), 2)                     AS avg_order_value,
    round(net_revenue - net_cost, 2)                              AS margin,
    t::INTEGER                                                    AS tenure_days,
    frequency::INTEGER                                            AS frequency,
    recency::INTEGER                                              AS recency,
    t::INTEGER                                                    AS t,
    round(monetary, 2)                                            AS monetary,
    round(coalesce(p_alive, 0), 4)                                AS p_alive,
    round(coalesce(e90, 0), 4)                                    AS expected_purchases_90d,
    round(coalesce(e365, 0), 4)                                   AS expected_purchases_365d,
    round(spend, 2)                                               AS expected_avg_spend,
    -- clv_value is NULL for customers outside Gamma-Gamma (and for one-time
    -- buyers when the fitted q ≤ 1): the same discounted sum with the
    -- population mean spend, month by month
    -- a customer whose returns and cancellations net everything away
    -- (net revenue ≤ 0) is worth nothing until they buy again
    CASE WHEN net_revenue <= 0 THEN 0 ELSE
    round({{ var('clv_margin', 1) }} * coalesce(clv_gg,
        spend * list_sum(list_transform(range(1, horizon + 1), i ->
            greatest(0, coalesce(CASE WHEN model = 'pnbd' THEN pnbd_expected_purchases(pnbd_r, pnbd_alpha, pnbd_s, pnbd_beta, i * days_per_month, frequency, recency, t)
                                      ELSE bgnbd_expected_purchases(r, alpha, a, b, i * days_per_month, frequency, recency, t) END, 0)
                      - coalesce(CASE WHEN model = 'pnbd' THEN pnbd_expected_purchases(pnbd_r, pnbd_alpha, pnbd_s, pnbd_beta, (i - 1) * days_per_month, frequency, recency, t)
                                      ELSE bgnbd_expected_purchases(r, alpha, a, b, (i - 1) * days_per_month, frequency, recency, t) END, 0))
            / pow(1 + discount, i))),
        0), 2) END                                                AS clv,
    horizon                                                       AS clv_horizon_months,
    coalesce(fallback, '')                                        AS model_fallback,
    model                                                         AS purchase_model
FROM valued
