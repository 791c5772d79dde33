-- Names and economies. A cluster's places are the gazetteer places its addresses were geocoded
-- to, ranked by their contribution to the score; the name joins the first place and the next
-- two when each brings at least var('name_min_share') of the cluster's score, with an en dash.
-- US places carry their state code after the last place of each run in the same state.
-- Economies: countries bringing at least var('economy_min_share') of the score, largest first.
with

located as not materialized (

    select * from {{ ref('int_addresses_located') }}

),

merged as not materialized (

    select * from {{ ref('int_clusters_merged') }}

),

measured as not materialized (

    select * from {{ ref('int_clusters_measured') }}

),

places as not materialized (

    select * from {{ ref('stg_gazetteer__places') }}

),

contributions as (

    select
        merged.cluster_id,
        located.geonameid,
        located.country,
        {{ exact_sum(share_of_world()) }} as contribution
    from located
    inner join merged on located.cell = merged.cell
    inner join measured on merged.cluster_id = measured.cluster_id
    group by merged.cluster_id, located.geonameid, located.country

),

place_contributions as (

    select
        contributions.cluster_id,
        places.name,
        places.country_code,
        places.admin1_code,
        {{ exact_sum('contributions.contribution') }} as contribution
    from contributions
    inner join places on contributions.geonameid = places.geonameid
    group by contributions.cluster_id, places.name, places.country_code, places.admin1_code

),

ranked_places as (

    select
        place_contributions.*,
        row_number() over (
            partition by place_contributions.cluster_id
            order by place_contributions.contribution desc, place_contributions.name asc
        ) as place_rank
    from place_contributions

),

named_places as (

    select
        ranked_places.*,
        lead(ranked_places.country_code || ranked_places.admin1_code) over (
            partition by ranked_places.cluster_id order by ranked_places.place_rank
        ) as next_state
    from ranked_places
    inner join measured on ranked_places.cluster_id = measured.cluster_id
    where
        ranked_places.place_rank = 1
        or (
            ranked_places.place_rank <= 3
            and ranked_places.contribution >= {{ var('name_min_share') }} * measured.score
        )

),

names as (

    select
        cluster_id,
        string_agg(
            name
            || case
                when country_code = 'US' and (next_state is null or next_state != country_code || admin1_code)
                    then ', ' || admin1_code
                else ''
            end,
            '–' order by place_rank
        ) as name
    from named_places
    group by cluster_id

),

country_shares as (

    select
        contributions.cluster_id,
        contributions.country,
        {{ exact_sum('contributions.contribution') }} / nullif(measured.score, 0) as share
    from contributions
    inner join measured on contributions.cluster_id = measured.cluster_id
    group by contributions.cluster_id, contributions.country, measured.score

),

economies as (

    select
        cluster_id,
        string_agg(country, '/' order by share desc, country asc) filter (
            where share >= {{ var('economy_min_share') }}
        ) as economies,
        string_agg(
            country || ':' || printf('%.4f', share), ';' order by share desc, country asc
        ) as economy_shares,
        count(*) filter (where share >= {{ var('economy_min_share') }}) as n_economies
    from country_shares
    group by cluster_id

),

final as (

    select
        measured.cluster_id,
        coalesce(names.name, 'Cluster ' || measured.cluster_id) as name,
        economies.economies,
        economies.economy_shares,
        economies.n_economies > 1 as cross_border
    from measured
    left join names on measured.cluster_id = names.cluster_id
    left join economies on measured.cluster_id = economies.cluster_id

)

select * from final
