-- One row per layer and whole-table check, computed inside DuckDB so that the gate
-- (Great Expectations, plugins/stclusters/gate/validate.py) judges small frames, never whole layers.
with

inventors as (

    select * from {{ ref('stg_patents__inventors') }}

),

author_addresses as (

    select * from {{ ref('stg_publications__addresses') }}

),

addresses as (

    select * from {{ ref('int_addresses_weighted') }}

),

located as (

    select * from {{ ref('int_addresses_located') }}

),

cells as (

    select * from {{ ref('int_cells_weighted') }}

),

geocoded as (

    select * from {{ ref('int_addresses_geocoded') }}

),

staged as (

    select
        layer,
        document_id,
        address_seq,
        publication_year,
        publication_year
        between {{ var('patents_first_year') }} and {{ var('patents_last_year') }} as in_window,
        {{ is_counted() }} as is_counted
    from inventors
    union all
    select
        layer,
        document_id,
        address_seq,
        publication_year,
        publication_year between {{ var('publications_first_year') }} and {{ var('publications_last_year') }},
        {{ is_counted() }}
    from author_addresses

),

layers as (

    select unnest(['patents', 'publications']) as layer

),

-- Plain aggregates in two steps (no count(distinct)): DuckDB can spill them to disk, so the
-- model stays within duckdb_memory_limit at world scale (tens of millions of addresses).
-- the land step's rows, one scan per layer (no grouping by document: these are row counts)
row_stats as (
    {% for layer, rows in [('patents', 'inventors'), ('publications', 'author_addresses')] %}
        select
            '{{ layer }}' as layer,
            count(*) as rows_landed,
            count(*) filter (where nullif(trim(document_id), '') is null) as missing_document_id,
            count(*) filter (where address_seq is null) as missing_address_seq,
            count(*) filter (where publication_year is null) as missing_year,
            count(*) filter (where nullif(trim(country), '') is null) as missing_country
        from {{ rows }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

address_positions as (

    select
        layer,
        document_id,
        address_seq,
        count(*) as n_rows,
        bool_and(in_window) as in_window,
        bool_or(is_counted) as is_counted
    from staged
    group by layer, document_id, address_seq

),

documents as (

    select
        layer,
        document_id,
        count(*) as n_positions,
        bool_and(in_window) as in_window,
        bool_or(is_counted) as is_counted,
        count(*) filter (where n_rows > 1) as duplicate_addresses
    from address_positions
    group by layer, document_id

),

document_stats as (

    select
        layers.layer,
        count(documents.document_id) as documents_landed,
        coalesce(sum(documents.n_positions), 0)::bigint as address_positions,
        count(documents.document_id) filter (where not documents.in_window) as documents_out_of_window,
        count(documents.document_id) filter (where documents.duplicate_addresses > 0) as documents_duplicated,
        -- from the staged rows, independently of int_addresses_weighted's weights
        count(documents.document_id) filter (where documents.is_counted) as documents_counted
    from layers
    left join documents on layers.layer = documents.layer
    group by layers.layer

),

-- fsum: compensated (Kahan) summation; a plain float sum of tens of millions of 1/n shares
-- drifts by more than the gate's tolerance
weight_per_layer as (

    select
        layer,
        fsum(weight) as weight
    from addresses
    group by layer

),

counted as (

    select
        layers.layer,
        coalesce(weight_per_layer.weight, 0) as weight_counted
    from layers
    left join weight_per_layer on layers.layer = weight_per_layer.layer

),

located_weight as (

    select
        layers.layer,
        coalesce(fsum(located.weight), 0) as weight_located
    from layers
    left join located on layers.layer = located.layer
    group by layers.layer

),

cell_weight as (

    select
        layers.layer,
        coalesce(fsum(cells.weight), 0) as weight_in_cells
    from layers
    left join cells on layers.layer = cells.layer
    group by layers.layer

),

-- counted address rows placed in another country than the one read from the export; Hong Kong
-- and Macao filed under China (and the reverse) are not counted (docs/geocoding.md, CN/HK/MO)
other_country as (

    select
        layers.layer,
        count(addresses.address_key) as n_address_rows,
        count(addresses.address_key) filter (
            where
            geocoded.place_country <> addresses.country
            and not (
                addresses.country in ('CN', 'HK', 'MO')
                and geocoded.place_country in ('CN', 'HK', 'MO')
            )
        ) as addresses_in_other_country
    from layers
    left join addresses on layers.layer = addresses.layer
    left join geocoded on addresses.address_key = geocoded.address_key
    group by layers.layer

),

final as (

    select
        document_stats.layer,
        -- the land step's rows (the raw stage of the gate reads these, validate.RAW_LAYERS_SQL)
        row_stats.rows_landed,
        row_stats.missing_document_id,
        row_stats.missing_address_seq,
        row_stats.missing_year,
        row_stats.missing_country,
        row_stats.rows_landed - document_stats.address_positions as duplicate_address_rows,
        document_stats.documents_landed,
        document_stats.documents_counted,
        counted.weight_counted,
        document_stats.documents_out_of_window,
        document_stats.documents_duplicated,
        located_weight.weight_located,
        cell_weight.weight_in_cells,
        abs(counted.weight_counted - document_stats.documents_counted) as conservation_error,
        document_stats.documents_out_of_window
        / greatest(document_stats.documents_landed, 1) as out_of_window_share,
        abs(cell_weight.weight_in_cells - located_weight.weight_located) as cells_conservation_error,
        other_country.addresses_in_other_country,
        other_country.addresses_in_other_country
        / greatest(other_country.n_address_rows, 1) as other_country_share
    from document_stats
    inner join row_stats on document_stats.layer = row_stats.layer
    inner join counted on document_stats.layer = counted.layer
    inner join located_weight on document_stats.layer = located_weight.layer
    inner join cell_weight on document_stats.layer = cell_weight.layer
    inner join other_country on document_stats.layer = other_country.layer

)

select * from final
