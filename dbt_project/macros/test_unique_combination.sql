{% test unique_combination_of_columns(model, columns) %}
{#- Rows whose combination of `columns` is not unique (dbt_utils has the same test; we ship no
    packages so that nothing is downloaded at build time). -#}
select
    {{ columns | join(', ') }},
    count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
