-- One row per address of a counted document: documents inside the edition's window (and, for
-- articles, of a counted document type), each counting exactly 1, split equally over its
-- addresses. address_key identifies the distinct address text that geocoding works on.
with

inventors as (

    select * from {{ ref('stg_patents__inventors') }}

),

author_addresses as (

    select * from {{ ref('stg_publications__addresses') }}

),

-- both layers' addresses under their common columns (patents: document_type 'patent')
unioned as (

    select * exclude (publication_date, ipc) from inventors
    union all by name
    select * exclude (subject) from author_addresses

),

counted as (

    select
        layer,
        document_id,
        address_seq,
        publication_year,
        city,
        postal_code,
        region,
        country,
        latitude,
        longitude,
        organization
    from unioned
    where
        (
            layer = 'patents'
            and publication_year between {{ var('patents_first_year') }} and {{ var('patents_last_year') }}
        )
        or (
            layer = 'publications'
            and publication_year
            between {{ var('publications_first_year') }} and {{ var('publications_last_year') }}
            and document_type in (
                {%- for t in var('counted_document_types') %}'{{ t }}'{{ ', ' if not loop.last }}{% endfor -%}
            )
        )

),

final as (

    select
        layer,
        document_id,
        address_seq,
        publication_year,
        country,
        region,
        city,
        postal_code,
        latitude,
        longitude,
        organization,
        1.0 / count(*) over (partition by layer, document_id) as weight,
        md5(
            concat_ws(
                '|',
                coalesce(country, ''),
                coalesce(lower(region), ''),
                coalesce(lower(city), ''),
                coalesce(lower(postal_code), ''),
                coalesce(cast(round(latitude, 5) as varchar), ''),
                coalesce(cast(round(longitude, 5) as varchar), '')
            )
        ) as address_key
    from counted

)

select * from final
