with

source as not materialized (

    select * from {{ source('raw', 'patents') }}

),

renamed as (

    select
        'patents' as layer,
        application_id as document_id,
        inventor_seq as address_seq,
        publication_date,
        extract(year from publication_date)::integer as publication_year,
        'patent' as document_type,
        nullif(trim(city), '') as city,
        nullif(trim(postal_code), '') as postal_code,
        nullif(trim(region), '') as region,
        upper(trim(country)) as country,
        latitude,
        longitude,
        nullif(trim(applicant), '') as organization,
        nullif(trim(ipc), '') as ipc,
        source_file,
        source_line

    from source

)

select * from renamed
