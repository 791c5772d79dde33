-- One row per layer and whole-table check, computed inside DuckDB so that the gate
-- (Great Expectations, plugins/stclusters/gate/validate.py) judges small frames, never whole layers.
with

inventors as not materialized (

    select * from {{ ref('stg_patents__inventors') }}

),

author_addresses as not materialized (

    select * from {{ ref('stg_publications__addresses') }}

),

addresses as not materialized (

    select * from {{ ref('int_address_keys_weighted') }}

),

located as not materialized (

    select * from {{ ref('int_addresses_located') }}

),

cells as not materialized (

    select * from {{ ref('int_cells_weighted') }}

),

geocoded as not materialized (

    select * from {{ ref('int_addresses_geocoded') }}

),

-- the land step's rows, one scan per layer; each is read by its layer's grouping below and by
-- positions_exact, cheaper to read again than to write out (not materialized)
{% for layer, rows in [('patents', 'inventors'), ('publications', 'author_addresses')] %}
    staged_{{ layer }} as not materialized (

        select
            layer,
            document_id,
            address_seq,
            publication_year
            between {{ var(layer ~ '_first_year') }} and {{ var(layer ~ '_last_year') }} as in_window,
            {{ is_counted() }} as is_counted,
            address_seq is null as missing_address_seq,
            publication_year is null as missing_year,
            -- staged as upper(trim(country)): blank is the empty string, no trim again here
            nullif(country, '') is null as missing_country
        from {{ rows }}

    ),

{% endfor %}
staged as not materialized (

    select * from staged_patents
    union all
    select * from staged_publications

),

layers as (

    select unnest(['patents', 'publications']) as layer

),

-- One grouping of the rows by document, plain aggregates only (no count(distinct), which DuckDB
-- cannot spill: the model stays within duckdb_memory_limit at world scale), each layer on its
-- own (one grouping over both layers' rows ran out of memory at scale 5 of make bench, where
-- each layer's spills). A document's distinct address positions are the set bits of the bit_or
-- of its address_seq values 0..63 (every document of a real export); a document with a
-- position outside 0..63, or without one, is counted exactly by positions_exact instead.
document_rows as (
    {% for layer in ['patents', 'publications'] %}
        select
            layer,
            document_id,
            count(*) as n_rows,
            bit_count(bit_or(
                case when address_seq between 0 and 63 then 1::ubigint << address_seq::ubigint end
            )) as n_positions_in_mask,
            count(*) filter (
                where address_seq is null or address_seq not between 0 and 63
            ) as n_rows_outside_mask,
            bool_and(in_window) as in_window,
            bool_or(is_counted) as is_counted,
            -- the id is the group's: trimmed once per document, not once per row
            case when nullif(trim(document_id), '') is null then count(*) else 0 end as missing_document_id,
            count(*) filter (where missing_address_seq) as missing_address_seq,
            count(*) filter (where missing_year) as missing_year,
            count(*) filter (where missing_country) as missing_country
        from staged_{{ layer }}
        group by layer, document_id
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

-- the exact count for the documents the mask cannot hold (none in the usual edition: the
-- semi-join then has an empty side and the second scan of the rows is skipped)
positions_exact as (

    select
        layer,
        document_id,
        count(*) as n_positions,
        count(*) filter (where n_rows > 1) as duplicate_addresses
    from (
        select
            staged.layer,
            staged.document_id,
            staged.address_seq,
            count(*) as n_rows
        from staged
        semi join document_rows
            on
                staged.layer = document_rows.layer
                and staged.document_id is not distinct from document_rows.document_id
                and document_rows.n_rows_outside_mask > 0
        group by staged.layer, staged.document_id, staged.address_seq
    ) as positions
    group by layer, document_id

),

documents as (

    select
        document_rows.*,
        coalesce(positions_exact.n_positions, document_rows.n_positions_in_mask) as n_positions,
        coalesce(
            positions_exact.duplicate_addresses > 0,
            document_rows.n_rows > document_rows.n_positions_in_mask
        ) as is_duplicated
    from document_rows
    left join positions_exact
        on
            document_rows.layer = positions_exact.layer
            and document_rows.document_id is not distinct from positions_exact.document_id

),

document_stats as (

    select
        layers.layer,
        coalesce(sum(documents.n_rows), 0)::bigint as rows_landed,
        coalesce(sum(documents.missing_document_id), 0)::bigint as missing_document_id,
        coalesce(sum(documents.missing_address_seq), 0)::bigint as missing_address_seq,
        coalesce(sum(documents.missing_year), 0)::bigint as missing_year,
        coalesce(sum(documents.missing_country), 0)::bigint as missing_country,
        count(documents.document_id) as documents_landed,
        coalesce(sum(documents.n_positions), 0)::bigint as address_positions,
        count(documents.document_id) filter (where not documents.in_window) as documents_out_of_window,
        count(documents.document_id) filter (where documents.is_duplicated) as documents_duplicated,
        -- from the staged rows, independently of int_addresses_weighted's weights
        count(documents.document_id) filter (where documents.is_counted) as documents_counted
    from layers
    left join documents on layers.layer = documents.layer
    group by layers.layer

),

-- exact sums (macro exact_sum): a plain float sum of tens of millions of 1/n shares drifts by
-- more than the gate's tolerance, and with the order of the rows
weight_per_layer as (

    select
        layer,
        {{ exact_sum('weight') }} as weight
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
        coalesce({{ exact_sum('located.weight') }}, 0) as weight_located
    from layers
    left join located on layers.layer = located.layer
    group by layers.layer

),

cell_weight as (

    select
        layers.layer,
        coalesce({{ exact_sum('cells.weight') }}, 0) as weight_in_cells
    from layers
    left join cells on layers.layer = cells.layer
    group by layers.layer

),

-- counted address rows placed in another country than the one read from the export; Hong Kong
-- and Macao filed under China (and the reverse) are not counted (docs/geocoding.md, CN/HK/MO)
other_country as (

    select
        layers.layer,
        coalesce(sum(addresses.n_addresses), 0)::bigint as n_address_rows,
        coalesce(sum(addresses.n_addresses) filter (
            where
            geocoded.place_country <> addresses.country
            and not (
                addresses.country in ('CN', 'HK', 'MO')
                and geocoded.place_country in ('CN', 'HK', 'MO')
            )
        ), 0)::bigint as addresses_in_other_country
    from layers
    left join addresses on layers.layer = addresses.layer
    left join geocoded on addresses.address_key = geocoded.address_key
    group by layers.layer

),

final as (

    select
        document_stats.layer,
        -- the land step's rows (the raw stage of the gate reads these, validate.RAW_LAYERS_SQL)
        document_stats.rows_landed,
        document_stats.missing_document_id,
        document_stats.missing_address_seq,
        document_stats.missing_year,
        document_stats.missing_country,
        document_stats.rows_landed - document_stats.address_positions as duplicate_address_rows,
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
    inner join counted on document_stats.layer = counted.layer
    inner join located_weight on document_stats.layer = located_weight.layer
    inner join cell_weight on document_stats.layer = cell_weight.layer
    inner join other_country on document_stats.layer = other_country.layer

)

select * from final
