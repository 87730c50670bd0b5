-- materialized: table
-- description: Per resolved customer, the attributes of its contacts: each
--   from the most recently updated contact that has a value. customers reads
--   it; a separate table because, at 10M customers, computing it inside
--   customers together with the order attributes ran out of memory.
-- tests: unique(customer_key)
-- column: customer_key: the resolved customer
-- column: contacts: number of contact records of the customer
-- column: last_contact_at: the latest last contact over those records
WITH members AS (
    SELECT customer_key, source, member_id FROM customer_identity WHERE member_kind = 'contact'
)
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
