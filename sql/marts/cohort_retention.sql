-- materialized: table
-- description: Cohort retention per business unit: customers grouped by the
--   month of their first purchase (the cohort), and for each month since
--   (0 = the first month) how many of them bought again and what they spent.
--   Every month from the cohort month to the month of as_of has a row, with
--   0 when nobody in the cohort bought, so a heat map shows gaps as 0%, not
--   as missing. Purchase orders only (returns and cancellations do not make
--   a customer active); revenue is their net value. The month of as_of is
--   usually incomplete: its share is lower than a full month's.
-- tests: not_null(business_unit), not_null(cohort_month), unique(business_unit, cohort_month, months_since)
-- column: business_unit: the unit that owns the customers
-- column: as_of: the reporting date
-- column: cohort_month: first day of the month of the customers' first purchase
-- column: months_since: months from the cohort month (0 = the cohort month itself)
-- column: cohort_customers: customers in the cohort
-- column: active_customers: cohort customers with a purchase in that month
-- column: retention: active_customers ÷ cohort_customers
-- column: revenue: net value of the cohort's purchase orders in that month
WITH p AS (
    SELECT as_of, date_trunc('month', as_of)::DATE AS as_of_month FROM as_of_date
), o AS (
    SELECT o.customer_key, c.business_unit, date_trunc('month', o.order_date)::DATE AS month, o.net_amount
    FROM customer_orders o
    JOIN customers c USING (customer_key)
    CROSS JOIN p
    WHERE o.is_purchase AND o.order_date <= p.as_of
), first_month AS (
    SELECT customer_key, business_unit, min(month) AS cohort_month FROM o GROUP BY ALL
), sizes AS (
    SELECT business_unit, cohort_month, count(*) AS cohort_customers FROM first_month GROUP BY ALL
), grid AS (
    SELECT s.business_unit, s.cohort_month, s.cohort_customers,
           unnest(range(0, date_diff('month', s.cohort_month, p.as_of_month) + 1)) AS months_since
    FROM sizes s CROSS JOIN p
), active AS (
    SELECT f.business_unit, f.cohort_month, date_diff('month', f.cohort_month, o.month) AS months_since,
           count(DISTINCT o.customer_key) AS active_customers, sum(o.net_amount) AS revenue
    FROM o JOIN first_month f USING (customer_key, business_unit)
    GROUP BY ALL
)
SELECT g.business_unit,
       p.as_of,
       g.cohort_month,
       g.months_since::INTEGER                                     AS months_since,
       g.cohort_customers,
       coalesce(a.active_customers, 0)                             AS active_customers,
       round(coalesce(a.active_customers, 0) / g.cohort_customers, 4) AS retention,
       round(coalesce(a.revenue, 0), 2)                            AS revenue
FROM grid g
CROSS JOIN p
LEFT JOIN active a USING (business_unit, cohort_month, months_since)
