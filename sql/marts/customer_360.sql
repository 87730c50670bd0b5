-- materialized: table
-- description: One wide row per resolved customer for BI tools: who the
--   customer is (identity, unit, channel, type, contact data), RFM segment,
--   ABC class and lifecycle stage, historic and predicted value, churn risk
--   and drivers, and open follow-ups. Customers without orders up to as_of
--   (CRM prospects) have NULL order figures. Definitions are those of
--   customer_segments, customer_value, churn_risk and service_followup.
-- tests: unique(customer_id), not_null(business_unit)
-- column: customer_id: the resolved customer (customer_identity.customer_key)
-- column: business_unit: the unit that owns the customer
-- column: channel: the customer's channel
-- column: customer_type: business or consumer
-- column: as_of: the reporting date
-- column: name: contact name
-- column: company: company name
-- column: email: e-mail
-- column: phone: phone, normalised
-- column: country: country from the CRM
-- column: owner: the account owner's e-mail from the CRM (early-warning alerts go there)
-- column: source_customer_ids: source customer ids merged into this customer
-- column: contacts: contact records merged into this customer
-- column: first_order_date: first purchase day
-- column: last_order_date: last purchase day
-- column: recency_days: days since the last purchase
-- column: frequency: purchase orders
-- column: monetary: net revenue
-- column: rfm_cell: R, F and M scores
-- column: segment: RFM segment
-- column: abc_class: ABC class within the unit
-- column: lifecycle_stage: acquisition, development, stable, decline or lost
-- column: avg_order_value: net revenue per purchase order
-- column: margin: net revenue − net cost
-- column: p_alive: BG/NBD probability the customer is still active
-- column: expected_purchases_90d: expected purchase days in the next 90 days
-- column: expected_purchases_365d: expected purchase days in the next 365 days
-- column: expected_avg_spend: Gamma-Gamma expected spend per purchase
-- column: clv: predicted CLV over the configured horizon
-- column: churn_score: 0–100
-- column: churn_band: low, medium, high or critical
-- column: churn_drivers: top churn drivers in words
-- column: early_warning: high-value customer at high churn risk
-- column: open_tickets: tickets open at as_of
-- column: followup_reason: why the customer is on the follow-up list (NULL when not)
-- column: followup_priority: rank on the unit's follow-up list
SELECT
    c.customer_key AS customer_id,
    c.business_unit,
    c.channel,
    c.customer_type,
    (SELECT as_of FROM as_of_date)  AS as_of,
    c.name,
    c.company,
    c.email,
    c.phone,
    c.country,
    c.owner,
    c.source_customer_ids,
    c.contacts,
    s.first_order_date,
    s.last_order_date,
    s.recency_days,
    s.frequency,
    s.monetary,
    s.rfm_cell,
    s.segment,
    s.abc_class,
    s.lifecycle_stage,
    v.avg_order_value,
    v.margin,
    v.p_alive,
    v.expected_purchases_90d,
    v.expected_purchases_365d,
    v.expected_avg_spend,
    v.clv,
    r.churn_score,
    r.churn_band,
    r.drivers                       AS churn_drivers,
    r.early_warning,
    r.open_tickets,
    f.reason                        AS followup_reason,
    f.priority                      AS followup_priority
FROM customers c
LEFT JOIN customer_segments s ON s.customer_id = c.customer_key
LEFT JOIN customer_value v ON v.customer_id = c.customer_key
LEFT JOIN churn_risk r ON r.customer_id = c.customer_key
LEFT JOIN service_followup f ON f.customer_id = c.customer_key
