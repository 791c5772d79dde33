-- The published ranking: the top_n clusters, explicit columns.
with

clusters as (

    select * from {{ ref('clusters') }}

),

final as (

    select
        rank,
        name,
        economies,
        economy_shares,
        cross_border,
        pct_count,
        pct_share,
        pub_count,
        pub_share,
        score,
        latitude,
        longitude,
        population,
        documents_per_million,
        intensity_rank,
        n_cells,
        cluster_id
    from clusters
    where rank <= {{ var('top_n') }}

)

select * from final
