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
), order_attrs AS (
    -- Counts, then arg_min over (-count, value), instead of mode(): mode keeps
    -- a hash map per customer outside DuckDB's memory limit (millions of
    -- customers ran out of memory) and breaks ties arbitrarily; this spills
    -- and breaks ties by the smallest value.
    SELECT i.customer_key, o.business_unit, o.channel, count(*) AS n
    FROM stg_orders o
    JOIN ids i USING (customer_id)
    GROUP BY ALL
), from_orders AS (
    SELECT customer_key, u.business_unit, c.channel
    FROM (SELECT customer_key, arg_min(business_unit, (-n, business_unit)) AS business_unit
          FROM (SELECT customer_key, business_unit, sum(n) AS n FROM order_attrs
                WHERE business_unit IS NOT NULL GROUP BY ALL)
          GROUP BY customer_key) u
    FULL JOIN (SELECT customer_key, arg_min(channel, (-n, channel)) AS channel
               FROM (SELECT customer_key, channel, sum(n) AS n FROM order_attrs
                     WHERE channel IS NOT NULL GROUP BY ALL)
               GROUP BY customer_key) c USING (customer_key)
), key_ids AS (
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
