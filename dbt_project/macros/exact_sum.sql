{% macro exact_sum(expr, where=none) -%}
{#- The sum of a double column that does not depend on the order of the rows. A plain sum (or
    fsum) of doubles rounds after every addition, so the same rows summed in another order (two
    threads, another plan, another row order of the table read) can differ in the last bits, and a
    published value rounded to 10 digits then flips now and then: at world scale, two runs of
    the same data gave different bytes. Each value is cast to a 128-bit decimal with 24 places
    (exact integer additions, order-free; 14 integer digits, ample for document counts) and the
    total cast back to double. Optional `where`: the aggregate's filter. -#}
cast(sum(cast({{ expr }} as decimal(38, 24))){% if where %} filter (where {{ where }}){% endif %} as double)
{%- endmacro %}
