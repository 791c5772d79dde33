-- Geocoding coverage per layer and country, and per layer overall (country = '*'): what share
-- of the documents' weight (and of the address rows) each step of the cascade located. The gate
-- (min_geocoded_share) and the report read it.
with

addresses as (

    select * from {{ ref('int_addresses_weighted') }}

),

geocoded as (

    select * from {{ ref('int_addresses_geocoded') }}

),

joined as (

    select
        addresses.layer,
        coalesce(addresses.country, '-') as country,
        addresses.weight,
        geocoded.geo_precision
    from addresses
    inner join geocoded on addresses.address_key = geocoded.address_key

),

aggregated as (

    select
        layer,
        case when grouping(country) = 1 then '*' else country end as country,
        count(*) as n_addresses,
        count(*) filter (where geo_precision <> 'unmatched') as n_addresses_geocoded,
        sum(weight) as weight,
        coalesce(sum(weight) filter (where geo_precision <> 'unmatched'), 0) as weight_geocoded,
        coalesce(sum(weight) filter (where geo_precision = 'coordinates'), 0) as weight_coordinates,
        coalesce(sum(weight) filter (where geo_precision = 'postal_code'), 0) as weight_postal_code,
        coalesce(sum(weight) filter (where geo_precision = 'city'), 0) as weight_city,
        coalesce(sum(weight) filter (where geo_precision = 'region'), 0) as weight_region,
        coalesce(sum(weight) filter (where geo_precision = 'unmatched'), 0) as weight_unmatched
    from joined
    group by grouping sets ((layer, country), (layer))

),

final as (

    select
        layer,
        country,
        n_addresses,
        n_addresses_geocoded,
        n_addresses_geocoded / n_addresses as address_geocoded_share,
        weight,
        weight_geocoded,
        weight_geocoded / weight as geocoded_share,
        weight_coordinates / weight as coordinates_share,
        weight_postal_code / weight as postal_code_share,
        weight_city / weight as city_share,
        weight_region / weight as region_share,
        weight_unmatched / weight as unmatched_share
    from aggregated

)

select * from final
