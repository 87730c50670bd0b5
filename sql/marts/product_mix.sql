-- materialized: table
-- description: Sales composition per business unit over the last var
--   product_mix_months (12) months up to as_of: net revenue per product
--   category (var product_mix_level: category, the default, or product),
--   ranked by revenue, with its share of the unit's net revenue and the
--   cumulative share down the ranking. All order lines count, anonymous sales
--   included; the business unit is the resolved customer's, else the order
--   line's, else var default_business_unit.
-- tests: not_null(item), not_null(business_unit)
-- column: business_unit: the unit
-- column: as_of: the reporting date
-- column: level: category or product
-- column: item: the category, or the product (name, else id)
-- column: net_revenue: net revenue in the window
-- column: net_quantity: quantity sold minus returned
-- column: orders: orders containing the item
-- column: customers: identified customers who bought it
-- column: revenue_share: share of the unit's net revenue
-- column: rank: 1 = most revenue in the unit
-- column: cumulative_share: running share down the ranking
WITH p AS (
    SELECT as_of,
           (as_of - to_months({{ var('product_mix_months', 12) }}::INTEGER))::DATE AS since,
           lower({{ var('product_mix_level', 'category') }}) AS level
    FROM as_of_date
), lines AS (
    SELECT coalesce(c.business_unit, o.business_unit, {{ var('default_business_unit', 'Unassigned') }}) AS business_unit,
           CASE WHEN p.level = 'product' THEN coalesce(o.product_name, o.product_id, 'Unknown product')
                ELSE o.category END AS item,
           o.source, o.order_id, o.quantity, o.net_amount, o.is_return, i.customer_key
    FROM stg_orders o
    CROSS JOIN p
    LEFT JOIN customer_identity i ON i.member_kind = 'customer_id' AND i.member_id = o.customer_id
    LEFT JOIN customers c ON c.customer_key = i.customer_key
    WHERE o.order_date <= p.as_of AND o.order_date > p.since
), items AS (
    SELECT business_unit, item,
           sum(net_amount)                                      AS net_revenue,
           sum(CASE WHEN is_return THEN -abs(coalesce(quantity, 0)) ELSE coalesce(quantity, 0) END) AS net_quantity,
           count(DISTINCT (source, order_id))                   AS orders,
           count(DISTINCT customer_key)                         AS customers
    FROM lines
    GROUP BY ALL
), ranked AS (
    SELECT *,
           sum(net_revenue) OVER (PARTITION BY business_unit) AS unit_revenue,
           row_number() OVER (PARTITION BY business_unit ORDER BY net_revenue DESC, item) AS rank,
           sum(net_revenue) OVER (PARTITION BY business_unit ORDER BY net_revenue DESC, item
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
    FROM items
)
SELECT
    business_unit,
    (SELECT as_of FROM p)                                       AS as_of,
    (SELECT level FROM p)                                       AS level,
    item,
    round(net_revenue, 2)                                       AS net_revenue,
    net_quantity,
    orders,
    customers,
    round(net_revenue / nullif(unit_revenue, 0), 4)             AS revenue_share,
    rank,
    round(running / nullif(unit_revenue, 0), 4)                 AS cumulative_share
FROM ranked
