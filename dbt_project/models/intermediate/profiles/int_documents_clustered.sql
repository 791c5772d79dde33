{{ config(materialized='bucketed_table') }}

-- The counted addresses folded onto their documents: per layer, document, final cluster (null:
-- outside every cluster), publication year and country, the exact sum of the addresses'
-- weights (decimal, macro exact_sum's type, so that any sum over these rows is the same as
-- over the address rows) and their number. One pass over the address rows, after which the
-- links, collaboration scopes and trends work on documents (about half as many rows at scale 1
-- of make bench; docs/performance.md).
--
-- The addresses are materialized before they are grouped: at scale 5 (252 M rows) the view's
-- join to each address key's cluster and the grouping in one pipeline ran out of memory at 3GB,
-- one after the other completes (276 s); at scale 1 both take the same time. A large edition is
-- built one bucket of documents at a time (macro document_bucket).
with

addresses as materialized (

    select * from {{ ref('int_addresses_clustered') }}
    where {{ document_bucket('document_key') }}

),

final as (

    select
        layer,
        document_key,
        cluster_id,
        publication_year,
        country,
        sum(cast(weight as decimal(38, 24))) as weight,
        count(*) as n_addresses
    from addresses
    group by layer, document_key, cluster_id, publication_year, country

)

select * from final
