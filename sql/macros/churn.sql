{#- The churn score's formula, owned here so churn_risk and segment_history
    (which scores every period end on its order signals) score alike. Each
    macro takes SQL expressions and returns one; weights and band
    thresholds are vars (sql/README.md). -#}

{#- points of the lapse signal: days per purchase day up to as_of, as a
    percentile within the partition (the unit's customers with orders) -#}
{% macro churn_lapse_rank(partition, recency_days, purchase_days) -%}
cume_dist() OVER (PARTITION BY {{ partition }} ORDER BY ({{ recency_days }} + 30) / greatest({{ purchase_days }}, 1))
{%- endmacro %}

{#- the percentile of low spend per purchase day within the partition; not
    total net revenue, which ranks purchase days again, which lapse and
    p_repurchase already weigh (sql/README.md, "How the weights were chosen") -#}
{% macro churn_value_rank(partition, net_revenue, purchase_days) -%}
1 - cume_dist() OVER (PARTITION BY {{ partition }} ORDER BY {{ net_revenue }} / greatest({{ purchase_days }}, 1))
  + 1.0 / count(*) OVER (PARTITION BY {{ partition }})
{%- endmacro %}

{% macro churn_weight_alive() %}{{ var('churn_weight_alive', 35) }}{% endmacro %}
{% macro churn_weight_lapse() %}{{ var('churn_weight_lapse', 55) }}{% endmacro %}
{% macro churn_weight_value() %}{{ var('churn_weight_value', 10) }}{% endmacro %}

{% macro churn_points_alive(p_repurchase) -%}
round({{ churn_weight_alive() }} * (1 - {{ p_repurchase }}), 1)
{%- endmacro %}
{% macro churn_points_lapse(lapse_rank) -%}
round({{ churn_weight_lapse() }} * {{ lapse_rank }}, 1)
{%- endmacro %}
{% macro churn_points_value(value_rank) -%}
round({{ churn_weight_value() }} * {{ value_rank }}, 1)
{%- endmacro %}

{#- 0–100: the points over the weights of the signals present; NULL without any -#}
{% macro churn_score(points, weight_present) -%}
CASE WHEN ({{ weight_present }}) > 0 THEN
least(100, greatest(0, round(100 * ({{ points }}) / ({{ weight_present }}))))::INTEGER END
{%- endmacro %}

{% macro churn_band(score) -%}
CASE WHEN {{ score }} IS NULL THEN 'unscored'
     WHEN {{ score }} >= {{ var('churn_band_critical', 75) }} THEN 'critical'
     WHEN {{ score }} >= {{ var('churn_band_high', 60) }} THEN 'high'
     WHEN {{ score }} >= {{ var('churn_band_medium', 40) }} THEN 'medium'
     ELSE 'low' END
{%- endmacro %}
