with

source as not materialized (

    select * from {{ source('raw', 'gazetteer_places') }}

),

-- wrong GeoNames entries, corrected (the seed's reason column says why; docs/geocoding.md)
corrections as not materialized (

    select * from {{ ref('gazetteer_corrections') }}

),

renamed as (

    select
        cast(source.geonameid as bigint) as geonameid,
        source.name,
        upper(source.country_code) as country_code,
        coalesce(corrections.admin1_code, nullif(source.admin1_code, '')) as admin1_code,
        cast(coalesce(corrections.latitude, source.latitude) as double) as latitude,
        cast(coalesce(corrections.longitude, source.longitude) as double) as longitude,
        cast(coalesce(source.population, 0) as bigint) as population

    from source
    left join corrections on cast(source.geonameid as bigint) = corrections.geonameid

)

select * from renamed
