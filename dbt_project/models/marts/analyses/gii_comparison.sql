-- This edition beside the table WIPO published for GII 2023: one row per published cluster.
-- A published cluster is matched by geography, never by name: the first place of its name (the
-- text before the first en dash and before ", ST") is looked up in the gazetteer in its first
-- economy (most populous place of that name; for US names, a place in the named state first),
-- and the cluster holding most of that place's score contribution is its match (a place whose
-- addresses were all placed by coordinates falls back on the cluster whose footprint holds the
-- place's own cell). Every place of the published name is looked up the same way (in any of its
-- economies) so that the report can say how much of the matched cluster's score each brings.
-- Only meaningful for the 2023 edition: empty otherwise.
with

published as not materialized (

    select * from {{ ref('gii_2023_published') }}

),

names as not materialized (

    select * from {{ ref('stg_gazetteer__names') }}

),

places as not materialized (

    select * from {{ ref('int_places_celled') }}

),

located as not materialized (

    select * from {{ ref('int_addresses_located') }}

),

merged as not materialized (

    select * from {{ ref('int_clusters_merged') }}

),

measured as not materialized (

    select * from {{ ref('int_clusters_measured') }}

),

clusters as not materialized (

    select * from {{ ref('clusters') }}

),

published_rows as (

    select
        rank as published_rank,
        cluster_name as published_name,
        economy as published_economies,
        pct_applications as published_pct_applications,
        articles as published_articles,
        pct_share as published_pct_share,
        articles_share as published_articles_share,
        score as published_score,
        string_split(economy, '/') as economy_list
    from published
    where {{ var('edition') }} = 2023

),

-- "Washington, DC–Baltimore, MD" -> (1, Washington, DC), (2, Baltimore, MD)
name_parts as (

    select
        published_rows.published_rank,
        published_rows.economy_list,
        parts.part_rank,
        trim(regexp_replace(parts.part, ',\s*[A-Z]{2}$', '')) as place_text,
        regexp_extract(parts.part, ',\s*([A-Z]{2})$', 1) as state_code
    from published_rows,
        unnest(string_split(published_rows.published_name, '–')) with ordinality as parts (part, part_rank)

),

-- the UDF once per distinct place text, not per candidate row
place_keys as (

    select
        place_text,
        stc_normalize_name(place_text) as name_key
    from (select distinct place_text from name_parts) as distinct_texts

),

candidates as (

    select
        name_parts.published_rank,
        name_parts.part_rank,
        name_parts.place_text,
        places.geonameid,
        places.name as gazetteer_name,
        places.cell,
        row_number() over (
            partition by name_parts.published_rank, name_parts.part_rank
            order by
                coalesce(places.admin1_code = name_parts.state_code, false) desc,
                places.population desc,
                places.geonameid asc
        ) as candidate_rank
    from name_parts
    inner join place_keys on name_parts.place_text = place_keys.place_text
    inner join names on place_keys.name_key = names.name_key
    inner join places
        on
            names.geonameid = places.geonameid
            and (
                -- the first place in the first economy only; the others in any of the economies
                (name_parts.part_rank = 1 and places.country_code = name_parts.economy_list[1])
                or (name_parts.part_rank > 1 and list_contains(name_parts.economy_list, places.country_code))
            )

),

name_places as (

    select
        name_parts.published_rank,
        name_parts.part_rank,
        name_parts.place_text,
        candidates.geonameid,
        candidates.gazetteer_name,
        candidates.cell
    from name_parts
    left join candidates
        on
            name_parts.published_rank = candidates.published_rank
            and name_parts.part_rank = candidates.part_rank
            and candidates.candidate_rank = 1

),

-- each located place's contribution to each cluster's score (as int_clusters_named counts it)
place_contributions as (

    select
        located.geonameid,
        merged.cluster_id,
        {{ exact_sum(share_of_world()) }} as contribution
    from located
    inner join merged on located.cell = merged.cell
    inner join measured on merged.cluster_id = measured.cluster_id
    where located.geonameid is not null
    group by located.geonameid, merged.cluster_id

),

first_places as (

    select * from name_places
    where part_rank = 1

),

by_addresses as (

    select
        first_places.published_rank,
        place_contributions.cluster_id,
        row_number() over (
            partition by first_places.published_rank
            order by place_contributions.contribution desc, place_contributions.cluster_id asc
        ) as cluster_order
    from first_places
    inner join place_contributions on first_places.geonameid = place_contributions.geonameid

),

