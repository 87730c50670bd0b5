-- materialized: table
-- description: The edges of the identity graph: one row per identifying
--   attribute of a contact (its explicit customer id, normalised e-mail and
--   normalised phone). Two contacts sharing an attr are the same customer.
-- tests: not_null(node), not_null(attr), accepted_values(kind, 'customer_id', 'email', 'phone')
-- column: node: the contact, as c:<source>:<contact_id>
-- column: kind: customer_id, email or phone
-- column: attr: the attribute as a node: i:<customer_id>, e:<email_norm> or p:<phone_norm>
WITH contacts AS (
    SELECT 'c:' || source || ':' || contact_id AS node, customer_id, email_norm, phone_norm
    FROM stg_contacts
)
SELECT node, 'customer_id' AS kind, 'i:' || customer_id AS attr FROM contacts WHERE customer_id IS NOT NULL
UNION ALL SELECT node, 'email', 'e:' || email_norm FROM contacts WHERE email_norm IS NOT NULL
UNION ALL SELECT node, 'phone', 'p:' || phone_norm FROM contacts WHERE phone_norm IS NOT NULL
