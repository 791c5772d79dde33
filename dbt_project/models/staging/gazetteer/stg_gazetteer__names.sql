with

source as not materialized (

    select * from {{ source('raw', 'gazetteer_names') }}

),

renamed as (

    select
        name_key,
        cast(geonameid as bigint) as geonameid,
        cast(is_main_name as boolean) as is_main_name

    from source

)

select * from renamed
