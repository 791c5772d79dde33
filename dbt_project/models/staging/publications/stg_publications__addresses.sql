with

source as not materialized (

    select * from {{ source('raw', 'publications') }}

),

renamed as (

    select
        'publications' as layer,
        article_id as document_id,
        address_seq,
        publication_year,
        lower(trim(coalesce(document_type, ''))) as document_type,
        nullif(trim(city), '') as city,
        nullif(trim(postal_code), '') as postal_code,
        nullif(trim(region), '') as region,
        upper(trim(country)) as country,
        latitude,
        longitude,
        nullif(trim(organization), '') as organization,
        nullif(trim(subject), '') as subject,
        source_file,
        source_line

    from source

)

select * from renamed
