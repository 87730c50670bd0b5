-- materialized: table
-- description: The auditable identity map: which contacts and which source
--   customer ids make up one customer. Contacts are linked when they share a
--   normalised e-mail, a normalised phone or an explicit customer_id; linking
--   is transitive (connected components by min-label propagation to a fixed
--   point). A customer id seen in orders or tickets joins the cluster of the
--   contacts carrying it, or forms its own customer. customer_key is stable
--   across runs: the smallest explicit customer_id in the cluster, else
--   "K-" followed by a hash of the smallest contact key.
-- tests: not_null(customer_key), unique(member_kind, source, member_id)
-- column: customer_key: the resolved customer every mart reports on
-- column: member_kind: contact (a contact record) or customer_id (a source customer id used by orders/tickets)
-- column: source: the contact's source; for customer_id rows the entities the id appears in (contacts, orders, tickets)
-- column: member_id: contact_id or customer_id
-- column: customer_id: the explicit customer id on this member, if any
-- column: email_norm: the contact's normalised e-mail
-- column: phone_norm: the contact's normalised phone
-- column: matched_on: the attributes this member shares with other members of its cluster (customer_id, email, phone); empty for a single-member customer
-- column: cluster_contacts: number of contacts in the customer's cluster
WITH RECURSIVE contacts AS MATERIALIZED (
    SELECT source, contact_id, customer_id, email_norm, phone_norm,
           'c:' || source || ':' || contact_id AS node
    FROM stg_contacts
), ids AS MATERIALIZED (
    SELECT customer_id, string_agg(DISTINCT entity, ',' ORDER BY entity) AS seen_in
    FROM (SELECT customer_id, 'contacts' AS entity FROM stg_contacts WHERE customer_id IS NOT NULL
          UNION ALL SELECT customer_id, 'orders' FROM stg_orders WHERE customer_id IS NOT NULL
          UNION ALL SELECT customer_id, 'tickets' FROM stg_tickets WHERE customer_id IS NOT NULL)
    GROUP BY customer_id
), links AS MATERIALIZED (
    SELECT node, 'customer_id' AS kind, 'i:' || customer_id AS attr FROM contacts WHERE customer_id IS NOT NULL
    UNION ALL SELECT node, 'email', 'e:' || email_norm FROM contacts WHERE email_norm IS NOT NULL
    UNION ALL SELECT node, 'phone', 'p:' || phone_norm FROM contacts WHERE phone_norm IS NOT NULL
), edges AS (
    SELECT node AS a, attr AS b FROM links
    UNION ALL SELECT attr, node FROM links
), nodes AS MATERIALIZED (
    -- integer ids make the propagation below cheap
    SELECT node, row_number() OVER (ORDER BY node) AS id
    FROM (SELECT node FROM contacts
          UNION SELECT 'i:' || customer_id FROM ids
          UNION SELECT attr FROM links)
), edge_ids AS MATERIALIZED (
    SELECT x.id AS a, y.id AS b
    FROM edges e
    JOIN nodes x ON x.node = e.a
    JOIN nodes y ON y.node = e.b
), components(id, label) USING KEY (id) AS (
    SELECT id, id FROM nodes
    UNION
    -- Only nodes whose label changed in the last round propagate (semi-naive),
    -- and a neighbour takes the smaller label; stops when nothing changes.
    SELECT e.b, min(c.label)
    FROM components c
    JOIN edge_ids e ON e.a = c.id
    JOIN recurring.components r ON r.id = e.b
    GROUP BY e.b, r.label
    HAVING min(c.label) < r.label
), labeled AS MATERIALIZED (
    -- read three times below: compute the recursion once
    SELECT n.node, c.label FROM components c JOIN nodes n USING (id)
), clusters AS (
    SELECT n.label,
           coalesce(min(i.customer_id),
                    'K-' || substr(md5(min(ct.node)), 1, 16)) AS customer_key,
           count(ct.node) AS cluster_contacts
    FROM labeled n
    LEFT JOIN contacts ct ON ct.node = n.node
    LEFT JOIN ids i ON 'i:' || i.customer_id = n.node
    GROUP BY n.label
), shared AS (
    -- attributes that link a member to someone else: an attribute node
    -- with more than one contact, or a customer id also used by orders/tickets
    SELECT l.node, string_agg(DISTINCT l.kind, ', ' ORDER BY l.kind) AS matched_on
    FROM links l
    JOIN (SELECT attr, count(*) AS n FROM links GROUP BY attr) a USING (attr)
    LEFT JOIN ids i ON 'i:' || i.customer_id = l.attr  -- only customer_id links start with i:
    WHERE a.n > 1 OR i.seen_in <> 'contacts'
    GROUP BY l.node
)
SELECT k.customer_key, 'contact' AS member_kind, ct.source, ct.contact_id AS member_id,
       ct.customer_id, ct.email_norm, ct.phone_norm, coalesce(s.matched_on, '') AS matched_on,
       k.cluster_contacts
FROM contacts ct
JOIN labeled n USING (node)
JOIN clusters k USING (label)
LEFT JOIN shared s USING (node)
UNION ALL
SELECT k.customer_key, 'customer_id', i.seen_in, i.customer_id, i.customer_id, NULL, NULL,
       CASE WHEN k.cluster_contacts > 0 THEN 'customer_id' ELSE '' END,
       k.cluster_contacts
FROM ids i
JOIN labeled n ON n.node = 'i:' || i.customer_id
JOIN clusters k USING (label)
