-- The counted addresses' applicants (patents) and organizations (articles) as written, per layer
-- and final cluster (null: outside every cluster or not placed), with the exact sum of their
-- weights. One pass over the address rows; the spellings to normalise and the organization
-- profiles both read these few rows (a ';'-separated list stays one row here).
with

addresses as not materialized (

    select * from {{ ref('int_addresses_clustered') }}

),

final as (

    select
        layer,
        cluster_id,
        organization,
        {{ exact_sum('weight') }} as weight
    from addresses
    where organization is not null
    group by layer, cluster_id, organization

)

select * from final
