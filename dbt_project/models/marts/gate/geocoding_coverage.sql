-- Geocoding coverage per layer and country, and per layer overall (country = '*'): what share
-- of the documents' weight (and of the address rows) each step of the cascade located. The gate
-- (min_geocoded_share) and the report read it.
with

addresses as not materialized (

    select * from {{ ref('int_address_keys_weighted') }}

),

geocoded as not materialized (

    select * from {{ ref('int_addresses_geocoded') }}

),

joined as (

    select
        addresses.layer,
        addresses.weight,
        addresses.n_addresses,
        geocoded.geo_precision,
        coalesce(addresses.country, '-') as country
    from addresses
    inner join geocoded on addresses.address_key = geocoded.address_key

),

per_country as (

    select
        layer,
        country,
        cast(sum(n_addresses) as bigint) as n_addresses,
        cast(coalesce(sum(n_addresses) filter (where geo_precision <> 'unmatched'), 0) as bigint)
            as n_addresses_geocoded,
        cast(coalesce(sum(n_addresses) filter (
            where geo_precision in ('coordinates', 'postal_code', 'city')
        ), 0) as bigint) as n_addresses_city_level,
        {{ exact_sum('weight') }} as weight,
        coalesce({{ exact_sum('weight', "geo_precision <> 'unmatched'") }}, 0) as weight_geocoded,
        coalesce({{ exact_sum('weight', "geo_precision = 'coordinates'") }}, 0) as weight_coordinates,
        coalesce({{ exact_sum('weight', "geo_precision = 'postal_code'") }}, 0) as weight_postal_code,
        coalesce({{ exact_sum('weight', "geo_precision = 'city'") }}, 0) as weight_city,
        coalesce({{ exact_sum('weight', "geo_precision = 'region'") }}, 0) as weight_region,
        coalesce({{ exact_sum('weight', "geo_precision = 'unmatched'") }}, 0) as weight_unmatched
    from joined
    group by layer, country

),

per_layer as (

    select
        layer,
        '*' as country,
        sum(n_addresses) as n_addresses,
        sum(n_addresses_geocoded) as n_addresses_geocoded,
        sum(n_addresses_city_level) as n_addresses_city_level,
        {{ exact_sum('weight') }} as weight,
        {{ exact_sum('weight_geocoded') }} as weight_geocoded,
        {{ exact_sum('weight_coordinates') }} as weight_coordinates,
        {{ exact_sum('weight_postal_code') }} as weight_postal_code,
        {{ exact_sum('weight_city') }} as weight_city,
        {{ exact_sum('weight_region') }} as weight_region,
        {{ exact_sum('weight_unmatched') }} as weight_unmatched
    from per_country
    group by layer

),

aggregated as (

    select * from per_country
    union all
    select * from per_layer

),

final as (

    select
        layer,
        country,
        weight,
        weight_geocoded,
        cast(n_addresses as bigint) as n_addresses,
        cast(n_addresses_geocoded as bigint) as n_addresses_geocoded,
        n_addresses_geocoded / n_addresses as address_geocoded_share,
        weight_geocoded / weight as geocoded_share,
        weight_coordinates / weight as coordinates_share,
        weight_postal_code / weight as postal_code_share,
        weight_city / weight as city_share,
        weight_region / weight as region_share,
        weight_unmatched / weight as unmatched_share,
        cast(n_addresses_city_level as bigint) as n_addresses_city_level,
        n_addresses_city_level / n_addresses as address_city_level_share
    from aggregated

)

select * from final
