{#- The RFM segment grid, owned here so customer_segments and segment_history
    (which segments every period end) name a customer's cell alike. It takes
    the recency and frequency scores (1–5) as SQL expressions. -#}
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
