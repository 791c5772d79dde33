-- Every final cluster, ranked by score (ties: more patents first, then cluster id), with its
-- S&T intensity: documents per million inhabitants of the gazetteer places in its footprint.
with

measured as not materialized (

    select * from {{ ref('int_clusters_measured') }}

),

named as not materialized (

    select * from {{ ref('int_clusters_named') }}

),

rounded as (

    -- published precision first (macros/published_precision.sql): the rank is then taken on
    -- the published values, the same at any DuckDB thread count
    select
        cluster_id,
        {{ published_count('pct_count') }} as pct_count,
        {{ published_share('pct_share') }} as pct_share,
        {{ published_count('pub_count') }} as pub_count,
        {{ published_share('pub_share') }} as pub_share,
        {{ published_share('score') }} as score,
        {{ published_degrees('latitude') }} as latitude,
        {{ published_degrees('longitude') }} as longitude,
        n_cells,
        population
    from measured

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
    from rounded as measured
    inner join named on measured.cluster_id = named.cluster_id

),

with_intensity as (

    select
        ranked.*,
        case
            when ranked.population > 0
                then {{ published_count('(ranked.pct_count + ranked.pub_count) / ranked.population * 1e6') }}
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
