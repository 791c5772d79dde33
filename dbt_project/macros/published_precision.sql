{#- The precision of every published floating-point value (docs/methodology.md, "Published
    precision"). DuckDB sums doubles in parallel, in an order that depends on its threads: the
    last bits of a sum then vary between runs. Rounding the published values (and the values a
    rank is taken on) to these precisions makes two runs of the same inputs give the same bytes
    at any thread count, far below any meaningful digit. -#}

{#- fractional document counts and link weights: 6 decimal places -#}
{% macro published_count(expr) -%}
    round({{ expr }}, 6)
{%- endmacro %}

{#- shares, scores and ratios in [0, ~1]: 10 decimal places -#}
{% macro published_share(expr) -%}
    round({{ expr }}, 10)
{%- endmacro %}

{#- latitudes and longitudes: 7 decimal places (about 1 cm) -#}
{% macro published_degrees(expr) -%}
    round({{ expr }}, 7)
{%- endmacro %}
