-- Collaboration links between clusters, per layer: for a document d with weight w_a(d) in
-- cluster a and w_b(d) in cluster b (the shares of its addresses lying there), the pair gets
-- w_a(d) * w_b(d): the probability that two of d's addresses drawn at random (with replacement)
-- lie in a and in b. Over all ordered pairs of "places" (clusters, and outside any cluster) a
-- document's products sum to 1, so a cluster's count splits exactly into its internal part,
-- its links and its part with addresses outside every cluster (docs/profiles.md).
-- One row per unordered pair with a positive weight; cluster_a is the better-ranked one.
with

document_clusters as not materialized (

    select * from {{ ref('int_links_documents') }}

),

clusters as not materialized (

    select * from {{ ref('clusters') }}

),

pairs as (

    select
        a.layer,
        a.cluster_id as cluster_a_id,
        b.cluster_id as cluster_b_id,
        {{ published_count(exact_sum('a.cluster_weight * b.cluster_weight')) }} as link_weight,
        count(*) as n_documents
    from document_clusters as a
    inner join document_clusters as b
        on
            a.layer = b.layer
            and a.document_key = b.document_key
            and a.cluster_id <> b.cluster_id
    group by a.layer, a.cluster_id, b.cluster_id

),

final as (

    select
        pairs.layer,
        cluster_a.rank as cluster_a_rank,
        pairs.cluster_a_id,
        cluster_a.name as cluster_a_name,
        cluster_b.rank as cluster_b_rank,
        pairs.cluster_b_id,
        cluster_b.name as cluster_b_name,
        pairs.link_weight,
        pairs.n_documents,
        {{ published_share(
            "pairs.link_weight / nullif(case when pairs.layer = 'patents' then cluster_a.pct_count "
            ~ "else cluster_a.pub_count end, 0)"
        ) }} as share_of_a,
        {{ published_share(
            "pairs.link_weight / nullif(case when pairs.layer = 'patents' then cluster_b.pct_count "
            ~ "else cluster_b.pub_count end, 0)"
        ) }} as share_of_b
    from pairs
    inner join clusters as cluster_a on pairs.cluster_a_id = cluster_a.cluster_id
    inner join clusters as cluster_b on pairs.cluster_b_id = cluster_b.cluster_id
    where cluster_a.rank < cluster_b.rank

)

select * from final
