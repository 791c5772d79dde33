{% macro share_of_world(located='located', measured='measured') -%}
{#- A located row's share of its layer's world count (int_clusters_measured's world totals): the
    contribution a place brings to a cluster's score, summed per place by int_clusters_named and
    gii_comparison. -#}
case
    when {{ located }}.layer = 'patents' then {{ located }}.weight / nullif({{ measured }}.world_patents, 0)
    else {{ located }}.weight / nullif({{ measured }}.world_publications, 0)
end
{%- endmacro %}
