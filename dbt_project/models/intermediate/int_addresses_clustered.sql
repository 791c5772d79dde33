-- Every counted address with the final cluster it lies in (null when it lies in none, or was
-- not placed on a city or finer: int_addresses_located's rule), its country and organization.
-- Summing weight per cluster_id and layer gives exactly the clusters' pct_count / pub_count.
with

addresses as (

    select * from {{ ref('int_addresses_weighted') }}

),

geocoded as (

    select * from {{ ref('int_addresses_geocoded') }}

),

celled as (

    select * from {{ ref('int_locations_celled') }}

),

merged as (

    select * from {{ ref('int_clusters_merged') }}

),

placed as (

    select
        geocoded.address_key,
        geocoded.place_country,
        merged.cluster_id
    from geocoded
    left join celled
        on
            geocoded.geo_latitude = celled.geo_latitude
            and geocoded.geo_longitude = celled.geo_longitude
    left join merged on celled.cell = merged.cell
    where geocoded.geo_precision in ('coordinates', 'postal_code', 'city')

),

final as (

    select
        addresses.layer,
        addresses.document_id,
        addresses.address_seq,
        addresses.publication_year,
        addresses.weight,
        placed.cluster_id,
        addresses.organization,
        -- the gazetteer's country where the address was placed (Hong Kong filed under CN is HK)
        coalesce(placed.place_country, addresses.country) as country
    from addresses
    left join placed on addresses.address_key = placed.address_key

)

select * from final
