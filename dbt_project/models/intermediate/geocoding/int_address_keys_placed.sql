-- Where each distinct address is placed on the grid: its H3 cell, gazetteer place and country.
-- The one statement of the placement rule: only addresses located at city level or finer are
-- placed. A region-level match says "somewhere in the region": putting it on the region's
-- largest city would inflate that city's cluster, so it counts in the world totals only.
with

geocoded as not materialized (

    select * from {{ ref('int_addresses_geocoded') }}

),

celled as not materialized (

    select * from {{ ref('int_locations_celled') }}

),

final as (

    select
        geocoded.address_key,
        celled.cell,
        geocoded.geonameid,
        geocoded.place_country
    from geocoded
    inner join celled
        on
            geocoded.geo_latitude = celled.geo_latitude
            and geocoded.geo_longitude = celled.geo_longitude
    where geocoded.geo_precision in ('coordinates', 'postal_code', 'city')

)

select * from final
