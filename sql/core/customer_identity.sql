-- materialized: table
-- description: The auditable identity map: which contacts and which source
--   customer ids make up one customer. Contacts are linked when they share a
--   normalised e-mail, a normalised phone, an explicit customer_id or a
--   match_key; linking
--   is transitive: the connected components of the graph identity_nodes /
--   identity_links, computed by union-find in the Go model
--   identity_components. A customer id seen in orders or tickets joins the cluster of the
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
-- column: matched_on: the attributes this member shares with other members of its cluster (customer_id, match_key, email, phone); empty for a single-member customer
-- column: cluster_contacts: number of contacts in the customer's cluster
WITH contacts AS MATERIALIZED (
    SELECT source, contact_id, customer_id, email_norm, phone_norm,
           'c:' || source || ':' || contact_id AS node
    FROM stg_contacts
), labeled AS MATERIALIZED (
    -- read three times below; a node without a row in identity_components
    -- is its own component's label
    SELECT n.node, coalesce(c.label, n.id) AS label
    FROM identity_nodes n
    LEFT JOIN identity_components c USING (id)
), clusters AS (
    SELECT n.label,
           coalesce(min(i.customer_id),
                    'K-' || substr(md5(min(ct.node)), 1, 16)) AS customer_key,
           count(ct.node) AS cluster_contacts
    FROM labeled n
    LEFT JOIN contacts ct ON ct.node = n.node
    LEFT JOIN identity_ids i ON 'i:' || i.customer_id = n.node
    GROUP BY n.label
), shared AS (
    -- attributes that link a member to someone else: an attribute node
    -- with more than one contact, or a customer id also used by orders/tickets
    -- (flags, not string_agg(DISTINCT … ORDER BY …), so it spills at scale)
    SELECT node,
           concat_ws(', ', CASE WHEN by_id THEN 'customer_id' END, CASE WHEN by_key THEN 'match_key' END,
                     CASE WHEN by_email THEN 'email' END, CASE WHEN by_phone THEN 'phone' END) AS matched_on
    FROM (SELECT l.node, bool_or(l.kind = 'customer_id') AS by_id, bool_or(l.kind = 'match_key') AS by_key,
                 bool_or(l.kind = 'email') AS by_email,
                 bool_or(l.kind = 'phone') AS by_phone
          FROM identity_links l
          JOIN (SELECT attr, count(*) AS n FROM identity_links GROUP BY attr) a USING (attr)
          LEFT JOIN identity_ids i ON 'i:' || i.customer_id = l.attr  -- only customer_id links start with i:
          WHERE a.n > 1 OR i.seen_in <> 'contacts'
          GROUP BY l.node)
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
FROM identity_ids i
JOIN labeled n ON n.node = 'i:' || i.customer_id
JOIN clusters k USING (label)
