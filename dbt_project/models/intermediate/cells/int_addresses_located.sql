-- Addresses placed on the grid, aggregated: per layer, H3 cell, gazetteer place and country,
-- the fractional count located there. Everything downstream (clustering, naming, economies,
-- shares) reads this compact table instead of the address rows.
with

addresses as not materialized (

    select * from {{ ref('int_address_keys_weighted') }}

),

placed as not materialized (

    select * from {{ ref('int_address_keys_placed') }}

),

located as (

    select
        addresses.layer,
        placed.cell,
        placed.geonameid,
        coalesce(placed.place_country, addresses.country) as country,
        addresses.weight,
        addresses.n_addresses
    from addresses
    inner join placed on addresses.address_key = placed.address_key

),

final as (

    select
        layer,
        cell,
        geonameid,
        country,
        {{ exact_sum('weight') }} as weight,
        sum(n_addresses)::bigint as n_addresses
    from located
    group by layer, cell, geonameid, country

)

select * from final
