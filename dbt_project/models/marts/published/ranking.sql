-- The published ranking: the top_n clusters, explicit columns.
with

clusters as not materialized (

    select * from {{ ref('clusters') }}

),

-- rank intervals (stclusters.build.robustness; null when robustness is off)
ranged as not materialized (

    select * from {{ ref('int_clusters_ranged') }}

),

final as (

    select
        clusters.rank,
        clusters.name,
        clusters.economies,
        clusters.economy_shares,
        clusters.cross_border,
        clusters.pct_count,
        clusters.pct_share,
        clusters.pub_count,
        clusters.pub_share,
        clusters.score,
        clusters.latitude,
        clusters.longitude,
        clusters.population,
        clusters.documents_per_million,
        clusters.intensity_rank,
        clusters.n_cells,
        -- cast: a Python model with no rows (robustness off, no cluster) has untyped columns,
        -- and the contract wants the published types whatever the edition
        cast(ranged.sampling_rank_low as bigint) as sampling_rank_low,
        cast(ranged.sampling_rank_high as bigint) as sampling_rank_high,
        cast(ranged.method_rank_low as bigint) as method_rank_low,
        cast(ranged.method_rank_high as bigint) as method_rank_high,
        cast(ranged.rank_label as varchar) as rank_label,
        clusters.cluster_id
    from clusters
    left join ranged on clusters.cluster_id = ranged.cluster_id
    where clusters.rank <= {{ var('top_n') }}

)

select * from final
