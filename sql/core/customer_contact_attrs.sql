-- materialized: table
-- description: Per resolved customer, the attributes of its contacts: each
--   from the most recently updated contact that has a value (contacts without
--   updated_at, as most CRM exports have, count as oldest; ties go to the
--   last source and contact id, so reruns agree). customers reads
--   it; a separate table because, at 10M customers, computing it inside
--   customers together with the order attributes ran out of memory.
-- tests: unique(customer_key)
-- column: customer_key: the resolved customer
-- column: contacts: number of contact records of the customer
-- column: last_contact_at: the latest last contact over those records
WITH ordered AS (
    -- One BIGINT recency rank per contact: arg_max by updated_at alone
    -- skipped every contact whose updated_at is NULL, so a CRM export
    -- without that column lost all its attributes.
    SELECT m.customer_key, c.business_unit, c.channel, c.customer_type, c.name, c.company,
           c.email_norm, c.phone_norm, c.country, c.owner, c.last_contact_at,
           row_number() OVER (ORDER BY c.updated_at ASC NULLS FIRST, c.source, c.contact_id) AS _recency
    FROM customer_identity m
    JOIN stg_contacts c ON c.source = m.source AND c.contact_id = m.member_id
    WHERE m.member_kind = 'contact'
)
SELECT customer_key,
       arg_max(business_unit, _recency) FILTER (WHERE business_unit IS NOT NULL) AS business_unit,
       arg_max(channel, _recency)       FILTER (WHERE channel IS NOT NULL)       AS channel,
       arg_max(customer_type, _recency) FILTER (WHERE customer_type IS NOT NULL) AS customer_type,
       arg_max(name, _recency)          FILTER (WHERE name IS NOT NULL)          AS name,
       arg_max(company, _recency)       FILTER (WHERE company IS NOT NULL)       AS company,
       arg_max(email_norm, _recency)    FILTER (WHERE email_norm IS NOT NULL)    AS email,
       arg_max(phone_norm, _recency)    FILTER (WHERE phone_norm IS NOT NULL)    AS phone,
       arg_max(country, _recency)       FILTER (WHERE country IS NOT NULL)       AS country,
       arg_max(owner, _recency)         FILTER (WHERE owner IS NOT NULL)         AS owner,
       max(last_contact_at)                                                      AS last_contact_at,
       count(*)                                                                  AS contacts
FROM ordered
GROUP BY customer_key
