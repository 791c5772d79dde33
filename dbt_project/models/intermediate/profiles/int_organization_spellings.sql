-- sqlfluff:max_parse_depth:2000
-- (normalize_organization() nests some 25 function calls, deeper than sqlfluff parses by default)
-- Every distinct spelling of an applicant (patents) or organization (articles) of the counted
-- addresses, one name per ';'-separated part, with its key under normalize_organization()
-- (docs/profiles.md). The normalisation runs once per distinct spelling. The names are read
-- from int_organizations_clustered (names as written per cluster), not from the address rows.
with

organizations as not materialized (

    select * from {{ ref('int_organizations_clustered') }}

),

listed as (

    select distinct organization
    from organizations

),

split as (

    select distinct trim(unnest(string_split(organization, ';'))) as organization
    from listed

),

final as (

    select
        organization,
        {{ normalize_organization('organization') }} as organization_key
    from split

)

select * from final
