-- materialized: table
-- description: One row per customer seen in orders or contacts, with the
--   attributes marts carry: business unit, channel and customer type (from the
--   CRM when it knows the customer, else from the customer's orders).
-- tests: unique(customer_id), not_null(business_unit)
WITH from_orders AS (
    SELECT customer_id,
           mode(business_unit) AS business_unit,
           mode(channel)       AS channel,
           min(order_ts)       AS first_order_ts,
           max(order_ts)       AS last_order_ts
    FROM stg_orders
    WHERE customer_id IS NOT NULL
    GROUP BY customer_id
), from_crm AS (
    SELECT customer_id,
           arg_max(business_unit, updated_at) AS business_unit,
           arg_max(channel, updated_at)       AS channel,
           arg_max(customer_type, updated_at) AS customer_type,
           arg_max(name, updated_at)          AS name,
           arg_max(company, updated_at)       AS company,
           max(last_contact_at)               AS last_contact_at
    FROM stg_contacts
    WHERE customer_id IS NOT NULL
    GROUP BY customer_id
)
SELECT
    coalesce(o.customer_id, c.customer_id)                       AS customer_id,
    coalesce(c.business_unit, o.business_unit, 'Unassigned')     AS business_unit,
    coalesce(c.channel, o.channel, 'unknown')                    AS channel,
    coalesce(c.customer_type, 'unknown')                         AS customer_type,
    c.name,
    c.company,
    o.first_order_ts,
    o.last_order_ts,
    c.last_contact_at
FROM from_orders o
FULL OUTER JOIN from_crm c USING (customer_id)
