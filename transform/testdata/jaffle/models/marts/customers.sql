{{ log("building customers for target " ~ target.name) }}
WITH orders AS (
    SELECT customer_id,
           min(order_date) AS first_order,
           max(order_date) AS most_recent_order,
           count(order_id) AS number_of_orders,
           sum(amount) AS customer_lifetime_value
    FROM {{ ref('orders') }}
    GROUP BY customer_id
)
SELECT c.customer_id,
       c.first_name,
       c.last_name,
       o.first_order,
       o.most_recent_order,
       coalesce(o.number_of_orders, 0) AS number_of_orders,
       o.customer_lifetime_value,
       '{{ env_var("JAFFLE_REGION", "eu") | upper }}' AS region,
       '{{ target.type }}' AS warehouse_type
FROM {{ ref('stg_customers') }} c
LEFT JOIN orders o USING (customer_id)
