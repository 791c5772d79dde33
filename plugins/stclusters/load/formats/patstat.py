"""PATSTAT extracts (CSV exports of its tables) -> canonical patents, joined in DuckDB.

Needed: ``tls201_appln`` (``appln_id``, ``appln_auth``, ``appln_nr``, ``appln_kind``,
``receiving_office``, ``earliest_publn_date``), ``tls206_person`` (``person_id``,
``person_name``, ``person_address``, ``person_ctry_code``, optional ``nuts``, ``psn_id``,
``psn_name``) and ``tls207_pers_appln`` (``person_id``, ``appln_id``, ``applt_seq_nr``,
``invt_seq_nr``). Optional: ``tls209_appln_ipc`` (``appln_id``, ``ipc_class_symbol``,
``ipc_position``). Tables are recognised by their header (any case), not their file name.

The method counts PCT applications: the documents are the international applications
(``appln_kind`` = 'W', which PATSTAT files under ``appln_auth`` 'WO'), dated by their
international publication (``earliest_publn_date``; 9999-12-31 = not published, excluded).
National and regional phase entries of the same invention (``internat_appln_id`` > 0) are not
counted again. Inventors are the ``tls207`` rows with ``invt_seq_nr`` > 0; a person listed twice
on one application (the same ``invt_seq_nr`` under two person ids, e.g. a name in two scripts,
or the same ``psn_id`` at two sequence numbers) is one inventor.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from stclusters.load.formats import tables
from stclusters.load.formats.base import ConversionReport, FormatError, check_layer, finish

FORMAT = "patstat"
TABLES: dict[str, tuple[str, ...]] = {
    "appln": ("appln_id", "appln_kind", "earliest_publn_date"),
    "pers_appln": ("person_id", "appln_id", "invt_seq_nr"),
    "person": ("person_id", "person_ctry_code"),
    "ipc": ("appln_id", "ipc_class_symbol"),
}
REQUIRED = {"appln": "tls201_appln", "person": "tls206_person", "pers_appln": "tls207_pers_appln"}


def table_of(names: list[str] | set[str]) -> str | None:
    cols = set(names)
    for name, signature in TABLES.items():
        if set(signature) <= cols:
            return name
    return None


def recognises(names: list[str]) -> bool:
    """True for a header of one of the PATSTAT tables this adapter reads (for ``format: auto``)."""
    return table_of(names) is not None


def convert(paths: list[Path], layer: str, out_csv_gz: Path) -> ConversionReport:
    check_layer(FORMAT, layer, ("patents",))
    report = ConversionReport(FORMAT, layer, list(paths), out_csv_gz)
    found = {
        name: path
        for name, (path, _) in tables.identify(
            paths, table_of, "PATSTAT", "tls201/tls206/tls207/tls209 export"
        ).items()
    }
    missing = [table for name, table in REQUIRED.items() if name not in found]
    if missing:
        raise FormatError(f"PATSTAT tables missing: {missing} (given: {[str(p) for p in paths]})")
    with tables.join_database(out_csv_gz, FORMAT) as con:
        tables.register_countries(con)
        tables.register_address_parser(con)
        for name, path in found.items():
            tables.load(con, name, path)
        rejected = {name: tables.quarantine_rejects(con, name, path, report) for name, path in found.items()}
        _select_applications(con, report)
        tables.quarantine_problems(con, "applications", found["appln"], rejected["appln"], report)
        _inventors(con, "ipc" in found, report)
        report.records_read += len(rejected["pers_appln"])
        tables.quarantine_problems(con, "inventors", found["pers_appln"], rejected["pers_appln"], report)
        tables.write_canonical(con, _CANONICAL, layer, out_csv_gz, report)
    return finish(report)


def _select_applications(con: duckdb.DuckDBPyConnection, report: ConversionReport) -> None:
    names = con.sql("select * from raw_appln limit 0").columns
    col = tables.column
    con.execute(
        f"""
        create table applications as
        with appln as (
            select
                rowid as row_index,
                {col(names, "appln_id")} as appln_id,
                upper({col(names, "appln_kind")}) as appln_kind,
                coalesce(upper({col(names, "appln_auth")}), 'WO') as appln_auth,
                {col(names, "appln_nr")} as appln_nr,
                {col(names, "earliest_publn_date")} as publn_raw,
                try_cast({col(names, "earliest_publn_date")} as date) as publn_date
            from raw_appln
        ),
        pct as (
            select
                *,
                case
                    when appln_id is null then 'appln_id|missing application id'
                    when appln_kind <> 'W' then null
                    when publn_raw is null or publn_date is null then 'earliest_publn_date|unparseable date'
                end as problem,
                case
                    when appln_kind is distinct from 'W'
                        then 'not a PCT international application (appln_kind not W)'
                    when year(publn_date) = 9999
                        then 'PCT application not published (earliest_publn_date 9999-12-31)'
                end as excluded,
                concat_ws(' ', appln_id, appln_kind, publn_raw) as value,
                appln_auth || coalesce(appln_nr, 'appln_id ' || appln_id) as number
            from appln
        )
        select
            *,
            -- PATSTAT's alternate key adds the receiving office: a number shared by two
            -- applications keeps them apart with the appln_id
            case when count(*) over (partition by number) > 1 then number || '/' || appln_id else number end
                as application_id
        from pct
        """
    )
    for reason, n in con.execute(
        """select excluded, count(*) from applications
           where problem is null and excluded is not null group by 1"""
    ).fetchall():
        report.excluded[reason] += n
    report.records_read += con.execute(
        "select count(*) from applications where problem is not null"
    ).fetchone()[0]
    con.execute(
        """create table counted as
           select distinct on (appln_id) appln_id, application_id, publn_date
           from applications where problem is null and excluded is null order by appln_id, row_index"""
    )


def _inventors(con: duckdb.DuckDBPyConnection, has_ipc: bool, report: ConversionReport) -> None:
    links = con.sql("select * from raw_pers_appln limit 0").columns
    people = con.sql("select * from raw_person limit 0").columns
    col = tables.column
    con.execute(
        f"""
        create table people as
        select distinct on (person_id)
            {col(people, "person_id")} as person_id,
            {col(people, "person_name")} as person_name,
            {col(people, "psn_name")} as psn_name,
            nullif({col(people, "psn_id")}, '0') as psn_id,
            {col(people, "person_address")} as person_address,
            upper({col(people, "person_ctry_code")}) as ctry_raw,
            -- 'ZZ' ends PATSTAT's placeholder NUTS codes (region unknown)
            case when not {col(people, "nuts")} like '%ZZ' then {col(people, "nuts")} end as nuts
        from raw_person
        order by person_id, rowid
        """
    )
    con.execute(
        f"""
        create table links as
        select
            l.rowid as row_index,
            {col(links, "person_id", "l")} as person_id,
            {col(links, "appln_id", "l")} as appln_id,
            {col(links, "invt_seq_nr", "l")} as invt_raw,
            try_cast({col(links, "invt_seq_nr", "l")} as integer) as invt_seq,
            try_cast({col(links, "applt_seq_nr", "l")} as integer) as applt_seq
        from raw_pers_appln l
        """
    )
    con.execute(
        """
        create table candidates as
        select
            l.*,
            c.application_id,
            c.publn_date,
            p.person_id is not null as person_known,
            p.person_name, p.psn_name, p.psn_id, p.person_address, p.ctry_raw, p.nuts,
            p.ctry_raw in (select code from iso_countries) as country_known
        from links l
        join counted c on c.appln_id = l.appln_id
        left join people p on p.person_id = l.person_id
        where l.invt_seq is null or l.invt_seq > 0
        """
    )
    report.records_read += con.execute("select count(*) from candidates").fetchone()[0]
    # One inventor per sequence number, then per PATSTAT person (psn_id): the better-described
    # record of a duplicated person wins (known country, then an address, then the file order).
    con.execute(
        """
        create table by_sequence as
        select * from (
            select *, row_number() over (
                partition by appln_id, invt_seq
                order by person_known desc, country_known desc, person_address is null, row_index
            ) as rank_in_seq
            from candidates where invt_seq is not null
        ) where rank_in_seq = 1
        """
    )
    con.execute(
        """
        create table deduplicated as
        select * from (
            select *, row_number() over (
                partition by appln_id, coalesce(psn_id, 'row ' || row_index)
                order by person_known desc, country_known desc, invt_seq, row_index
            ) as rank_in_person
            from by_sequence
        ) where rank_in_person = 1
        """
    )
    n_candidates, n_seq, n_dedup = con.execute(
        """select (select count(*) from candidates where invt_seq is not null),
                  (select count(*) from by_sequence), (select count(*) from deduplicated)"""
    ).fetchone()
    if n_candidates - n_seq:
        report.excluded["same inventor twice (same invt_seq_nr)"] += n_candidates - n_seq
    if n_seq - n_dedup:
        report.excluded["same person twice (same psn_id)"] += n_seq - n_dedup
    ipc = (
        """select trim(appln_id) as appln_id,
                  string_agg(symbol, ';' order by is_first desc, first_row) as ipc
           from (
               select trim(appln_id) as appln_id,
                      regexp_replace(trim(ipc_class_symbol), '\\s+', ' ', 'g') as symbol,
                      bool_or(trim(coalesce(ipc_position, '')) = 'F') as is_first,
                      min(rowid) as first_row
               from raw_ipc where nullif(trim(ipc_class_symbol), '') is not null group by all
           ) group by 1"""
        if has_ipc
        else "select null::varchar as appln_id, null::varchar as ipc where false"
    )
    if has_ipc and "ipc_position" not in con.sql("select * from raw_ipc limit 0").columns:
        ipc = ipc.replace("trim(coalesce(ipc_position, ''))", "''")
    con.execute(
        f"""
        create table inventors as
        with applicants as (
            select l.appln_id, arg_min(
                coalesce(p.psn_name, p.person_name), struct_pack(seq := l.applt_seq, row := l.row_index)
            ) as applicant
            from links l join people p on p.person_id = l.person_id
            where l.applt_seq > 0 and l.appln_id in (select appln_id from counted)
            group by l.appln_id
        ),
        ipc as ({ipc}),
        kept as (
            select * from deduplicated
            union all by name
            select * from candidates where invt_seq is null
        )
        select
            k.*,
            a.applicant,
            i.ipc,
            stc_address_parts(k.person_address) as parsed,
            case
                when k.invt_seq is null then 'invt_seq_nr|not an integer'
                when not k.person_known then 'person_id|person not in tls206_person'
                when k.ctry_raw is null then 'person_ctry_code|no country (empty)'
                when k.ctry_raw = '--' then 'person_ctry_code|no country (''--'')'
                when not k.country_known then 'person_ctry_code|unknown country'
            end as problem,
            concat_ws(
                ' ', k.application_id, 'person ' || k.person_id, 'invt_seq_nr ' || k.invt_raw, k.ctry_raw
            ) as value
        from kept k
        left join applicants a on a.appln_id = k.appln_id
        left join ipc i on i.appln_id = k.appln_id
        """
    )
    without = con.execute(
        "select count(*) from counted where appln_id not in (select appln_id from candidates)"
    ).fetchone()[0]
    if without:
        report.excluded["PCT application without inventors in tls207"] += without


_CANONICAL = """
    select
        application_id,
        strftime(publn_date, '%Y-%m-%d') as publication_date,
        row_number() over (partition by application_id order by invt_seq, row_index) as inventor_seq,
        parsed[1] as city,
        parsed[2] as postal_code,
        coalesce(parsed[3], nuts) as region,
        ctry_raw as country,
        null::double as latitude,
        null::double as longitude,
        applicant,
        ipc
    from inventors
    where problem is null
    order by application_id, inventor_seq
"""
