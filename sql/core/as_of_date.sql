-- materialized: table
-- description: The one date every mart is measured at: var as_of when set
--   (a date such as 2026-09-30), else the latest date in the data of any
--   entity: order days, ticket creation and resolution, CRM contact
--   creation and last contact (not updated_at, which sync jobs move), days
--   in the reporting time zone (var timezone), so a
--   warehouse with only tickets or only contacts has one too and repeated
--   runs over the same data give the same marts. Rows after as_of are
--   ignored by the marts; the run says how many there are.
-- column: as_of: the reporting date
-- column: as_of_from: var (set in cdw.yaml), orders, tickets or contacts: where the date came from
WITH latest AS (
    SELECT 'orders' AS entity, max(order_date) AS d FROM stg_orders
    UNION ALL
    SELECT 'tickets', greatest(max(timezone({{ var('timezone', 'UTC') }}, created_at)::DATE), max(timezone({{ var('timezone', 'UTC') }}, resolved_at)::DATE))
    FROM stg_tickets
    UNION ALL
    SELECT 'contacts', greatest(max(timezone({{ var('timezone', 'UTC') }}, created_at)::DATE), max(timezone({{ var('timezone', 'UTC') }}, last_contact_at)::DATE))
    FROM stg_contacts
), data AS (
    -- the latest entity; orders first on a tie
    SELECT d, entity FROM latest WHERE d IS NOT NULL
    ORDER BY d DESC, CASE entity WHEN 'orders' THEN 1 WHEN 'tickets' THEN 2 ELSE 3 END
    LIMIT 1
)
SELECT coalesce(CAST({{ var('as_of', NULL) }} AS DATE), (SELECT d FROM data)) AS as_of,
       CASE WHEN CAST({{ var('as_of', NULL) }} AS DATE) IS NOT NULL THEN 'var'
            ELSE (SELECT entity FROM data) END AS as_of_from
