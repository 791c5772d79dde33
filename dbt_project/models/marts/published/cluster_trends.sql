-- Each cluster's fractional count per layer and publication year of the window, with the
-- cluster's share of the world's count of that year; years without documents are 0 rows.
-- The addresses are read folded onto their documents (int_documents_clustered; its decimal
-- weights give the same exact sums).
with

addresses as not materialized (

    select * from {{ ref('int_documents_clustered') }}

),

clusters as not materialized (

    select * from {{ ref('clusters') }}

),

layer_years as (

    select
        'patents' as layer,
        unnest(range({{ var('patents_first_year') }}, {{ var('patents_last_year') }} + 1)) as publication_year
    union all
    select
        'publications' as layer,
        unnest(range({{ var('publications_first_year') }}, {{ var('publications_last_year') }} + 1))
            as publication_year

),

world as (

    select
        layer,
        publication_year,
        {{ published_count(exact_sum('weight')) }} as world_count
    from addresses
    group by layer, publication_year

),

per_cluster as (

    select
        layer,
        cluster_id,
        publication_year,
        {{ published_count(exact_sum('weight')) }} as document_count
    from addresses
    where cluster_id is not null
    group by layer, cluster_id, publication_year

),

final as (

    select
        clusters.rank as cluster_rank,
        clusters.cluster_id,
        clusters.name as cluster_name,
        layer_years.layer,
        cast(layer_years.publication_year as integer) as publication_year,
        coalesce(per_cluster.document_count, 0) as document_count,
        coalesce(world.world_count, 0) as world_count,
        {{ published_share('coalesce(per_cluster.document_count, 0) / nullif(world.world_count, 0)') }}
            as world_share
    from clusters
    cross join layer_years
    left join per_cluster
        on
            clusters.cluster_id = per_cluster.cluster_id
            and layer_years.layer = per_cluster.layer
            and layer_years.publication_year = per_cluster.publication_year
    left join world
        on
            layer_years.layer = world.layer
            and layer_years.publication_year = world.publication_year

)

select * from final
