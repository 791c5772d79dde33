-- The footprint of every ranked cluster, cell by cell, with each layer's weight (for maps,
-- geojson and audits: every published count is the sum of these rows).
with

merged as not materialized (

    select * from {{ ref('int_clusters_merged') }}

),

cells as not materialized (

    select * from {{ ref('int_cells_weighted') }}

),

clusters as not materialized (

    select * from {{ ref('clusters') }}

),

per_cell as (

    select
        merged.cluster_id,
        merged.cell,
        any_value(cells.cell_latitude) as cell_latitude,
        any_value(cells.cell_longitude) as cell_longitude,
        coalesce({{ exact_sum("case when cells.layer = 'patents' then cells.weight end") }}, 0) as pct_count,
        coalesce(
            {{ exact_sum("case when cells.layer = 'publications' then cells.weight end") }}, 0
        ) as pub_count
    from merged
    inner join cells on merged.cell = cells.cell
    group by merged.cluster_id, merged.cell

),

final as (

    select
        clusters.rank,
        per_cell.cluster_id,
        per_cell.cell,
        per_cell.cell_latitude,
        per_cell.cell_longitude,
        per_cell.pct_count,
        per_cell.pub_count
    from per_cell
    inner join clusters on per_cell.cluster_id = clusters.cluster_id

)

select * from final
