-- materialized: table
-- description: Per resolved customer, the service-ticket facts churn risk and
--   follow-up read, measured at as_of: tickets open at as_of (created by then
--   and not resolved by then), those open longer than var ticket_overdue_days
--   (14), complaints and low ratings (satisfaction ≤ var
--   low_satisfaction_max, 2) among tickets created in the last var
--   churn_window_days (90) days, low ratings in the last var
--   satisfaction_window_days (365), the last ticket activity and the last
--   service visit (resolved ticket of a category in var service_categories).
--   Days are days in the reporting time zone (var timezone).
-- tests: unique(customer_key)
-- column: customer_key: the resolved customer
-- column: open_tickets: tickets open at as_of
-- column: overdue_tickets: open tickets created more than ticket_overdue_days before as_of
-- column: complaints_90d: complaint tickets created in the churn window
-- column: low_satisfaction_90d: tickets in the churn window rated at or below low_satisfaction_max
-- column: min_satisfaction_90d: the lowest rating in the churn window
-- column: low_satisfaction: tickets created in the last var satisfaction_window_days (365) rated at or below low_satisfaction_max
-- column: min_satisfaction: the lowest rating in the satisfaction window
-- column: ratings: rated tickets in the satisfaction window
-- column: last_ticket_at: the latest ticket creation or resolution up to as_of
-- column: last_service_at: the latest resolution of a service ticket up to as_of
WITH p AS (
    SELECT as_of,
           {{ var('ticket_overdue_days', 14) }}   AS overdue_days,
           {{ var('churn_window_days', 90) }}     AS window_days,
           {{ var('low_satisfaction_max', 2) }}   AS low_max,
           {{ var('satisfaction_window_days', 365) }} AS rating_days,
           string_split({{ var('service_categories', 'repair,installation,maintenance,service,visit') }}, ',') AS service_categories
    FROM as_of_date
), t AS (
    SELECT i.customer_key, k.*,
           timezone({{ var('timezone', 'UTC') }}, k.created_at)::DATE AS created_date,
           timezone({{ var('timezone', 'UTC') }}, k.created_at)::DATE <= p.as_of
               AND (timezone({{ var('timezone', 'UTC') }}, k.resolved_at)::DATE > p.as_of
                    OR (k.resolved_at IS NULL AND k.status NOT IN ('resolved', 'closed', 'cancelled', 'canceled'))) AS is_open,
           p.*
    FROM stg_tickets k
    JOIN customer_identity i ON i.member_kind = 'customer_id' AND i.member_id = k.customer_id
    CROSS JOIN p
    WHERE timezone({{ var('timezone', 'UTC') }}, k.created_at)::DATE <= p.as_of
)
SELECT customer_key,
       count(*) FILTER (WHERE is_open)                                                   AS open_tickets,
       count(*) FILTER (WHERE is_open AND created_date < as_of - overdue_days::INTEGER)  AS overdue_tickets,
       count(*) FILTER (WHERE category = 'complaint' AND created_date > as_of - window_days::INTEGER) AS complaints_90d,
       count(*) FILTER (WHERE satisfaction <= low_max AND created_date > as_of - window_days::INTEGER) AS low_satisfaction_90d,
       min(satisfaction) FILTER (WHERE created_date > as_of - window_days::INTEGER)      AS min_satisfaction_90d,
       count(*) FILTER (WHERE satisfaction <= low_max AND created_date > as_of - rating_days::INTEGER) AS low_satisfaction,
       min(satisfaction) FILTER (WHERE created_date > as_of - rating_days::INTEGER)      AS min_satisfaction,
       count(satisfaction) FILTER (WHERE created_date > as_of - rating_days::INTEGER)    AS ratings,
       max(CASE WHEN timezone({{ var('timezone', 'UTC') }}, resolved_at)::DATE <= as_of THEN greatest(created_at, resolved_at) ELSE created_at END) AS last_ticket_at,
       max(resolved_at) FILTER (WHERE timezone({{ var('timezone', 'UTC') }}, resolved_at)::DATE <= as_of
                                  AND list_contains(list_transform(service_categories, x -> trim(x)), category)) AS last_service_at
FROM t
GROUP BY customer_key
