-- Counts, shares, score, centre and population of every final cluster. A cluster counts every
-- document located in its footprint cells, in both layers (so a publication-led cluster still
-- counts the patents invented there). Shares are over every counted document of the window,
-- geocoded or not: an address that could not be located lowers every cluster's share.
with

addresses as not materialized (

    select * from {{ ref('int_address_keys_weighted') }}

),

merged as not materialized (

    select * from {{ ref('int_clusters_merged') }}

),

cells as not materialized (

    select * from {{ ref('int_cells_weighted') }}

),

places as not materialized (

    select * from {{ ref('int_places_celled') }}

),

world as (

    select
        coalesce({{ exact_sum("case when layer = 'patents' then weight end") }}, 0) as world_patents,
        coalesce({{ exact_sum("case when layer = 'publications' then weight end") }}, 0) as world_publications
    from addresses

),

cell_shares as (

    select
        merged.cluster_id,
        cells.cell,
        cells.cell_latitude,
        cells.cell_longitude,
        {{ exact_sum("case when cells.layer = 'patents' then cells.weight else 0 end") }} as patents,
        {{ exact_sum("case when cells.layer = 'publications' then cells.weight else 0 end") }} as publications
    from cells
    inner join merged on cells.cell = merged.cell
    group by merged.cluster_id, cells.cell, cells.cell_latitude, cells.cell_longitude

),

scored_cells as (

    select
        cell_shares.*,
        cell_shares.patents / nullif(world.world_patents, 0)
        + cell_shares.publications / nullif(world.world_publications, 0) as cell_score
    from cell_shares
    cross join world

),

per_cluster as (

    select
        cluster_id,
        count(*) as n_cells,
        {{ exact_sum('patents') }} as pct_count,
        {{ exact_sum('publications') }} as pub_count,
        {{ exact_sum('cell_latitude * cell_score') }} / nullif({{ exact_sum('cell_score') }}, 0) as latitude,
        {{ exact_sum('cell_longitude * cell_score') }} / nullif({{ exact_sum('cell_score') }}, 0) as longitude
    from scored_cells
    group by cluster_id

),

population as (

    select
        merged.cluster_id,
        sum(places.population) as population
    from places
    inner join merged on places.cell = merged.cell
    group by merged.cluster_id

),

final as (

    select
        per_cluster.cluster_id,
        per_cluster.n_cells,
        per_cluster.pct_count,
        per_cluster.pub_count,
        per_cluster.pct_count / nullif(world.world_patents, 0) as pct_share,
        per_cluster.pub_count / nullif(world.world_publications, 0) as pub_share,
        coalesce(per_cluster.pct_count / nullif(world.world_patents, 0), 0)
        + coalesce(per_cluster.pub_count / nullif(world.world_publications, 0), 0) as score,
        per_cluster.latitude,
        per_cluster.longitude,
        coalesce(population.population, 0) as population,
        world.world_patents,
        world.world_publications
    from per_cluster
    cross join world
    left join population on per_cluster.cluster_id = population.cluster_id

)

select * from final
