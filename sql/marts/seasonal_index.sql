-- materialized: table
-- description: Seasonality per business unit and calendar month. The window is
--   the last var seasonal_years (3) × 12 complete months up to as_of (the
--   month of as_of counts only when as_of is its last day), starting no
--   earlier than the unit's first order month; every month in the window
--   counts, with 0 revenue when nothing was sold. seasonal_index = the average
--   net revenue of that calendar month over the years in the window ÷ the
--   average over all months in the window × 100 (100 = an average month).
--   share_of_year = that month's average ÷ the sum of the 12 monthly averages,
--   and monthly_target spreads the yearly target (var yearly_target, default
--   the unit's net revenue of the last 12 months of the window) by that share.
--   All order lines count, anonymous sales included; the business unit is the
--   resolved customer's, else the order line's, else var
--   default_business_unit. Months not in the window have NULL figures.
-- tests: not_null(business_unit), not_null(month)
-- column: business_unit: the unit
-- column: as_of: the reporting date
-- column: month: calendar month 1–12
-- column: month_name: January … December
-- column: years_observed: how many times the month occurs in the window
-- column: avg_revenue: average net revenue of the month over the window
-- column: overall_monthly_avg: average net revenue per month over the window
-- column: seasonal_index: avg_revenue ÷ overall_monthly_avg × 100
-- column: share_of_year: the month's share of a year's revenue
-- column: yearly_target: the target spread over the months
-- column: monthly_target: yearly_target × share_of_year
-- column: window_start: first month of the window
-- column: window_end: last month of the window
WITH p AS (
    SELECT as_of,
           date_trunc('month', as_of + 1) - INTERVAL 1 MONTH AS end_month,
           {{ var('seasonal_years', 3) }}::INTEGER AS years
    FROM as_of_date
), lines AS (
    SELECT coalesce(c.business_unit, o.business_unit, {{ var('default_business_unit', 'Unassigned') }}) AS business_unit,
           date_trunc('month', o.order_date)::DATE AS month_start,
           o.net_amount
    FROM stg_orders o
    LEFT JOIN customer_identity i ON i.member_kind = 'customer_id' AND i.member_id = o.customer_id
    LEFT JOIN customers c ON c.customer_key = i.customer_key
    WHERE o.order_date <= (SELECT as_of FROM p)
), units AS (
    SELECT l.business_unit,
           greatest(min(l.month_start), (p.end_month - to_months(12 * p.years - 1))::DATE) AS window_start,
           p.end_month::DATE AS window_end
    FROM lines l, p
    GROUP BY l.business_unit, p.end_month, p.years
), months AS (
    SELECT u.business_unit, u.window_start, u.window_end, m.month_start::DATE AS month_start
    FROM units u,
         LATERAL (SELECT unnest(generate_series(u.window_start::TIMESTAMP, u.window_end::TIMESTAMP, INTERVAL 1 MONTH)) AS month_start) m
    WHERE u.window_start <= u.window_end
), revenue AS (
    SELECT m.business_unit, m.month_start, coalesce(sum(l.net_amount), 0) AS revenue
    FROM months m
    LEFT JOIN lines l USING (business_unit, month_start)
    GROUP BY m.business_unit, m.month_start
), by_month AS (
    SELECT business_unit, month(month_start) AS month, count(*) AS years_observed, avg(revenue) AS avg_revenue
    FROM revenue
    GROUP BY ALL
), unit_stats AS (
    SELECT r.business_unit,
           avg(r.revenue) AS overall_monthly_avg,
           sum(r.revenue) FILTER (WHERE r.month_start > u.window_end - INTERVAL 12 MONTH) AS last_12
    FROM revenue r
    JOIN units u USING (business_unit)
    GROUP BY r.business_unit
), calendar AS (
    SELECT u.business_unit, u.window_start, u.window_end, m.month
    FROM units u, range(1, 13) m(month)
), joined AS (
    SELECT c.*, b.years_observed, b.avg_revenue, s.overall_monthly_avg, s.last_12,
           sum(b.avg_revenue) OVER (PARTITION BY c.business_unit) AS sum_of_avgs
    FROM calendar c
    LEFT JOIN by_month b USING (business_unit, month)
    LEFT JOIN unit_stats s USING (business_unit)
)
SELECT
    business_unit,
    (SELECT as_of FROM p)                                                    AS as_of,
    month::INTEGER                                                           AS month,
    monthname(make_date(2000, month::INTEGER, 1))                            AS month_name,
    coalesce(years_observed, 0)                                              AS years_observed,
    round(avg_revenue, 2)                                                    AS avg_revenue,
    round(overall_monthly_avg, 2)                                            AS overall_monthly_avg,
    round(100 * avg_revenue / nullif(overall_monthly_avg, 0), 1)             AS seasonal_index,
    round(avg_revenue / nullif(sum_of_avgs, 0), 4)                           AS share_of_year,
    round(coalesce({{ var('yearly_target', NULL) }}, last_12), 2)            AS yearly_target,
    round(coalesce({{ var('yearly_target', NULL) }}, last_12) * avg_revenue / nullif(sum_of_avgs, 0), 2) AS monthly_target,
    window_start,
    window_end
FROM joined
