{{ config(materialized='view') }}

-- Every counted address with the final cluster it lies in (null when it lies in none, or was
-- not placed: int_address_keys_placed's rule), its country and organization.
-- Summing weight per cluster_id and layer gives exactly the clusters' pct_count / pub_count.
with

addresses as not materialized (

    select * from {{ ref('int_addresses_weighted') }}

),

placed as not materialized (

    select * from {{ ref('int_address_keys_placed') }}

),

merged as not materialized (

    select * from {{ ref('int_clusters_merged') }}

),

clustered as (

    select
        placed.address_key,
        placed.place_country,
        merged.cluster_id
    from placed
    left join merged on placed.cell = merged.cell

),

final as (

    select
        addresses.layer,
        addresses.document_id,
        addresses.document_key,
        addresses.address_seq,
        addresses.publication_year,
        addresses.weight,
        clustered.cluster_id,
        addresses.organization,
        -- the gazetteer's country where the address was placed (Hong Kong filed under CN is HK)
        coalesce(clustered.place_country, addresses.country) as country
    from addresses
    left join clustered on addresses.address_key = clustered.address_key

)

select * from final
