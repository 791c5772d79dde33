{#
    The filter that puts a model's rows in one bucket of documents (materialization
    `bucketed_table`). A model that works document by document (a grouping or join keyed on the
    document) can be built in var('document_buckets') passes, each over the documents whose
    hash falls in its bucket, so that each pass's hash tables hold one bucket of documents and
    fit the memory limit instead of spilling (docs/performance.md, "Buckets of documents").
    The pipeline sets the var from the rows loaded and duckdb_memory_limit; with 1 (the
    default, and a GII-size edition at 3GB) the filter is `true` and the model is one query.

    Every CTE that reads rows of documents filters with the same column, so that a document's
    rows are all in the same pass and the passes' union is the one-query result.
#}
{% macro document_bucket(column) -%}
    {%- set buckets = var('document_buckets', 1) | int -%}
    {%- if buckets < 1 -%}
        {{ exceptions.raise_compiler_error("var document_buckets must be at least 1, got " ~ buckets) }}
    {%- elif buckets == 1 -%}
        true
    {%- else -%}
        (hash({{ column }}) % {{ buckets }} = 0 /* stclusters:document_bucket */)
    {%- endif -%}
{%- endmacro %}
