-- Every final cluster, ranked by score (ties: more patents first, then cluster id), with its
-- S&T intensity: documents per million inhabitants of the gazetteer places in its footprint.
with

measured as (

    select * from {{ ref('int_clusters_measured') }}

),

named as (

    select * from {{ ref('int_clusters_named') }}

),

ranked as (

    select
        measured.*,
        named.name,
        named.economies,
        named.economy_shares,
        named.cross_border,
        row_number() over (
            order by measured.score desc, measured.pct_count desc, measured.cluster_id asc
        ) as rank
    from measured
    inner join named on measured.cluster_id = named.cluster_id

),

with_intensity as (

    select
        ranked.*,
        case
            when ranked.population > 0 then (ranked.pct_count + ranked.pub_count) / ranked.population * 1e6
        end as documents_per_million
    from ranked

),

final as (

    select
        rank,
        cluster_id,
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
        n_cells,
        population,
        documents_per_million,
        case
            when rank <= {{ var('top_n') }} and documents_per_million is not null
                then row_number() over (
                    partition by rank <= {{ var('top_n') }} and documents_per_million is not null
                    order by documents_per_million desc, rank asc
                )
        end as intensity_rank
    from with_intensity

)

select * from final
