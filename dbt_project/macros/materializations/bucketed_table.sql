{#
    A table built in var('document_buckets') passes (macro document_bucket): the first pass
    creates the table with the compiled query (bucket 0), each further pass inserts the same
    query with the bucket number changed. All passes write an intermediate table that replaces
    the model's table only after the last one, in one transaction, as dbt-duckdb's table
    materialization does: a failed pass leaves the previous table as it was.

    Follows the pattern of dbt-utils' insert_by_period (one query per slice of the input, the
    slice substituted into the compiled SQL). With one bucket it is the table materialization.
#}
{% materialization bucketed_table, adapter='duckdb' %}

    {%- set buckets = var('document_buckets', 1) | int -%}
    {%- set marker = '% ' ~ buckets ~ ' = 0 /* stclusters:document_bucket */' -%}
    {%- if buckets > 1 and marker not in compiled_code -%}
        {{ exceptions.raise_compiler_error(
            "model " ~ model.name ~ " is materialized as bucketed_table but does not filter its "
            ~ "rows with macro document_bucket()"
        ) }}
    {%- endif -%}

    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
    {%- set preexisting_intermediate_relation = load_cached_relation(intermediate_relation) -%}
    {%- set backup_relation_type = 'table' if existing_relation is none else existing_relation.type -%}
    {%- set backup_relation = make_backup_relation(target_relation, backup_relation_type) -%}
    {%- set preexisting_backup_relation = load_cached_relation(backup_relation) -%}

    {{ drop_relation_if_exists(preexisting_intermediate_relation) }}
    {{ drop_relation_if_exists(preexisting_backup_relation) }}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% call statement('main') -%}
        {{- create_table_as(False, intermediate_relation, compiled_code) }}
    {%- endcall %}

    {% for bucket in range(1, buckets) %}
        {%- set bucket_code = compiled_code | replace(
            marker, '% ' ~ buckets ~ ' = ' ~ bucket ~ ' /* stclusters:document_bucket */'
        ) -%}
        {% call statement('bucket_' ~ bucket) -%}
            insert into {{ intermediate_relation }} (
                {{ bucket_code }}
            )
        {%- endcall %}
    {% endfor %}

    {% if existing_relation is not none %}
        {{ adapter.rename_relation(existing_relation, backup_relation) }}
    {% endif %}
    {{ adapter.rename_relation(intermediate_relation, target_relation) }}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do persist_docs(target_relation, model) %}

    {{ adapter.commit() }}

    {{ drop_relation_if_exists(backup_relation) }}

    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}
