-- description: no NaN or infinite numbers in the value and churn marts
SELECT customer_id, 'customer_value' AS mart
FROM customer_value
WHERE NOT (isfinite(p_alive) AND isfinite(clv) AND isfinite(expected_purchases_90d)
           AND isfinite(expected_purchases_365d) AND isfinite(expected_avg_spend))
UNION ALL
SELECT customer_id, 'churn_risk'
FROM churn_risk
WHERE NOT (isfinite(p_alive) AND isfinite(rhythm_days) AND isfinite(points_alive) AND isfinite(points_lapse)
           AND isfinite(points_value) AND isfinite(p_repurchase))
