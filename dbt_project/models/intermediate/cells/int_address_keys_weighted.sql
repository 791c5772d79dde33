-- The counted addresses folded onto their distinct keys: per layer, address key and country as
-- read, the fractional count and the number of address rows. One pass over the tens of millions
-- of rows of int_addresses_weighted; everything that needs only where an address lies (located
-- counts, the clustering's points, the geocoding coverage, the wrong-country check, the world
-- totals) reads these few million rows instead.
with

addresses as not materialized (

    select * from {{ ref('int_addresses_weighted') }}

),

final as (

    select
        layer,
        address_key,
        country,
        {{ exact_sum('weight') }} as weight,
        count(*) as n_addresses
    from addresses
    group by layer, address_key, country

)

select * from final
