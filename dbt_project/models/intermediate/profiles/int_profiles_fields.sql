-- The fields of every counted document, each with the share of the document it gets: patents
-- by WIPO technology field (IPC symbols through the seed ipc_technology_fields), articles by
-- subject category. A document splits equally over its distinct fields; a document with no
-- field that can be read gets one row with a null field (unclassified), so that the shares of
-- every document sum to exactly 1.
--
-- Everything after the first grouping works on documents, not address rows: one grouping per
-- layer reads the rows once, and fields are read once per distinct classification list (a few
-- thousand in an edition), not once per document.
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

{% for layer, rows, classes in [
    ('patents', 'inventors', 'ipc'), ('publications', 'author_addresses', 'subject')
] %}
    -- the rows of the layer's counted documents (the rule of int_addresses_weighted, macro
    -- is_counted), each list with its hash
    counted_{{ layer }} as not materialized (

        select
            layer,
            document_id,
            {{ classes }} as classes,
            case when {{ classes }} is not null then hash({{ classes }}) end as list_hash
        from {{ rows }}
        where {{ is_counted() }}

    ),

    -- one row per counted document with the hash of its list, in one grouping over integers
    -- (a text min() per document costs three times as much): rows usually repeat their
    -- document's list; a document read with several lists is flagged and gets all of them
    -- below. A counted document without a list keeps a null one (it stays unclassified).
    documents_{{ layer }} as (

        select
            layer,
            document_id,
            min(list_hash) as list_hash,
            min(list_hash) <> max(list_hash) as several_lists
        from counted_{{ layer }}
        group by layer, document_id

    ),

    -- the distinct lists of the layer with their hash (a few thousand in a real edition)
    distinct_lists_{{ layer }} as (

        select distinct
            list_hash,
            classes
        from counted_{{ layer }}
        where list_hash is not null

    ),

    -- the documents read with several lists: their distinct lists joined by ';', whose symbols
    -- are the union of theirs, under the hash of the joined text (none in the usual edition:
    -- the semi-join's side is then empty)
    several_lists_{{ layer }} as (

        select
            layer,
            document_id,
            hash(classes) as list_hash,
            classes
        from (
            select
                layer,
                document_id,
                string_agg(classes, ';' order by classes) as classes
            from (
                select distinct
                    counted.layer,
                    counted.document_id,
                    counted.classes
                from counted_{{ layer }} as counted
                semi join documents_{{ layer }} as flagged
                    on
                        counted.document_id = flagged.document_id
                        and flagged.several_lists
                where counted.list_hash is not null
            ) as distinct_lists
            group by layer, document_id
        ) as joined_lists

    ),

    -- every counted document with the hash of the list its fields are read from
    document_lists_{{ layer }} as (

        select
            layer,
            document_id,
            list_hash
        from documents_{{ layer }}
        where several_lists is not true
        union all
        select
            layer,
            document_id,
            list_hash
        from several_lists_{{ layer }}

    ),

    -- every list to read, once: the distinct lists and the joined ones
    lists_{{ layer }} as (

        select
            list_hash,
            classes
        from distinct_lists_{{ layer }}
        union
        select
            list_hash,
            classes
        from several_lists_{{ layer }}

    ),

{% endfor %}
-- every IPC symbol of every list
ipc_symbols as (

    select distinct
        list_hash,
        upper(regexp_replace(unnest(string_split(classes, ';')), '[\s-]', '', 'g')) as symbol
    from lists_patents

),

-- "G06F 16/22", "G06F  16/22", "G06F-016/22" and "G06F16/22" all read as G06F, main group 16
ipc_parts as (

    select
        list_hash,
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
        ipc_parts.list_hash,
        ipc_parts.symbol,
        concordance.field_number,
        concordance.field_name,
        concordance.sector,
        row_number() over (
            partition by ipc_parts.list_hash, ipc_parts.symbol
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

-- the distinct fields of every list, each with its share of the list (1 / number of fields)
patent_list_fields as (

    select
        list_hash,
        field_number,
        field_name,
        sector,
        1.0 / count(*) over (partition by list_hash) as field_share
    from (
        select distinct
            list_hash,
            field_number,
            field_name,
            sector
        from ipc_matches
        where match_rank = 1
    ) as list_fields

),

-- a list that names no known field leaves its documents unclassified: one row, share 1
patents_final as (

    select
        document_lists.layer,
        document_lists.document_id,
        list_fields.field_number,
        list_fields.field_name,
        list_fields.sector,
        coalesce(list_fields.field_share, 1.0) as field_share
    from document_lists_patents as document_lists
    left join patent_list_fields as list_fields
        on document_lists.list_hash = list_fields.list_hash

),

-- the distinct subjects of every list (list_distinct drops the empty ones, made null), with
-- the share each gets
subject_list_fields as (

    select
        list_hash,
        unnest(subjects) as field_name,
        1.0 / len(subjects) as field_share
    from (
        select
            list_hash,
            list_distinct(
                list_transform(string_split(classes, ';'), lambda subject: nullif(trim(subject), ''))
            ) as subjects
        from lists_publications
    ) as list_subjects
    where len(subjects) > 0

),

publications_final as (

    select
        document_lists.layer,
        document_lists.document_id,
        null as field_number,
        list_fields.field_name,
        null as sector,
        coalesce(list_fields.field_share, 1.0) as field_share
    from document_lists_publications as document_lists
    left join subject_list_fields as list_fields
        on document_lists.list_hash = list_fields.list_hash

),

-- with the document's key (macro document_key), which the profiles join on
final as (

    select
        *,
        {{ document_key() }} as document_key
    from (
        select * from patents_final
        union all
        select * from publications_final
    ) as document_fields

)

select * from final
