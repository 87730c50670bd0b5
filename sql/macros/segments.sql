{#- The segment definitions, owned here so customer_segments and
    segment_history (which segments every period end) classify a customer
    alike. Each macro takes SQL expressions and returns one; thresholds are
    vars (sql/README.md). -#}

{#- the RFM segment grid over the recency and frequency scores (1–5) -#}
{% macro rfm_segment(r_score, f_score) -%}
CASE
        WHEN {{ r_score }} = 5 AND {{ f_score }} >= 4 THEN 'champions'
        WHEN {{ r_score }} >= 3 AND {{ f_score }} >= 4 THEN 'loyal'
        WHEN {{ r_score }} >= 4 AND {{ f_score }} BETWEEN 2 AND 3 THEN 'potential loyalist'
        WHEN {{ r_score }} = 5 AND {{ f_score }} = 1 THEN 'new'
        WHEN {{ r_score }} = 4 AND {{ f_score }} = 1 THEN 'promising'
        WHEN {{ r_score }} = 3 THEN 'need attention'
        WHEN {{ r_score }} <= 2 AND {{ f_score }} = 5 THEN 'can''t lose'
        WHEN {{ r_score }} <= 2 AND {{ f_score }} >= 3 THEN 'at risk'
        WHEN {{ r_score }} = 2 THEN 'hibernating'
        ELSE 'lost'
    END
{%- endmacro %}

{#- A, B or C by the revenue share of the customers ranked above (before) in
    a partition whose positive revenue is total -#}
{% macro abc_class(net_revenue, before, total) -%}
CASE WHEN {{ net_revenue }} <= 0 OR {{ total }} <= 0 THEN 'C'
         WHEN {{ before }} / {{ total }} < {{ var('abc_a_share', 0.75) }} THEN 'A'
         WHEN {{ before }} / {{ total }} < {{ var('abc_b_share', 0.95) }} THEN 'B'
         ELSE 'C' END
{%- endmacro %}

{#- acquisition, development, stable, decline or lost, from recency, the
    median gap, tenure and the purchases of the last two lifecycle windows -#}
{% macro lifecycle_stage() -%}
CASE
        WHEN recency_days > greatest({{ var('lifecycle_lost_days', 365) }},
                                     {{ var('lifecycle_lost_gap_multiple', 3) }} * coalesce(median_gap_days, 0)) THEN 'lost'
        WHEN date_diff('day', first_order_date, as_of) <= {{ var('lifecycle_acquisition_days', 90) }} THEN 'acquisition'
        WHEN recent_orders = 0
          OR recent_orders < {{ var('lifecycle_decline_ratio', 0.5) }} * prior_orders THEN 'decline'
        WHEN recent_orders > prior_orders
          OR date_diff('day', first_order_date, as_of) < {{ var('lifecycle_development_days', 365) }} THEN 'development'
        ELSE 'stable'
    END
{%- endmacro %}
