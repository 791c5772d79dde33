-- The weighted points inside the cells: per layer, H3 cell and geocoded position, the sum of
-- the fractional counts of the counted addresses placed there. The clustering decides on these
-- exact positions where the grid's error bound cannot decide (int_cells_clustered).
with

addresses as (

    select * from {{ ref('int_address_keys_weighted') }}

),

placed as (

    select * from {{ ref('int_address_keys_placed') }}

),

geocoded as (

    select * from {{ ref('int_addresses_geocoded') }}

),

located as (

    select
        addresses.layer,
        placed.cell,
        geocoded.geo_latitude as latitude,
        geocoded.geo_longitude as longitude,
        addresses.weight
    from addresses
    inner join placed on addresses.address_key = placed.address_key
    inner join geocoded on addresses.address_key = geocoded.address_key

),

final as (

    select
        layer,
        cell,
        latitude,
        longitude,
        {{ exact_sum('weight') }} as weight
    from located
    group by layer, cell, latitude, longitude

)

select * from final
