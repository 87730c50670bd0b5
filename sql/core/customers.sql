-- materialized: table
-- description: One row per resolved customer (see customer_identity), with the
--   attributes every mart carries. business_unit, channel, customer_type, name
--   and company come from the customer's most recently updated contact that
--   has a value, else from the customer's order lines (most frequent value),
--   else the defaults: business unit var default_business_unit, channel
--   unknown, customer_type business when a company is known, otherwise var
--   default_customer_type.
-- tests: unique(customer_key), not_null(business_unit), not_null(channel), accepted_values(customer_type, 'business', 'consumer')
-- column: customer_key: the resolved customer
-- column: business_unit: the unit that owns the customer; each unit sees only its own customers
-- column: channel: distributor, agent, dealer, store, direct, online… (lower case)
-- column: customer_type: business or consumer
-- column: name: contact name
-- column: company: company name (business customers)
-- column: email: the customer's e-mail (most recently updated contact)
-- column: phone: the customer's phone, normalised
-- column: country: from the CRM
-- column: source_customer_ids: the source customer ids merged into this customer
-- column: contacts: number of contact records merged into this customer
-- column: last_contact_at: last touch recorded in any of the customer's contacts
WITH members AS (
    SELECT customer_key, source, member_id FROM customer_identity WHERE member_kind = 'contact'
), crm AS (
    SELECT m.customer_key,
           arg_max(c.business_unit, c.updated_at) FILTER (WHERE c.business_unit IS NOT NULL) AS business_unit,
           arg_max(c.channel, c.updated_at)       FILTER (WHERE c.channel IS NOT NULL)       AS channel,
           arg_max(c.customer_type, c.updated_at) FILTER (WHERE c.customer_type IS NOT NULL) AS customer_type,
           arg_max(c.name, c.updated_at)          FILTER (WHERE c.name IS NOT NULL)          AS name,
           arg_max(c.company, c.updated_at)       FILTER (WHERE c.company IS NOT NULL)       AS company,
           arg_max(c.email_norm, c.updated_at)    FILTER (WHERE c.email_norm IS NOT NULL)    AS email,
           arg_max(c.phone_norm, c.updated_at)    FILTER (WHERE c.phone_norm IS NOT NULL)    AS phone,
           arg_max(c.country, c.updated_at)       FILTER (WHERE c.country IS NOT NULL)       AS country,
           max(c.last_contact_at)                                                             AS last_contact_at,
           count(*)                                                                           AS contacts
    FROM members m
    JOIN stg_contacts c ON c.source = m.source AND c.contact_id = m.member_id
    GROUP BY m.customer_key
), ids AS (
    SELECT customer_key, member_id AS customer_id FROM customer_identity WHERE member_kind = 'customer_id'
), from_orders AS (
    SELECT i.customer_key,
           mode(o.business_unit) AS business_unit,
           mode(o.channel)       AS channel
    FROM stg_orders o
    JOIN ids i USING (customer_id)
    GROUP BY i.customer_key
), keys AS (
    SELECT customer_key,
           string_agg(DISTINCT customer_id, ', ' ORDER BY customer_id) FILTER (WHERE customer_id IS NOT NULL) AS source_customer_ids
    FROM customer_identity
    GROUP BY customer_key
)
SELECT
    k.customer_key,
    coalesce(c.business_unit, o.business_unit, {{ var('default_business_unit', 'Unassigned') }}) AS business_unit,
    coalesce(c.channel, o.channel, 'unknown')                                AS channel,
    coalesce(c.customer_type,
             CASE WHEN c.company IS NOT NULL THEN 'business' END,
             {{ var('default_customer_type', 'consumer') }})                AS customer_type,
    c.name,
    c.company,
    c.email,
    c.phone,
    c.country,
    k.source_customer_ids,
    coalesce(c.contacts, 0)                                                  AS contacts,
    c.last_contact_at
FROM keys k
LEFT JOIN crm c USING (customer_key)
LEFT JOIN from_orders o USING (customer_key)
