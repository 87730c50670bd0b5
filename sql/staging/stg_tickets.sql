-- materialized: table
-- description: Service tickets, the latest version of each ticket only
--   (updates replace, soft deletes remove). A source whose tickets entity
--   says shape: events (var ticket_event_sources, set from cdw.yaml) sends one
--   row per ticket event instead, created_at being the event's time and
--   status its activity: its events fold into one ticket each. created_at =
--   the first event, resolved_at = the first event whose activity is in the
--   entity's resolved_when (var ticket_resolved_when, source:activity pairs;
--   default resolved, closed), status = the last event's activity, every
--   other field from the latest event that carries it. Rebuilt from all
--   events on every run, so new events of an old ticket update it.
-- tests: not_null(ticket_id), unique(source, ticket_id)
-- column: status: lower case; open or resolved from resolved_at when the source has none
-- column: category: lower case, e.g. complaint, question, repair; other when missing
-- column: satisfaction: 1 (very unhappy) to 5 (very happy); NULL when not rated
-- column: events: number of events folded into the ticket (1 for a ticket row)
WITH p AS (
    SELECT string_split({{ var('ticket_event_sources', '') }}, ',') AS event_sources,
           string_split({{ var('ticket_resolved_when', '') }}, ',') AS resolved_when
), ranked AS (
    SELECT t.*, 1::BIGINT AS events,
           row_number() OVER (PARTITION BY _source, ticket_id
                              ORDER BY updated_at DESC NULLS LAST, _file DESC, _source_line DESC NULLS LAST) AS _rn
    FROM raw.tickets t, p
    WHERE NOT list_contains(p.event_sources, t._source)
), event_rows AS (
    SELECT t.*,
           list_contains(p.resolved_when, t._source || ':' || lower(trim(t.status))) AS _resolves,
           -- last event first; ties on time go to the later file and line, then the larger activity
           row_number() OVER (PARTITION BY _source, ticket_id
                              ORDER BY created_at DESC NULLS LAST, _file DESC, _source_line DESC NULLS LAST, lower(trim(status)) DESC) AS _recency
    FROM raw.tickets t, p
    WHERE list_contains(p.event_sources, t._source) AND NOT coalesce(t.deleted, false)
), folded AS (
    SELECT _source, ticket_id,
           arg_min(customer_id, _recency) FILTER (WHERE nullif(trim(customer_id), '') IS NOT NULL)  AS customer_id,
           min(created_at)                                                                         AS created_at,
           min(created_at) FILTER (WHERE _resolves)                                                AS resolved_at,
           arg_min(status, _recency) FILTER (WHERE nullif(trim(status), '') IS NOT NULL)           AS status,
           arg_min(priority, _recency) FILTER (WHERE nullif(trim(priority), '') IS NOT NULL)       AS priority,
           arg_min(category, _recency) FILTER (WHERE nullif(trim(category), '') IS NOT NULL)       AS category,
           arg_min(satisfaction, _recency) FILTER (WHERE satisfaction IS NOT NULL)                 AS satisfaction,
           arg_min(business_unit, _recency) FILTER (WHERE nullif(trim(business_unit), '') IS NOT NULL) AS business_unit,
           arg_min(channel, _recency) FILTER (WHERE nullif(trim(channel), '') IS NOT NULL)         AS channel,
           coalesce(max(updated_at), max(created_at))                                              AS updated_at,
           count(*)                                                                                AS events,
           1 AS _rn, false AS deleted
    FROM event_rows
    GROUP BY _source, ticket_id
), tickets AS (
    SELECT _source, ticket_id, customer_id, created_at, resolved_at, status, priority, category, satisfaction,
           business_unit, channel, updated_at, events, _rn, deleted
    FROM ranked
    UNION ALL
    SELECT _source, ticket_id, customer_id, created_at, resolved_at, status, priority, category, satisfaction,
           business_unit, channel, updated_at, events, _rn, deleted
    FROM folded
)
SELECT
    _source                                 AS source,
    ticket_id,
    nullif(trim(customer_id), '')           AS customer_id,
    created_at,
    resolved_at,
    lower(coalesce(nullif(trim(status), ''), CASE WHEN resolved_at IS NULL THEN 'open' ELSE 'resolved' END)) AS status,
    lower(coalesce(nullif(trim(priority), ''), 'normal'))  AS priority,
    lower(coalesce(nullif(trim(category), ''), 'other'))   AS category,
    satisfaction,
    nullif(trim(business_unit), '')         AS business_unit,
    lower(nullif(trim(channel), ''))        AS channel,
    updated_at,
    events
FROM tickets
WHERE _rn = 1 AND NOT coalesce(deleted, false)
