-- materialized: table
-- description: One row per resolved customer (see customer_identity), with the
--   attributes every mart carries. business_unit, channel, customer_type, name
--   and company come from the customer's most recently updated contact that
--   has a value, else from the customer's order lines (most frequent value; a tie goes to the alphabetically first),
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
-- column: owner: the account owner's e-mail (most recently updated contact that has one)
-- column: source_customer_ids: the source customer ids merged into this customer
-- column: contacts: number of contact records merged into this customer
-- column: last_contact_at: last touch recorded in any of the customer's contacts
WITH key_ids AS (
    SELECT DISTINCT customer_key, customer_id FROM customer_identity
), keys AS (
    -- Most customers have one source id: only the others need an ordered
    -- string_agg, which holds its groups in memory.
    SELECT customer_key, CASE WHEN ids = 1 THEN first_id END AS source_customer_ids
    FROM (SELECT customer_key, count(customer_id) AS ids, min(customer_id) AS first_id
          FROM key_ids GROUP BY customer_key)
    WHERE ids <= 1
    UNION ALL
    SELECT customer_key, string_agg(customer_id, ', ' ORDER BY customer_id)
    FROM key_ids
    WHERE customer_key IN (SELECT customer_key FROM key_ids GROUP BY customer_key HAVING count(customer_id) > 1)
      AND customer_id IS NOT NULL
    GROUP BY customer_key
),
-- One row per customer from the three parts by aggregation, not by joining
-- three tables of millions of rows each: the joins needed all their hash
-- tables in memory at once and ran out of memory at 10M customers, an
-- aggregation spills. Each part has at most one row per customer.
combined AS (
    SELECT customer_key, source_customer_ids, NULL AS crm_unit, NULL AS crm_channel, NULL AS crm_type,
           NULL AS name, NULL AS company, NULL AS email, NULL AS phone, NULL AS country, NULL AS owner,
           NULL::BIGINT AS contacts, NULL::TIMESTAMPTZ AS last_contact_at, NULL AS order_unit, NULL AS order_channel
    FROM keys
    UNION ALL BY NAME
    SELECT customer_key, business_unit AS crm_unit, channel AS crm_channel, customer_type AS crm_type,
           name, company, email, phone, country, owner, contacts, last_contact_at
    FROM customer_contact_attrs
    UNION ALL BY NAME
    SELECT customer_key, business_unit AS order_unit, channel AS order_channel
    FROM customer_order_attrs
), merged AS (
    SELECT customer_key,
           any_value(source_customer_ids) AS source_customer_ids, any_value(crm_unit) AS crm_unit,
           any_value(crm_channel) AS crm_channel, any_value(crm_type) AS crm_type, any_value(name) AS name,
           any_value(company) AS company, any_value(email) AS email, any_value(phone) AS phone,
           any_value(country) AS country, any_value(owner) AS owner, any_value(contacts) AS contacts,
           any_value(last_contact_at) AS last_contact_at, any_value(order_unit) AS order_unit,
           any_value(order_channel) AS order_channel
    FROM combined
    GROUP BY customer_key
)
SELECT
    customer_key,
    coalesce(crm_unit, order_unit, {{ var('default_business_unit', 'Unassigned') }}) AS business_unit,
    coalesce(crm_channel, order_channel, 'unknown')                          AS channel,
    coalesce(crm_type,
             CASE WHEN company IS NOT NULL THEN 'business' END,
             {{ var('default_customer_type', 'consumer') }})                AS customer_type,
    name,
    company,
    email,
    phone,
    country,
    owner,
    source_customer_ids,
    coalesce(contacts, 0)                                                    AS contacts,
    last_contact_at
FROM merged
