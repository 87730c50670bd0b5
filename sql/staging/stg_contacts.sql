-- materialized: table
-- description: Contacts from every source, latest version of each (with var
--   as_of set, as a backtest does: contacts created by then, in the latest
--   version updated by then, else their oldest), with e-mail
--   and phone normalised for identity matching: e-mail trimmed and lower case
--   (kept only when it contains @); phone reduced to digits with the country
--   code made explicit (a leading 00 is dropped, a single leading 0 becomes
--   var default_country_code), kept only with at least var
--   identity_min_phone_digits digits so junk such as "0" never links people.
-- tests: not_null(contact_id), unique(source, contact_id)
-- column: source: the source the contact came from
-- column: contact_id: the contact's id in its source
-- column: customer_id: explicit external customer id, when the source knows it
-- column: match_key: any id that names one person across sources, trimmed, compared exactly
-- column: email_norm: trimmed, lower-case e-mail
-- column: phone_norm: digits with country code, e.g. 491511234567
-- column: customer_type: business or consumer (b2b/company/firm → business; b2c/private/person → consumer)
-- column: email_rejected: the trimmed e-mail when it was given but failed normalisation (no @), so the run can say so
-- column: owner: the account owner's e-mail, trimmed (early-warning alerts go there)
-- column: phone_rejected: the phone when it was given but has fewer than identity_min_phone_digits digits
WITH versions AS (
    SELECT *,
           -- a version updated after var as_of (a backtest's cutoff) was not
           -- known then
           coalesce(timezone({{ var('timezone', 'UTC') }}, updated_at)::DATE > CAST({{ var('as_of', NULL) }} AS DATE), false) AS _later
    FROM raw.contacts
    -- a contact created after as_of did not exist yet
    WHERE CAST({{ var('as_of', NULL) }} AS DATE) IS NULL OR created_at IS NULL
       OR timezone({{ var('timezone', 'UTC') }}, created_at)::DATE <= CAST({{ var('as_of', NULL) }} AS DATE)
), ranked AS (
    SELECT *,
           -- the latest version known at as_of, else (a sync job moved
           -- every updated_at past it) the oldest one there is
           row_number() OVER (PARTITION BY _source, contact_id
                              ORDER BY _later, CASE WHEN _later THEN updated_at END ASC,
                                       updated_at DESC NULLS LAST, _file DESC, _source_line DESC NULLS LAST) AS _rn
    FROM versions
), cleaned AS (
    SELECT *,
           regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g') AS _digits,
           lower(trim(email)) AS _email
    FROM ranked
    WHERE _rn = 1 AND NOT coalesce(deleted, false)
), phoned AS (
    SELECT *,
           CASE WHEN _digits = '' THEN NULL
                WHEN starts_with(_digits, '00') THEN substr(_digits, 3)
                WHEN starts_with(_digits, '0') THEN CAST({{ var('default_country_code', '49') }} AS VARCHAR) || substr(_digits, 2)
                ELSE _digits END AS _phone
    FROM cleaned
)
SELECT
    _source                                           AS source,
    contact_id,
    nullif(trim(customer_id), '')                     AS customer_id,
    nullif(trim(match_key), '')                       AS match_key,
    nullif(trim(name), '')                            AS name,
    CASE WHEN contains(_email, '@') THEN _email END   AS email_norm,
    CASE WHEN length(_phone) >= {{ var('identity_min_phone_digits', 6) }} THEN _phone END AS phone_norm,
    CASE WHEN NOT contains(_email, '@') AND _email <> '' THEN trim(email) END AS email_rejected,
    CASE WHEN coalesce(length(_phone), 0) < {{ var('identity_min_phone_digits', 6) }} AND trim(phone) <> '' THEN trim(phone) END AS phone_rejected,
    nullif(trim(company), '')                         AS company,
    CASE WHEN lower(trim(customer_type)) IN ('business', 'b2b', 'company', 'firm', 'corporate') THEN 'business'
         WHEN lower(trim(customer_type)) IN ('consumer', 'b2c', 'private', 'person', 'individual') THEN 'consumer'
    END                                               AS customer_type,
    nullif(trim(business_unit), '')                   AS business_unit,
    lower(nullif(trim(channel), ''))                  AS channel,
    country,
    nullif(trim(owner), '')                           AS owner,
    created_at,
    last_contact_at,
    updated_at
FROM phoned
