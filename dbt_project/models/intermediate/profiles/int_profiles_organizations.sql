-- Applicants (patents) and organizations (articles) per cluster, by fractional count. An address
-- listing several organizations separated by ';' splits its weight equally over them. Spellings
-- are counted together under normalize_organization(); each key is shown under its most
-- frequent spelling in the whole window (ties: alphabetical), so a name is the same everywhere.
with

-- the addresses' names as written, per cluster, with their exact weights
organizations as not materialized (

    select * from {{ ref('int_organizations_clustered') }}

),

-- the key of every spelling, normalised once per distinct spelling
spellings as not materialized (

    select * from {{ ref('int_organization_spellings') }}

),

-- Aggregated first (int_organizations_clustered): sums are linear, so splitting per distinct
-- (cluster, spelling) gives the same counts as splitting per address, on a few thousand rows
-- instead of tens of millions.
listed as (

    select
        layer,
        cluster_id,
        weight,
        string_split(organization, ';') as organizations
    from organizations

),

split as (

    select
        layer,
        cluster_id,
        weight / len(organizations) as weight,
        trim(unnest(organizations)) as organization
    from listed

),

keyed as (

    select
        split.layer,
        split.cluster_id,
        split.weight,
        split.organization,
        spellings.organization_key
    from split
    inner join spellings on split.organization = spellings.organization
    where spellings.organization_key is not null

),

spelling_counts as (

    select
        layer,
        organization_key,
        organization,
        {{ exact_sum('weight') }} as weight
    from keyed
    group by layer, organization_key, organization

),

display_names as (

    select
        layer,
        organization_key,
        organization as display_name,
        row_number() over (
            partition by layer, organization_key order by weight desc, organization asc
        ) as spelling_rank
    from spelling_counts

),

per_cluster as (

    select
        layer,
        cluster_id,
        organization_key,
        {{ exact_sum('weight') }} as organization_count
    from keyed
    where cluster_id is not null
    group by layer, cluster_id, organization_key

),

final as (

    select
        per_cluster.layer,
        per_cluster.cluster_id,
        per_cluster.organization_key,
        display_names.display_name as organization,
        per_cluster.organization_count
    from per_cluster
    inner join display_names
        on
            per_cluster.layer = display_names.layer
            and per_cluster.organization_key = display_names.organization_key
            and display_names.spelling_rank = 1

)

select * from final
