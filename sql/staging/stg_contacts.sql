-- materialized: table
-- description: Contacts from every source, latest version of each, with e-mail
--   and phone normalised for matching (e-mail trimmed and lower case; phone
--   digits only, with a leading 0 replaced by the default country code).
-- tests: not_null(contact_id), unique(source, contact_id)
WITH ranked AS (
    SELECT *,
           row_number() OVER (PARTITION BY _source, contact_id
                              ORDER BY updated_at DESC NULLS LAST, _file DESC) AS _rn
    FROM raw.contacts
), cleaned AS (
    SELECT *,
           regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g') AS _digits
    FROM ranked
    WHERE _rn = 1 AND NOT coalesce(deleted, false)
)
SELECT
    _source                                           AS source,
    contact_id,
    nullif(trim(customer_id), '')                     AS customer_id,
    nullif(trim(name), '')                            AS name,
    nullif(lower(trim(email)), '')                    AS email_norm,
    CASE WHEN _digits = '' THEN NULL
         WHEN starts_with(_digits, '00') THEN substr(_digits, 3)
         WHEN starts_with(_digits, '0') THEN {{ var('default_country_code', '49') }} || substr(_digits, 2)
         ELSE _digits END                             AS phone_norm,
    company,
    lower(customer_type)                              AS customer_type,
    business_unit,
    lower(channel)                                    AS channel,
    country,
    created_at,
    last_contact_at,
    updated_at
FROM cleaned
