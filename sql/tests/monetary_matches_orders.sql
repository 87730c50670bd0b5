-- description: customer_segments.monetary sums to the net revenue of identified customers' orders up to as_of
SELECT s.total AS segments_total, o.total AS orders_total
FROM (SELECT coalesce(sum(monetary), 0) AS total, count(*) AS n FROM customer_segments) s,
     (SELECT coalesce(sum(round(net_amount, 2)), 0) AS total
      FROM (SELECT customer_key, sum(net_amount) AS net_amount FROM customer_orders GROUP BY customer_key)) o
WHERE abs(s.total - o.total) > 0.01
