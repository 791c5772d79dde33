-- One row per address of a counted document: documents inside the edition's window (and, for
-- articles, of a counted document type), each counting exactly 1, split equally over its
-- addresses. address_key identifies the distinct address that geocoding works on
-- (int_addresses_geocoded, one row per key, holds its text).
with

inventors as not materialized (

    select * from {{ ref('stg_patents__inventors') }}

),

author_addresses as not materialized (

    select * from {{ ref('stg_publications__addresses') }}

),

-- both layers' addresses under their common columns (patents: document_type 'patent')
unioned as not materialized (

    select * exclude (publication_date, ipc) from inventors
    union all by name
    select * exclude (subject) from author_addresses

),

counted as not materialized (

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
    where {{ is_counted() }}

),

-- addresses per document: a hash aggregate and a join, cheaper at world scale than a window
-- partitioned over tens of millions of rows
document_sizes as (

    select
        layer,
        document_id,
        count(*) as n_addresses
    from counted
    group by layer, document_id

),

final as (

    select
        counted.layer,
        counted.document_id,
        counted.address_seq,
        counted.publication_year,
        counted.country,
        counted.organization,
        1.0 / document_sizes.n_addresses as weight,
        -- the key of the address (macro address_key); int_addresses_geocoded reads its text,
        -- so the tens of millions of rows here stay narrow
        {{ address_key(
            'counted.country', 'counted.region', 'counted.city', 'counted.postal_code',
            'counted.latitude', 'counted.longitude'
        ) }} as address_key
    from counted
    inner join document_sizes
        on
            counted.layer = document_sizes.layer
            and counted.document_id = document_sizes.document_id

)

select * from final
