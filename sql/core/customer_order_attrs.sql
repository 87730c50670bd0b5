-- materialized: table
-- description: Per resolved customer with orders, the business unit and
--   channel its order lines name most often (a tie goes to the smallest
--   value); customers falls back to them when no contact has one.
-- tests: unique(customer_key)
-- column: customer_key: the resolved customer
-- column: business_unit: the most frequent business unit on its order lines
-- column: channel: the most frequent channel on its order lines
WITH ids AS (
    SELECT customer_key, member_id AS customer_id FROM customer_identity WHERE member_kind = 'customer_id'
), order_attrs AS (
    -- Counts ranked by a window, instead of mode(): mode keeps a hash map
    -- per customer outside DuckDB's memory limit (and arg_min over a struct
    -- key did not spill either: both ran out of memory at 10M customers),
    -- and mode breaks ties arbitrarily; this spills, and a tie goes to the
    -- smallest value.
    SELECT i.customer_key, o.business_unit, o.channel, count(*) AS n
    FROM stg_orders o
    JOIN ids i USING (customer_id)
    GROUP BY ALL
), attr_ranks AS (
    SELECT customer_key, business_unit, channel,
           row_number() OVER (PARTITION BY customer_key ORDER BY unit_n DESC NULLS LAST, business_unit) AS unit_rank,
           row_number() OVER (PARTITION BY customer_key ORDER BY channel_n DESC NULLS LAST, channel) AS channel_rank
    FROM (SELECT customer_key, business_unit, channel,
                 sum(n) FILTER (WHERE business_unit IS NOT NULL) OVER (PARTITION BY customer_key, business_unit) AS unit_n,
                 sum(n) FILTER (WHERE channel IS NOT NULL) OVER (PARTITION BY customer_key, channel) AS channel_n
          FROM order_attrs)
)
SELECT customer_key,
       any_value(business_unit) FILTER (WHERE unit_rank = 1) AS business_unit,
       any_value(channel) FILTER (WHERE channel_rank = 1)    AS channel
FROM attr_ranks
GROUP BY customer_key
