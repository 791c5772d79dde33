{% macro is_counted(layer='layer', year='publication_year', document_type='document_type') -%}
{#- True for a row of a counted document: inside its layer's window (patents_first_year ..
    patents_last_year, publications_first_year .. publications_last_year) and, for articles, of a
    counted document type (var counted_document_types, lower case as staged). The one SQL
    definition of "counted", used by int_addresses_weighted and int_profiles_fields; the types
    themselves are defined once, in plugins/stclusters/schema.py (COUNTED_DOCUMENT_TYPES), and
    stclusters.build.transform passes them as the var (the placeholder in dbt_project.yml is
    checked against them by tests/unit/test_dbt_project.py). -#}
(
    (
        {{ layer }} = 'patents'
        and {{ year }} between {{ var('patents_first_year') }} and {{ var('patents_last_year') }}
    )
    or (
        {{ layer }} = 'publications'
        and {{ year }} between {{ var('publications_first_year') }} and {{ var('publications_last_year') }}
        and {{ document_type }} in (
            {%- for t in var('counted_document_types') %}'{{ t }}'{{ ', ' if not loop.last }}{% endfor -%}
        )
    )
)
{%- endmacro %}
