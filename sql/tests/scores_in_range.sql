-- description: RFM scores 1–5, churn score 0–100, shares between 0 and 1
SELECT customer_id, r_score, f_score, m_score, cumulative_share, NULL AS churn_score
FROM customer_segments
WHERE r_score NOT BETWEEN 1 AND 5 OR f_score NOT BETWEEN 1 AND 5 OR m_score NOT BETWEEN 1 AND 5
   OR cumulative_share NOT BETWEEN 0 AND 1.000001
UNION ALL
SELECT customer_id, NULL, NULL, NULL, NULL, churn_score
FROM churn_risk
WHERE churn_score NOT BETWEEN 0 AND 100
