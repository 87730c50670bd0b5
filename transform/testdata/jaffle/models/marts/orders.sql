{% set payment_methods = ['credit_card', 'coupon', 'bank_transfer', 'gift_card'] %}

WITH payments AS (
    SELECT order_id,
        {% for payment_method in payment_methods -%}
        sum(CASE WHEN payment_method = '{{ payment_method }}' THEN amount ELSE 0 END) AS {{ payment_method }}_amount,
        {% endfor -%}
        sum(amount) AS total_amount
    FROM {{ ref('stg_payments') }}
    GROUP BY order_id
)
SELECT o.order_id,
       o.customer_id,
       o.order_date,
       o.status,
       {% for payment_method in payment_methods -%}
       coalesce(p.{{ payment_method }}_amount, 0) AS {{ payment_method }}_amount,
       {% endfor -%}
       coalesce(p.total_amount, 0) AS amount,
       coalesce(p.total_amount, 0) >= {{ var('big_order_dollars') }} AS big_order
FROM {{ ref('stg_orders') }} o
LEFT JOIN payments p USING (order_id)
