-- Every variation's rank of every published cluster (published as robustness.parquet).
with

varied as not materialized (

    select * from {{ ref('int_clusters_varied') }}

),

ranking as not materialized (

    select * from {{ ref('ranking') }}

),

final as (

    select
        varied.rank,
        ranking.name,
        varied.variation,
        varied.parameter,
        varied.value,
        varied.variation_rank,
        varied.variation_score,
        varied.status,
        varied.n_pieces,
        varied.merged_with,
        varied.cluster_id
    from varied
    inner join ranking on varied.cluster_id = ranking.cluster_id

)

select * from final
