-- description: every order line with a customer id maps to exactly one resolved customer
SELECT o.source, o.order_id, o.line_no, o.customer_id, count(i.customer_key) AS keys
FROM stg_orders o
LEFT JOIN customer_identity i ON i.member_kind = 'customer_id' AND i.member_id = o.customer_id
WHERE o.customer_id IS NOT NULL
GROUP BY ALL
HAVING count(i.customer_key) <> 1
