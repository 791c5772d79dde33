{#- How many items each ranked facet keeps per cluster and layer (the only place it is set). -#}
{%- set top_k = var('profiles_top_k', 5) -%}
-- Who and what each cluster is made of, one row per cluster x facet x item (top {{ top_k }} per
-- ranked facet). Counts are fractional; share = count / the cluster's count in the facet's layer
-- (pct_count or pub_count), so shares of different facets compare. Facets:
--   applicant (patents), organization (publications): by normalised name, shown as written;
--   technology_field (patents, WIPO's 35 fields), science_field (publications, subjects):
--     a document splits equally over its fields; unclassified documents are not ranked;
--   collaboration (both layers): local, domestic, international, always all three (shares sum
--     to 1);
--   partner (both layers): the clusters it shares most documents with (links.link_weight).
with

clusters as not materialized (

    select * from {{ ref('clusters') }}

),

document_clusters as not materialized (

    select * from {{ ref('int_links_documents') }}

),

document_fields as not materialized (

    select * from {{ ref('int_profiles_fields') }}

),

organizations as not materialized (

    select * from {{ ref('int_profiles_organizations') }}

),

collaboration as not materialized (

    select * from {{ ref('int_profiles_collaboration') }}

),

links as not materialized (

    select * from {{ ref('links') }}

),

cluster_layers as (

    select
        cluster_id,
        'patents' as layer,
        pct_count as layer_count
    from clusters
    union all
    select
        cluster_id,
        'publications' as layer,
        pub_count as layer_count
    from clusters

),

organization_items as (

    select
        cluster_id,
        layer,
        case when layer = 'patents' then 'applicant' else 'organization' end as facet,
        organization as item,
        organization_key as item_key,
        organization_count as item_count,
        false as keep_all
    from organizations

),

field_items as (

    select
        document_clusters.cluster_id,
        document_clusters.layer,
        case
            when document_clusters.layer = 'patents' then 'technology_field' else 'science_field'
        end as facet,
        document_fields.field_name as item,
        coalesce(
            cast(document_fields.field_number as varchar), lower(document_fields.field_name)
        ) as item_key,
        {{ exact_sum('document_clusters.cluster_weight * document_fields.field_share') }} as item_count,
        false as keep_all
    from document_clusters
    inner join document_fields
        on
            document_clusters.layer = document_fields.layer
            and document_clusters.document_key = document_fields.document_key
    where document_fields.field_name is not null
    group by
        document_clusters.cluster_id,
        document_clusters.layer,
        document_fields.field_name,
        document_fields.field_number

),

scopes as (

    select unnest(['local', 'domestic', 'international']) as scope

),

collaboration_items as (

    select
        cluster_layers.cluster_id,
        cluster_layers.layer,
        'collaboration' as facet,
        scopes.scope as item,
        scopes.scope as item_key,
        coalesce({{ exact_sum('collaboration.cluster_weight') }}, 0) as item_count,
        true as keep_all
    from cluster_layers
    cross join scopes
    left join collaboration
        on
            cluster_layers.cluster_id = collaboration.cluster_id
            and cluster_layers.layer = collaboration.layer
            and scopes.scope = collaboration.scope
    group by cluster_layers.cluster_id, cluster_layers.layer, scopes.scope

),

partner_items as (

    select
        cluster_a_id as cluster_id,
        layer,
        'partner' as facet,
        cluster_b_name as item,
        cast(cluster_b_id as varchar) as item_key,
        link_weight as item_count,
        false as keep_all
    from links
    union all
    select
        cluster_b_id as cluster_id,
        layer,
        'partner' as facet,
        cluster_a_name as item,
        cast(cluster_a_id as varchar) as item_key,
        link_weight as item_count,
        false as keep_all
    from links

),

items as (

    select * from organization_items
    union all
    select * from field_items
    union all
    select * from collaboration_items
    union all
    select * from partner_items

),

ranked as (

    select
        items.*,
        row_number() over (
            partition by items.cluster_id, items.layer, items.facet
            order by
                case
                    when items.facet = 'collaboration'
                        then list_position(['local', 'domestic', 'international'], items.item_key)
                end asc,
                {{ published_count('items.item_count') }} desc,
                items.item asc,
                items.item_key asc
        ) as item_rank
    from items

),

final as (

    select
        clusters.rank as cluster_rank,
        clusters.cluster_id,
        clusters.name as cluster_name,
        ranked.layer,
        ranked.facet,
        ranked.item_rank,
        ranked.item,
        ranked.item_key,
        {{ published_count('ranked.item_count') }} as item_count,
        {{ published_share('ranked.item_count / nullif(cluster_layers.layer_count, 0)') }} as item_share
    from ranked
    inner join clusters on ranked.cluster_id = clusters.cluster_id
    inner join cluster_layers
        on
            ranked.cluster_id = cluster_layers.cluster_id
            and ranked.layer = cluster_layers.layer
    where ranked.keep_all or ranked.item_rank <= {{ top_k }}

)

select * from final
