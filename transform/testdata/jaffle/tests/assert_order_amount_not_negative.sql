-- A refund never exceeds what was paid.
SELECT order_id, amount
FROM {{ ref('orders') }}
WHERE amount < 0
