with

source as not materialized (

    select * from {{ source('raw', 'gazetteer_regions') }}

),

renamed as (

    select
        upper(country_code) as country_code,
        region_key,
        admin1_code

    from source

)

select * from renamed
