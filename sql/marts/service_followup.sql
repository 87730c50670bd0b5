-- materialized: table
-- description: The follow-up list: customers nobody has touched for more than
--   var followup_no_touch_days (30) days (last order, ticket activity or CRM
--   contact before as_of), and customers whose service revisit is overdue: the
--   last service (CRM contact or resolved ticket of a service category, see
--   customer_tickets; else the first order) is more than var
--   followup_revisit_days (90) days before as_of. The revisit rule applies to
--   customers with service history (a ticket or a CRM contact) and, from the
--   first order, to every customer of the units in var followup_revisit_units
--   (comma-separated, default none): a shop without service data gets no
--   revisit rows. var followup_rules sets both periods per business unit and
--   customer type, "unit/customer_type=no_touch_days/revisit_days" entries
--   separated by ";" with * for any (e.g. "*/business=30/30; */consumer=90/90");
--   the most specific entry wins (unit and type, unit, type), else the two
--   vars above. Customers in lifecycle stage
--   lost are left out unless var followup_include_lost is true; customers
--   without orders (prospects in the CRM, customers known only from
--   tickets) are included. priority ranks the
--   unit's list by churn score, then net revenue.
-- tests: unique(customer_id), not_null(reason)
-- column: customer_id: the resolved customer (customer_identity.customer_key)
-- column: business_unit: the unit that owns the customer
-- column: channel: the customer's channel
-- column: customer_type: business or consumer
-- column: as_of: the reporting date
-- column: name: contact name
-- column: email: contact e-mail
-- column: phone: contact phone
-- column: last_order_at: last order of any kind up to as_of
-- column: last_ticket_at: last ticket activity up to as_of
-- column: last_contact_at: last touch recorded in the CRM up to as_of
-- column: last_touch_at: the latest of the three
-- column: days_since_touch: days from the last touch to as_of (NULL when never touched)
-- column: no_touch: true when not touched for more than followup_no_touch_days
-- column: last_service_at: last service contact or service ticket resolution
-- column: revisit_due: when the next service revisit was due (NULL when the revisit rule does not apply)
-- column: revisit_overdue_days: days the revisit is overdue (0 when not overdue)
-- column: revisit_overdue: true when the revisit is overdue
-- column: reason: why the customer is on the list, in words
-- column: lifecycle_stage: the customer's lifecycle stage (NULL without orders)
-- column: churn_band: the customer's churn band (NULL without orders)
-- column: monetary: net revenue to date
-- column: priority: 1 = call first, within the business unit
WITH p AS (
    SELECT as_of,
           list_transform(string_split({{ var('followup_revisit_units', '') }}, ','), u -> trim(u)) AS revisit_units
    FROM as_of_date
), rule_text AS (
    SELECT trim(unnest(string_split({{ var('followup_rules', '') }}, ';'))) AS rule
), rules AS (
    -- "unit/customer_type=no_touch_days/revisit_days", * for any
    SELECT nullif(trim(split_part(split_part(rule, '=', 1), '/', 1)), '*')         AS unit,
           nullif(trim(split_part(split_part(rule, '=', 1), '/', 2)), '*')         AS ctype,
           CAST(nullif(trim(split_part(split_part(rule, '=', 2), '/', 1)), '') AS INTEGER) AS rule_no_touch,
           CAST(nullif(trim(split_part(split_part(rule, '=', 2), '/', 2)), '') AS INTEGER) AS rule_revisit
    FROM rule_text
    WHERE rule <> ''
), customer_rules AS (
    -- the most specific rule: unit and type, then unit, then type
    SELECT c.customer_key,
           coalesce(r.rule_no_touch, {{ var('followup_no_touch_days', 30) }}) AS no_touch_days,
           coalesce(r.rule_revisit, {{ var('followup_revisit_days', 90) }})   AS revisit_days
    FROM customers c
    LEFT JOIN rules r
        ON (r.unit IS NULL OR r.unit = c.business_unit) AND (r.ctype IS NULL OR r.ctype = c.customer_type)
    QUALIFY row_number() OVER (PARTITION BY c.customer_key
                               ORDER BY (r.unit IS NOT NULL)::INTEGER * 2 + (r.ctype IS NOT NULL)::INTEGER DESC) = 1
), facts AS (
    SELECT c.customer_key, c.business_unit, c.channel, c.customer_type, c.name, c.email, c.phone, c.contacts, p.*,
           cr.no_touch_days, cr.revisit_days,
           -- service history: a ticket or a CRM contact, or a unit that
           -- runs revisits from the first order
           t.customer_key IS NOT NULL OR c.last_contact_at IS NOT NULL
               OR list_contains(p.revisit_units, c.business_unit)            AS revisits,
           s.last_order_ts                                                    AS last_order_at,
           t.last_ticket_at,
           CASE WHEN timezone({{ var('timezone', 'UTC') }}, c.last_contact_at)::DATE <= p.as_of THEN c.last_contact_at END AS last_contact_at,
           s.first_order_date,
           t.last_service_at AS last_service_ticket_at,
           g.lifecycle_stage, r.churn_band, r.churn_score, s.net_revenue
    FROM customers c
    CROSS JOIN p
    JOIN customer_rules cr USING (customer_key)
    LEFT JOIN customer_summary s USING (customer_key)
    LEFT JOIN customer_tickets t USING (customer_key)
    LEFT JOIN customer_segments g ON g.customer_id = c.customer_key
    LEFT JOIN churn_risk r ON r.customer_id = c.customer_key
), touched AS (
    SELECT *,
           greatest(last_order_at, last_ticket_at, last_contact_at)              AS last_touch_at,
           greatest(last_contact_at, last_service_ticket_at)                     AS last_service_at
    FROM facts
), due AS (
    SELECT *,
           date_diff('day', timezone({{ var('timezone', 'UTC') }}, last_touch_at)::DATE, as_of)                          AS days_since_touch,
           (coalesce(timezone({{ var('timezone', 'UTC') }}, last_service_at)::DATE, first_order_date) + revisit_days::INTEGER) AS revisit_due
    FROM touched
), flagged AS (
    SELECT *,
           coalesce(days_since_touch > no_touch_days, true)                      AS no_touch,
           revisits AND coalesce(revisit_due < as_of, false)                     AS revisit_overdue
    FROM due
)
SELECT
    customer_key AS customer_id,
    business_unit,
    channel,
    customer_type,
    as_of,
    name,
    email,
    phone,
    last_order_at,
    last_ticket_at,
    last_contact_at,
    last_touch_at,
    days_since_touch,
    no_touch,
    last_service_at,
    CASE WHEN revisits THEN revisit_due END                                    AS revisit_due,
    CASE WHEN revisit_overdue THEN date_diff('day', revisit_due, as_of) ELSE 0 END AS revisit_overdue_days,
    revisit_overdue,
    concat_ws('; ',
        CASE WHEN no_touch AND days_since_touch IS NULL THEN 'never touched'
             WHEN no_touch THEN format('no touch for {} days', days_since_touch) END,
        CASE WHEN revisit_overdue THEN format('service revisit overdue by {} days', date_diff('day', revisit_due, as_of)) END
    )                                                                          AS reason,
    lifecycle_stage,
    churn_band,
    round(net_revenue, 2)                                                      AS monetary,
    row_number() OVER (PARTITION BY business_unit
                       ORDER BY coalesce(churn_score, 0) DESC, coalesce(net_revenue, 0) DESC, customer_key) AS priority
FROM flagged
WHERE (no_touch OR revisit_overdue)
  AND (last_order_at IS NOT NULL OR last_ticket_at IS NOT NULL OR contacts > 0)  -- known at as_of
  AND (coalesce(lifecycle_stage, '') <> 'lost' OR {{ var('followup_include_lost', false) }})
