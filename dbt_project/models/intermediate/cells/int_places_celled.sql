-- Every gazetteer place on the grid: for cluster populations (S&T intensity) and naming.
with

places as not materialized (

    select * from {{ ref('stg_gazetteer__places') }}

),

final as (

    select
        geonameid,
        name,
        country_code,
        admin1_code,
        population,
        stc_h3_cell(latitude, longitude, {{ var('h3_resolution') }}) as cell
    from places

)

select * from final
