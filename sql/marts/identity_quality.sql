-- materialized: table
-- description: How identity resolution went, for whoever owns the CRM data
--   (one row per figure; no business_unit: the skipped values cross units).
--   metric skipped_value: an e-mail or phone left out of linking because
--   more than var identity_max_shared holders share it (rule = email or
--   phone, value = the value, amount = its holders; see
--   identity_shared_values). cluster_members_max / _p99 / _median: members
--   (contact records and source customer ids) per resolved customer.
--   customers: resolved customers. merged_customers: customers of more than
--   one member, per rule (customer_id, match_key, email, phone) that links a member of
--   theirs; members_matched: members linked by that rule.
-- tests: not_null(metric), not_null(amount)
-- column: metric: skipped_value, customers, cluster_members_max, cluster_members_p99, cluster_members_median, merged_customers, members_matched
-- column: rule: email or phone for skipped values; customer_id, match_key, email or phone for merges
-- column: value: the skipped e-mail or phone
-- column: amount: the figure (holders for a skipped value)
WITH sizes AS (
    SELECT customer_key, count(*) AS members,
           bool_or(contains(matched_on, 'customer_id')) AS by_id,
           bool_or(contains(matched_on, 'match_key'))   AS by_key,
           bool_or(contains(matched_on, 'email'))       AS by_email,
           bool_or(contains(matched_on, 'phone'))       AS by_phone
    FROM customer_identity
    GROUP BY customer_key
), merged AS (
    SELECT count(*) FILTER (WHERE members > 1 AND by_id)    AS customer_id,
           count(*) FILTER (WHERE members > 1 AND by_key)   AS match_key,
           count(*) FILTER (WHERE members > 1 AND by_email) AS email,
           count(*) FILTER (WHERE members > 1 AND by_phone) AS phone
    FROM sizes
), matched AS (
    SELECT count(*) FILTER (WHERE contains(matched_on, 'customer_id')) AS customer_id,
           count(*) FILTER (WHERE contains(matched_on, 'match_key'))   AS match_key,
           count(*) FILTER (WHERE contains(matched_on, 'email'))       AS email,
           count(*) FILTER (WHERE contains(matched_on, 'phone'))       AS phone
    FROM customer_identity
)
SELECT 'skipped_value' AS metric, kind AS rule, value, holders AS amount
FROM identity_shared_values
UNION ALL
SELECT 'customers', NULL, NULL, count(*) FROM sizes
UNION ALL
SELECT 'cluster_members_max', NULL, NULL, coalesce(max(members), 0) FROM sizes
UNION ALL
SELECT 'cluster_members_p99', NULL, NULL, coalesce(quantile_disc(members, 0.99), 0) FROM sizes
UNION ALL
SELECT 'cluster_members_median', NULL, NULL, coalesce(quantile_disc(members, 0.5), 0) FROM sizes
UNION ALL
SELECT 'merged_customers', rule, NULL, amount FROM (UNPIVOT merged ON customer_id, match_key, email, phone INTO NAME rule VALUE amount)
UNION ALL
SELECT 'members_matched', rule, NULL, amount FROM (UNPIVOT matched ON customer_id, match_key, email, phone INTO NAME rule VALUE amount)
