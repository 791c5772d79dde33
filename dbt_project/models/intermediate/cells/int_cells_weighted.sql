-- The weighted points the clustering works on: per layer and occupied H3 cell, the sum of the
-- fractional counts of the addresses located in it.
with

located as not materialized (

    select * from {{ ref('int_addresses_located') }}

),

per_cell as (

    select
        layer,
        cell,
        {{ exact_sum('weight') }} as weight,
        sum(n_addresses) as n_addresses
    from located
    group by layer, cell

),

final as (

    select
        layer,
        cell,
        weight,
        n_addresses,
        stc_h3_lat(cell) as cell_latitude,
        stc_h3_lng(cell) as cell_longitude
    from per_cell

)

select * from final
