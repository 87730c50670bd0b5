-- materialized: incremental
-- unique_key: source, order_id, line_no
-- description: Order lines from every source, the latest version of each line only
--   (updates replace, soft deletes remove). net_amount is the line amount (or
--   quantity × unit_price) made negative for negative quantities or amounts
--   (returns, cancellation lines), so sums give net revenue; a line with a
--   cancelled, returned or refunded status and a positive quantity and amount
--   is void: it counts 0 (nothing was paid), not as a negative sale. A line of
--   value 0 stays in (its order still counts as an order). Incremental: a run
--   recomputes only the lines that appear in raw files committed since the
--   last build, from every version of those lines, so a late-arriving older
--   version never wins over a newer one and a line whose latest version is
--   deleted leaves the table.
-- tests: not_null(order_id), not_null(order_ts), unique(source, order_id, line_no)
-- column: source: the source the line came from
-- column: customer_id: the source system's customer id (NULL for anonymous sales)
-- column: order_date: the day of order_ts in the reporting time zone (timezone: in cdw.yaml, default UTC)
-- column: status: lower-case status; completed when the source has none
-- column: category: product category; Uncategorised when the source has none
-- column: net_amount: signed line revenue; negative for returns and cancellations
-- column: net_cost: signed line cost, negative when the line is reversed
-- column: is_return: true for lines that are not a sale (negative quantity or
--   amount, or a cancelled/returned/refunded status)
-- column: is_void: true for a cancelled/returned/refunded line with a positive
--   quantity and amount (net_amount 0)
WITH scope AS NOT MATERIALIZED (
    SELECT r.*
    FROM raw.orders r
{% if is_incremental() %}
    -- every version of the lines the new files touch
    SEMI JOIN (SELECT DISTINCT _source, order_id, line_no FROM {{ new_rows('raw.orders') }}) n
        ON r._source IS NOT DISTINCT FROM n._source AND r.order_id IS NOT DISTINCT FROM n.order_id
       AND r.line_no IS NOT DISTINCT FROM n.line_no
{% endif %}
), versioned AS MATERIALIZED (
    -- Lines with more than one version. Most lines have one, and they skip
    -- the window below: ranking every line sorted all columns of all rows
    -- (at 10M lines 2.3× the time and 3× the memory of this split).
    SELECT _source, order_id, line_no
    FROM scope
    GROUP BY ALL
    HAVING count(*) > 1
), ranked AS (
    SELECT s.*, 1 AS _rn
    FROM scope s
    ANTI JOIN versioned v
        ON s._source IS NOT DISTINCT FROM v._source AND s.order_id IS NOT DISTINCT FROM v.order_id
       AND s.line_no IS NOT DISTINCT FROM v.line_no
    UNION ALL
    SELECT s.*,
           row_number() OVER (PARTITION BY s._source, s.order_id, s.line_no
                              ORDER BY s.updated_at DESC NULLS LAST, s._file DESC, s._source_line DESC NULLS LAST) AS _rn
    FROM scope s
    SEMI JOIN versioned v
        ON s._source IS NOT DISTINCT FROM v._source AND s.order_id IS NOT DISTINCT FROM v.order_id
       AND s.line_no IS NOT DISTINCT FROM v.line_no
), flagged AS (
    SELECT *,
           lower(coalesce(status, '')) IN ('cancelled', 'canceled', 'returned', 'refunded', 'storno')
               OR coalesce(quantity, 0) < 0
               OR coalesce(amount, 0) < 0 AS _reversed,
           -- a cancelled/returned status on a positive line voids the sale
           -- (nothing was paid), it is not a refund of an earlier one
           lower(coalesce(status, '')) IN ('cancelled', 'canceled', 'returned', 'refunded', 'storno')
               AND coalesce(quantity, 0) >= 0
               AND coalesce(amount, 0) >= 0 AS _void
    FROM ranked
    WHERE _rn = 1
), zone_days AS (
    -- The day in var timezone without an ICU call per line (ICU's calendar
    -- is 15× slower than the epoch arithmetic): each UTC day of the lines'
    -- span with the zone's offset at its start and its end; only lines of a
    -- day whose offset changes (DST) go through ICU. Empty in UTC, where
    -- the constant filter removes the scan.
    SELECT r.d,
           epoch_us(timezone(s.tz, make_timestamptz(r.d * 86400000000))) - r.d * 86400000000 AS off_start,
           epoch_us(timezone(s.tz, make_timestamptz(r.d * 86400000000 + 86399999999)))
               - (r.d * 86400000000 + 86399999999) AS off_end
    FROM (SELECT any_value({{ var('timezone', 'UTC') }}) AS tz,
                 min(epoch_us(order_ts)) // 86400000000 AS lo, max(epoch_us(order_ts)) // 86400000000 AS hi
          FROM scope
          WHERE {{ var('timezone', 'UTC') }} <> 'UTC' AND order_ts IS NOT NULL) s,
         range(coalesce(s.lo, 0), coalesce(s.hi + 1, 0)) r(d)
)
SELECT
    _source                                   AS source,
    order_id,
    line_no,
    nullif(trim(customer_id), '')             AS customer_id,
    order_ts,
    -- the day in the reporting time zone through the epoch: the
    -- TIMESTAMPTZ cast goes through ICU's calendar, 15× slower, and the
    -- marts filter and group millions of lines by day
    CASE WHEN {{ var('timezone', 'UTC') }} = 'UTC' THEN make_timestamp(epoch_us(order_ts))::DATE
         WHEN z.off_start = z.off_end THEN make_timestamp(epoch_us(order_ts) + z.off_start)::DATE
         ELSE timezone({{ var('timezone', 'UTC') }}, order_ts)::DATE
    END                                       AS order_date,
    lower(coalesce(nullif(trim(status), ''), 'completed')) AS status,
    product_id,
    product_name,
    coalesce(nullif(trim(category), ''), 'Uncategorised') AS category,
    quantity,
    unit_price,
    -- Money is DECIMAL(18,4) from the source on (raw's money columns are):
    -- sums of DOUBLE depend on the order parallel threads add them in, and
    -- marts must be identical on a rerun of the same data. The product is
    -- taken at width 38 (DuckDB keeps width 18 for two DECIMAL(18,4)s and
    -- overflows), then rounded to 4 places.
    CAST(CASE WHEN _void THEN 0
              WHEN _reversed THEN -abs(coalesce(amount, quantity::DECIMAL(38, 4) * unit_price, 0))
              ELSE coalesce(amount, quantity::DECIMAL(38, 4) * unit_price, 0)
         END AS DECIMAL(18, 4))               AS net_amount,
    CAST(CASE WHEN _void THEN 0
              WHEN _reversed THEN -abs(coalesce(cost, 0))
              ELSE coalesce(cost, 0)
         END AS DECIMAL(18, 4))               AS net_cost,
    _reversed                                 AS is_return,
    _void                                     AS is_void,
    currency,
    nullif(trim(business_unit), '')           AS business_unit,
    lower(nullif(trim(channel), ''))          AS channel,
    updated_at,
    -- a deleted latest version removes the line (incremental merge)
    coalesce(deleted, false)                  AS _cdw_deleted
FROM flagged
LEFT JOIN zone_days z ON z.d = epoch_us(order_ts) // 86400000000
