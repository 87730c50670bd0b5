-- materialized: table
-- description: The one date every mart is measured at: var as_of when set
--   (a date such as 2026-09-30), else the latest order date in the data, so
--   repeated runs over the same data give the same marts. Orders after as_of
--   are ignored by the marts.
-- column: as_of: the reporting date
SELECT coalesce(CAST({{ var('as_of', NULL) }} AS DATE),
                (SELECT max(order_date) FROM stg_orders)) AS as_of
