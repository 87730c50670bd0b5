-- materialized: table
-- description: E-mails and phones too widely shared to identify anyone:
--   info@…, 000000, a call-centre number. A value held by more than var
--   identity_max_shared (20) distinct holders is not used for linking (see
--   identity_links); a holder is a customer id, or a contact without one, so
--   one customer's many records with the same e-mail count once.
-- tests: unique(attr), not_null(holders)
-- column: kind: email or phone
-- column: attr: the value as a node: e:<email_norm> or p:<phone_norm>
-- column: value: the normalised e-mail or phone
-- column: holders: distinct customer ids and contacts without one that carry the value
-- column: contacts: contact records that carry the value
WITH held AS (
    SELECT 'e:' || email_norm AS attr, coalesce('i:' || customer_id, 'c:' || source || ':' || contact_id) AS holder
    FROM stg_contacts WHERE email_norm IS NOT NULL
    UNION ALL
    SELECT 'p:' || phone_norm, coalesce('i:' || customer_id, 'c:' || source || ':' || contact_id)
    FROM stg_contacts WHERE phone_norm IS NOT NULL
), per_holder AS (
    -- two plain groupings instead of count(DISTINCT …), which spills less
    SELECT attr, holder, count(*) AS n FROM held GROUP BY attr, holder
)
SELECT CASE WHEN starts_with(attr, 'e:') THEN 'email' ELSE 'phone' END AS kind,
       attr,
       substr(attr, 3) AS value,
       count(*)        AS holders,
       sum(n)::BIGINT  AS contacts
FROM per_holder
GROUP BY attr
HAVING count(*) > {{ var('identity_max_shared', 20) }}
