{#
    The key the document-by-document models group and join on: a 64-bit hash of the document id
    as the dump gives it (application or article id, a text of 14 to 20 characters). Grouping,
    joining and writing tens of millions of rows on an integer instead of that text made
    int_documents_clustered, int_links_documents and int_profiles_collaboration about a third
    faster at scale 1 of make bench (docs/performance.md). With check=true it is the hash of
    another text (the id with '#' appended; hash(id, constant) would collide wherever hash(id)
    does), which int_addresses_weighted compares per key to stop the build on a collision (two
    documents under one key: about n^2 / 2^65, 3e-6 for the 11 M documents of a GII-size
    edition). int_addresses_weighted keeps the id itself beside its key, for the audit trail.
#}
{% macro document_key(column='document_id', check=false) -%}
    {%- if check -%}
        hash({{ column }} || '#')
    {%- else -%}
        hash({{ column }})
    {%- endif -%}
{%- endmacro %}
