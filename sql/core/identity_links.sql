-- materialized: table
-- description: The edges of the identity graph: one row per identifying
--   attribute of a contact (its explicit customer id, match_key, normalised
--   e-mail and normalised phone). Two contacts sharing an attr are the same
--   customer.
--   E-mails and phones in identity_shared_values (held by more than var
--   identity_max_shared customers) are left out: they would merge strangers.
-- tests: not_null(node), not_null(attr), accepted_values(kind, 'customer_id', 'match_key', 'email', 'phone')
-- column: node: the contact, as c:<source>:<contact_id>
-- column: kind: customer_id, match_key, email or phone
-- column: attr: the attribute as a node: i:<customer_id>, m:<match_key>, e:<email_norm> or p:<phone_norm>
WITH contacts AS (
    SELECT 'c:' || source || ':' || contact_id AS node, customer_id, match_key, email_norm, phone_norm
    FROM stg_contacts
)
SELECT node, 'customer_id' AS kind, 'i:' || customer_id AS attr FROM contacts WHERE customer_id IS NOT NULL
UNION ALL SELECT node, 'match_key', 'm:' || match_key FROM contacts WHERE match_key IS NOT NULL
UNION ALL
SELECT * FROM (SELECT node, 'email', 'e:' || email_norm AS attr FROM contacts WHERE email_norm IS NOT NULL
               UNION ALL SELECT node, 'phone', 'p:' || phone_norm FROM contacts WHERE phone_norm IS NOT NULL)
ANTI JOIN identity_shared_values USING (attr)
