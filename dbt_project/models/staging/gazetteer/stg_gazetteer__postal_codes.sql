with

source as not materialized (

    select * from {{ source('raw', 'gazetteer_postal_codes') }}

),

renamed as (

    select
        upper(country_code) as country_code,
        postal_key,
        cast(latitude as double) as latitude,
        cast(longitude as double) as longitude,
        cast(geonameid as bigint) as geonameid

    from source

)

select * from renamed
