{{ config(materialized='bucketed_table') }}

-- One row per address of a counted document: documents inside the edition's window (and, for
-- articles, of a counted document type), each counting exactly 1, split equally over its
-- addresses. address_key identifies the distinct address that geocoding works on
-- (int_addresses_geocoded, one row per key, holds its text).
--
-- Each layer is counted and joined on its own, then the two are put together: one aggregate
-- over both layers' rows at once ran out of memory at scale 5 of make bench (57 M documents,
-- 256 M rows, 3GB), where each layer's own aggregate spills and fits (docs/performance.md).
-- A large edition is built one bucket of documents at a time (macro document_bucket), so that
-- the document sizes and their join fit in memory instead of spilling.
with

inventors as not materialized (

    select * from {{ ref('stg_patents__inventors') }}

),

author_addresses as not materialized (

    select * from {{ ref('stg_publications__addresses') }}

),

{% for rows in ['inventors', 'author_addresses'] %}
    counted_{{ rows }} as not materialized (

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
        from {{ rows }}
        where {{ is_counted() }} and {{ document_bucket('document_id') }}

    ),

    -- addresses per document: a hash aggregate and a join, cheaper at world scale than a window
    -- partitioned over tens of millions of rows; grouped on the document's key (macro
    -- document_key), with a second hash of the id that tells two documents under one key apart
    document_sizes_{{ rows }} as (

        select
            {{ document_key() }} as document_key,
            count(*) as n_addresses,
            min({{ document_key(check=true) }}) = max({{ document_key(check=true) }}) as is_one_document
        from counted_{{ rows }}
        group by document_key

    ),

    checked_sizes_{{ rows }} as (

        select
            document_key,
            n_addresses
        from document_sizes_{{ rows }}
        where
            case
                when is_one_document then true
                else error('document_key ' || document_key || ' hashes two different document ids')
            end

    ),

    weighted_{{ rows }} as (

        select
            counted.layer,
            counted.document_id,
            document_sizes.document_key,
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
        from counted_{{ rows }} as counted
        inner join checked_sizes_{{ rows }} as document_sizes
            on {{ document_key('counted.document_id') }} = document_sizes.document_key

    ),

{% endfor %}
final as (

    select * from weighted_inventors
    union all
    select * from weighted_author_addresses

)

select * from final