matches as (

    select
        first_places.published_rank,
        first_places.place_text,
        first_places.geonameid,
        first_places.gazetteer_name,
        coalesce(by_addresses.cluster_id, by_cell.cluster_id) as cluster_id,
        case
            when by_addresses.cluster_id is not null then 'place addresses'
            when by_cell.cluster_id is not null then 'place cell'
        end as match_method
    from first_places
    left join by_addresses
        on
            first_places.published_rank = by_addresses.published_rank
            and by_addresses.cluster_order = 1
    left join merged as by_cell on first_places.cell = by_cell.cell

),

-- every place of the published name: its gazetteer name and its share of the matched score
published_place_shares as (

    select
        name_places.published_rank,
        string_agg(
            name_places.place_text
            || '|' || coalesce(name_places.gazetteer_name, '')
            || '|' || coalesce(
                printf('%.4f', coalesce(place_contributions.contribution, 0) / nullif(clusters.score, 0)), ''
            ),
            ';' order by name_places.part_rank
        ) as published_place_shares
    from name_places
    inner join matches on name_places.published_rank = matches.published_rank
    left join clusters on matches.cluster_id = clusters.cluster_id
    left join place_contributions
        on
            name_places.geonameid = place_contributions.geonameid
            and matches.cluster_id = place_contributions.cluster_id
    group by name_places.published_rank

),

-- the matched clusters' largest places, grouped as int_clusters_named groups them for naming
matched_places as (

    select
        place_contributions.cluster_id,
        places.name,
        {{ exact_sum('place_contributions.contribution') }} as contribution
    from place_contributions
    inner join places on place_contributions.geonameid = places.geonameid
    where place_contributions.cluster_id in (select matches.cluster_id from matches)
    group by place_contributions.cluster_id, places.name, places.country_code, places.admin1_code

),

our_place_shares as (

    select
        matched_places.cluster_id,
        string_agg(
            matched_places.name
            || '|' || printf('%.4f', matched_places.contribution / nullif(clusters.score, 0)),
            ';' order by matched_places.contribution desc, matched_places.name asc
        ) as our_place_shares
    from (
        select
            *,
            row_number() over (partition by cluster_id order by contribution desc, name asc) as place_rank
        from matched_places
    ) as matched_places
    inner join clusters on matched_places.cluster_id = clusters.cluster_id
    where matched_places.place_rank <= 5
    group by matched_places.cluster_id

),

shared as (

    select
        cluster_id,
        count(*) as n_published_matched
    from matches
    where cluster_id is not null
    group by cluster_id

),

final as (

    select
        published_rows.published_rank,
        published_rows.published_name,
        published_rows.published_economies,
        published_rows.published_pct_applications,
        published_rows.published_articles,
        published_rows.published_pct_share,
        published_rows.published_articles_share,
        published_rows.published_score,
        matches.place_text as matched_place,
        matches.geonameid as matched_geonameid,
        matches.gazetteer_name as matched_gazetteer_name,
        matches.match_method,
        clusters.rank as our_rank,
        clusters.cluster_id as our_cluster_id,
        clusters.name as our_name,
        clusters.economies as our_economies,
        clusters.economy_shares as our_economy_shares,
        published_place_shares.published_place_shares,
        our_place_shares.our_place_shares,
        clusters.pct_count as our_pct_count,
        clusters.pub_count as our_pub_count,
        clusters.pct_share * 100 as our_pct_share,
        clusters.pub_share * 100 as our_pub_share,
        clusters.score * 100 as our_score,
        clusters.rank - published_rows.published_rank as rank_difference,
        clusters.score * 100 - published_rows.published_score as score_difference,
        clusters.pct_share * 100 / nullif(published_rows.published_pct_share, 0) as pct_share_ratio,
        clusters.pub_share * 100 / nullif(published_rows.published_articles_share, 0) as pub_share_ratio,
        coalesce(clusters.name = published_rows.published_name, false) as name_matches,
        coalesce(clusters.economies = published_rows.published_economies, false) as economies_match,
        coalesce(shared.n_published_matched, 0) as n_published_matched
    from published_rows
    inner join matches on published_rows.published_rank = matches.published_rank
    left join clusters on matches.cluster_id = clusters.cluster_id
    left join shared on matches.cluster_id = shared.cluster_id
    left join published_place_shares on published_rows.published_rank = published_place_shares.published_rank
    left join our_place_shares on matches.cluster_id = our_place_shares.cluster_id

)

select * from final
