-- The fields of every counted document, each with the share of the document it gets: patents
-- by WIPO technology field (IPC symbols through the seed ipc_technology_fields), articles by
-- subject category. A document splits equally over its distinct fields; a document with no
-- field that can be read gets one row with a null field (unclassified), so that the shares of
-- every document sum to exactly 1.
with

inventors as not materialized (

    select * from {{ ref('stg_patents__inventors') }}

),

author_addresses as not materialized (

    select * from {{ ref('stg_publications__addresses') }}

),

concordance as not materialized (

    select * from {{ ref('ipc_technology_fields') }}

),

-- the distinct classification lists of every counted document (the rule of
-- int_addresses_weighted, macro is_counted), in one pass over the address rows; rows usually
-- repeat their document's list, so the lists are made distinct before they are split. A
-- counted document without a list keeps a null one (it stays unclassified).
classification_lists as (

    select distinct
        layer,
        document_id,
        ipc as classes
    from inventors
    where {{ is_counted() }}
    union all
    select distinct
        layer,
        document_id,
        subject as classes
    from author_addresses
    where {{ is_counted() }}

),

documents as (

    select distinct
        layer,
        document_id
    from classification_lists

),

-- every IPC symbol of every row of the document
ipc_symbols as (

    select distinct
        document_id,
        upper(regexp_replace(unnest(string_split(classes, ';')), '[\s-]', '', 'g')) as symbol
    from classification_lists
    where layer = 'patents' and classes is not null

),

-- "G06F 16/22", "G06F  16/22", "G06F-016/22" and "G06F16/22" all read as G06F, main group 16
ipc_parts as (

    select
        document_id,
        symbol,
        nullif(regexp_extract(symbol, '^([A-H][0-9]{2}[A-Z])', 1), '') as ipc_subclass,
        try_cast(nullif(regexp_extract(symbol, '^[A-H][0-9]{2}[A-Z]0*([0-9]{1,4})', 1), '') as integer)
            as main_group
    from ipc_symbols

),

-- a main-group row of the concordance (G01N 33 -> analysis of biological materials) wins over
-- its subclass row (G01N -> measurement)
ipc_matches as (

    select
        ipc_parts.document_id,
        ipc_parts.symbol,
        concordance.field_number,
        concordance.field_name,
        concordance.sector,
        row_number() over (
            partition by ipc_parts.document_id, ipc_parts.symbol
            order by concordance.main_group_from is null, concordance.main_group_from
        ) as match_rank
    from ipc_parts
    inner join concordance
        on
            ipc_parts.ipc_subclass = concordance.ipc_subclass
            and (
                concordance.main_group_from is null
                or ipc_parts.main_group between concordance.main_group_from and concordance.main_group_to
            )

),

patent_fields as (

    select distinct
        document_id,
        field_number,
        field_name,
        sector
    from ipc_matches
    where match_rank = 1

),

subject_fields as (

    select distinct
        document_id,
        nullif(trim(unnest(string_split(classes, ';'))), '') as field_name
    from classification_lists
    where layer = 'publications' and classes is not null

),

fields as (

    select
        'patents' as layer,
        document_id,
        field_number,
        field_name,
        sector
    from patent_fields
    union all
    select
        'publications' as layer,
        document_id,
        null as field_number,
        field_name,
        null as sector
    from subject_fields
    where field_name is not null

),

-- a document's number of fields (at least 1: an unclassified document keeps one null field), by
-- aggregate and join: cheaper at world scale than a window partitioned by document
field_counts as (

    select
        layer,
        document_id,
        count(*) as n_fields
    from fields
    group by layer, document_id

),

final as (

    select
        documents.layer,
        documents.document_id,
        fields.field_number,
        fields.field_name,
        fields.sector,
        1.0 / coalesce(field_counts.n_fields, 1) as field_share
    from documents
    left join fields
        on
            documents.layer = fields.layer
            and documents.document_id = fields.document_id
    left join field_counts
        on
            documents.layer = field_counts.layer
            and documents.document_id = field_counts.document_id

)

select * from final
