-- materialized: table
-- description: Per business unit and RFM segment: customers, net revenue, the
--   segment's share of the unit's customers and revenue, and average recency,
--   frequency and monetary value. The executive report reads this.
-- tests: not_null(segment), not_null(business_unit)
SELECT
    business_unit,
    segment,
    any_value(as_of)                                                        AS as_of,
    count(*)                                                                AS customers,
    round(sum(monetary), 2)                                                 AS revenue,
    round(count(*) / sum(count(*)) OVER (PARTITION BY business_unit), 4)    AS customer_share,
    round(sum(monetary) / nullif(sum(sum(monetary)) OVER (PARTITION BY business_unit), 0), 4) AS revenue_share,
    round(avg(recency_days), 1)                                             AS avg_recency_days,
    round(avg(frequency), 2)                                                AS avg_frequency,
    round(avg(monetary), 2)                                                 AS avg_monetary
FROM customer_segments
GROUP BY business_unit, segment
