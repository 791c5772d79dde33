with

source as (

    select * from {{ source('raw', 'gazetteer_places') }}

),

renamed as (

    select
        cast(geonameid as bigint) as geonameid,
        name,
        upper(country_code) as country_code,
        nullif(admin1_code, '') as admin1_code,
        cast(latitude as double) as latitude,
        cast(longitude as double) as longitude,
        cast(coalesce(population, 0) as bigint) as population

    from source

)

select * from renamed
