{{ config(materialized='bucketed_table') }}

-- Per layer, document and cluster: the document's weight in the cluster, w_c(d) = the sum of
-- the weights of its addresses in cluster c (a document's weights over all its addresses sum to
-- 1, so w_c(d) is the share of its addresses lying in c). Only documents with an address in a
-- cluster appear; links and collaboration shares are computed from here. Read from the
-- addresses folded onto documents (int_documents_clustered), whose decimal sums add up to the
-- same exact sums. A large edition is built one bucket of documents at a time (macro
-- document_bucket).
with

documents as not materialized (

    select * from {{ ref('int_documents_clustered') }}
    where {{ document_bucket('document_key') }}

),

final as (

    select
        layer,
        document_key,
        cluster_id,
        {{ exact_sum('weight') }} as cluster_weight,
        sum(n_addresses)::bigint as n_addresses
    from documents
    where cluster_id is not null
    group by layer, document_key, cluster_id

)

select * from final
