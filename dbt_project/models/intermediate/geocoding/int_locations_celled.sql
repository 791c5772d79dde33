-- The H3 cell of every distinct geocoded location: one UDF call per location, not per address.
with

geocoded as not materialized (

    select * from {{ ref('int_addresses_geocoded') }}

),

locations as (

    select distinct
        geo_latitude,
        geo_longitude
    from geocoded
    where geo_latitude is not null and geo_longitude is not null

),

final as (

    select
        geo_latitude,
        geo_longitude,
        stc_h3_cell(geo_latitude, geo_longitude, {{ var('h3_resolution') }}) as cell
    from locations

)

select * from final
