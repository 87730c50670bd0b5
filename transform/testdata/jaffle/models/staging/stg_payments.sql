{{ config(materialized='table') }}
SELECT id AS payment_id,
       order_id,
       payment_method,
       {{ cents_to_dollars('amount') }} AS amount
FROM {{ ref('raw_payments') }}
WHERE amount >= {{ var('min_amount') }}
