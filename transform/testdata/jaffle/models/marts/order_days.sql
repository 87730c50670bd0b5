{{
    config(
        materialized='incremental',
        unique_key='order_date'
    )
}}
SELECT order_date, count(*) AS orders, sum(amount) AS revenue
FROM {{ ref('orders') }}
{%- if is_incremental() %}
WHERE order_date >= (SELECT max(order_date) FROM {{ this }})
{%- endif %}
GROUP BY order_date
