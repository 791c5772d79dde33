{{ config(materialized='bucketed_table') }}

-- The collaboration scope of every (cluster, document) pair (definition in docs/profiles.md):
--   local:         every address of the document lies in the cluster;
--   international: at least one address outside the cluster is in a country that is not one of
--                  the cluster's economies (int_clusters_named.economies);
--   domestic:      the rest (addresses outside the cluster, all in the cluster's economies; an
--                  address without a country counts as outside the cluster but not abroad).
-- Each pair carries the document's weight in the cluster, so that a cluster's scopes sum to its
-- fractional count. The addresses are read folded onto their documents (int_documents_clustered:
-- one row per document, cluster and country instead of one per address).
-- Built one bucket of documents at a time when the edition is large (macro document_bucket).
with

addresses as not materialized (

    select * from {{ ref('int_documents_clustered') }}
    where {{ document_bucket('document_key') }}

),

document_clusters as not materialized (

    select * from {{ ref('int_links_documents') }}
    where {{ document_bucket('document_key') }}

),

named as not materialized (

    select * from {{ ref('int_clusters_named') }}

),

-- a cluster with no economy above the threshold keeps its largest one
economies as (

    select
        cluster_id,
        string_split(coalesce(economies, split_part(economy_shares, ':', 1)), '/') as economy_list
    from named

),

outside_addresses as (

    select
        document_clusters.layer,
        document_clusters.document_key,
        document_clusters.cluster_id,
        bool_or(
            addresses.country is not null
            and not list_contains(economies.economy_list, addresses.country)
        ) as has_foreign_address
    from document_clusters
    inner join addresses
        on
            document_clusters.layer = addresses.layer
            and document_clusters.document_key = addresses.document_key
            and addresses.cluster_id is distinct from document_clusters.cluster_id
    inner join economies on document_clusters.cluster_id = economies.cluster_id
    group by document_clusters.layer, document_clusters.document_key, document_clusters.cluster_id

),

final as (

    select
        document_clusters.layer,
        document_clusters.cluster_id,
        document_clusters.document_key,
        document_clusters.cluster_weight,
        case
            when outside_addresses.document_key is null then 'local'
            when outside_addresses.has_foreign_address then 'international'
            else 'domestic'
        end as scope
    from document_clusters
    left join outside_addresses
        on
            document_clusters.layer = outside_addresses.layer
            and document_clusters.document_key = outside_addresses.document_key
            and document_clusters.cluster_id = outside_addresses.cluster_id

)

select * from final
