-- Addresses placed on the grid, aggregated: per layer, H3 cell, gazetteer place and country,
-- the fractional count located there. Everything downstream (clustering, naming, economies,
-- shares) reads this compact table instead of the address rows.
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

located as (

    select
        addresses.layer,
        celled.cell,
        geocoded.geonameid,
        coalesce(geocoded.place_country, addresses.country) as country,
        addresses.weight
    from addresses
    inner join geocoded on addresses.address_key = geocoded.address_key
    inner join celled
        on
            geocoded.geo_latitude = celled.geo_latitude
            and geocoded.geo_longitude = celled.geo_longitude
    -- A region-level match only says "somewhere in the region": placing it on the region's
    -- largest city would inflate that city's cluster, so it counts in the world totals only.
    where geocoded.geo_precision in ('coordinates', 'postal_code', 'city')

),

final as (

    select
        layer,
        cell,
        geonameid,
        country,
        sum(weight) as weight,
        count(*) as n_addresses
    from located
    group by layer, cell, geonameid, country

)

select * from final
