-- materialized: table
-- description: Per business unit and RFM segment: customers, net revenue, the
--   segment's share of the unit's customers and revenue, average predicted
--   CLV, the share of its customers at high or critical churn risk, early
--   warnings, and average recency, frequency and monetary value. The
--   executive report reads this.
-- tests: not_null(segment), not_null(business_unit), unique(business_unit, segment)
-- column: business_unit: the unit
-- column: segment: the RFM segment
-- column: as_of: the reporting date
-- column: customers: customers in the segment
-- column: revenue: their net revenue
-- column: customer_share: share of the unit's customers
-- column: revenue_share: share of the unit's net revenue
-- column: avg_clv: average predicted CLV
-- column: total_clv: sum of predicted CLV
-- column: high_churn_share: share of the segment's customers in churn band high or critical
-- column: early_warnings: customers flagged for early warning
-- column: avg_recency_days: average days since the last purchase
-- column: avg_frequency: average purchase orders
-- column: avg_monetary: average net revenue
SELECT
    s.business_unit,
    s.segment,
    any_value(s.as_of)                                                      AS as_of,
    count(*)                                                                AS customers,
    round(sum(s.monetary), 2)                                               AS revenue,
    round(count(*) / sum(count(*)) OVER (PARTITION BY s.business_unit), 4)  AS customer_share,
    round(sum(s.monetary) / nullif(sum(sum(s.monetary)) OVER (PARTITION BY s.business_unit), 0), 4) AS revenue_share,
    -- clv is a DOUBLE of cents: summed as DECIMAL, the result does not
    -- depend on the order rows arrive in (an average on a .5 cent could round
    -- either way)
    round(avg(v.clv::DECIMAL(18, 2)), 2)                                    AS avg_clv,
    round(sum(v.clv::DECIMAL(18, 2)), 2)::DOUBLE                            AS total_clv,
    round(avg(CASE WHEN r.churn_band IN ('high', 'critical') THEN 1 ELSE 0 END), 4) AS high_churn_share,
    count(*) FILTER (WHERE r.early_warning)                                 AS early_warnings,
    round(avg(s.recency_days), 1)                                           AS avg_recency_days,
    round(avg(s.frequency), 2)                                              AS avg_frequency,
    round(avg(s.monetary), 2)                                               AS avg_monetary
FROM customer_segments s
LEFT JOIN customer_value v USING (customer_id)
LEFT JOIN churn_risk r USING (customer_id)
GROUP BY s.business_unit, s.segment
