"""OECD REGPAT (pipe-delimited ``.txt`` tables) -> canonical patents, joined in DuckDB.

Needed: the PCT inventors table (``…_PCT_Inv_reg.txt``: ``appln_id``, ``pct_nbr``, ``person_id``,
``inv_name``, ``address``, ``city``, ``postal_code``, ``reg_code``, ``ctry_code``, ``reg_share``,
``ctry_share``, ``inv_share``) and the PCT IPC table (``…_PCT_IPC.txt``: ``appln_id``,
``prio_year``, ``app_year``, ``ipc``), which gives each application its year. Optional: the PCT
applicants table (``…_PCT_App_reg.txt``, ``app_name``) for the applicant. Tables are recognised
by their header (any case), not their file name. REGPAT's EPO tables (``app_nbr``, no
``pct_nbr``) are refused: the method counts PCT applications.

REGPAT lists an inventor once per region their address falls in, with ``reg_share`` the share of
each region (1 when the address is in one region): those rows are merged back into one inventor
(the row with the largest share; its region code). Dates: REGPAT gives years only, so the window
follows the international filing year ``app_year`` (``publication_date`` = ``app_year-01-01``).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from stclusters.load.formats import tables
from stclusters.load.formats.base import ConversionReport, FormatError, check_layer, finish

FORMAT = "regpat"


def table_of(names: list[str] | set[str]) -> str | None:
    cols = set(names)
    if {"appln_id", "ctry_code"} <= cols and cols & {"inv_name", "inv_share"}:
        return "inventor"
    if {"appln_id", "ctry_code"} <= cols and cols & {"app_name", "app_share"}:
        return "applicant"
    if {"appln_id", "ipc", "app_year"} <= cols:
        return "ipc"
    return None


def recognises(names: list[str]) -> bool:
    """True for a header of one of REGPAT's tables (for ``format: auto``)."""
    return table_of(names) is not None


def convert(paths: list[Path], layer: str, out_csv_gz: Path) -> ConversionReport:
    check_layer(FORMAT, layer, ("patents",))
    report = ConversionReport(FORMAT, layer, list(paths), out_csv_gz)
    found: dict[str, Path] = {}
    for name, (path, names) in tables.identify(
        paths, table_of, "REGPAT", "PCT inventor, applicant or IPC table"
    ).items():
        if name in ("inventor", "applicant") and "pct_nbr" not in names:
            raise FormatError(
                f"{path}: line 1: a REGPAT EPO table (no pct_nbr column): the method counts PCT "
                "applications: give the PCT tables (…_PCT_Inv_reg.txt, …_PCT_IPC.txt)"
            )
        found[name] = path
    for needed, example in (("inventor", "PCT_Inv_reg"), ("ipc", "PCT_IPC")):
        if needed not in found:
            raise FormatError(
                f"REGPAT {needed} table missing (…_{example}.txt); given: {[str(p) for p in paths]}"
            )
    with tables.join_database(out_csv_gz, FORMAT) as con:
        tables.register_countries(con)
        tables.register_address_parser(con)
        for name, path in found.items():
            tables.load(con, name, path)
        rejected = tables.quarantine_rejects(con, "inventor", found["inventor"], report)
        for name in ("ipc", "applicant"):
            if name in found:
                tables.quarantine_rejects(con, name, found[name], report)
        report.records_read += len(rejected)
        _check(con, "applicant" in found)
        report.records_read += con.execute("select count(*) from checked").fetchone()[0]
        tables.quarantine_problems(con, "checked", found["inventor"], rejected, report)
        _merge(con, report)
        tables.write_canonical(con, _CANONICAL, layer, out_csv_gz, report)
    return finish(report)


def _check(con: duckdb.DuckDBPyConnection, has_applicants: bool) -> None:
    inv = con.sql("select * from raw_inventor limit 0").columns
    col = tables.column
    con.execute(
        """
        create table years as
        select
            nullif(trim(appln_id), '') as appln_id,
            min(try_cast(trim(app_year) as integer)) as app_year,
            min(app_year) as app_year_raw
        from raw_ipc
        group by 1
        """
    )
    con.execute(
        """
        create table ipc_codes as
        with symbols as (
            -- REGPAT pads IPC symbols with spaces ("A61K  31/00"): one space, as the canonical writes them
            select
                nullif(trim(appln_id), '') as appln_id,
                regexp_replace(trim(ipc), '\\s+', ' ', 'g') as symbol,
                min(rowid) as first_row
            from raw_ipc
            where nullif(trim(ipc), '') is not null
            group by all
        )
        select appln_id, string_agg(symbol, ';' order by first_row) as ipc from symbols group by appln_id
        """
    )
    applicants = (
        """select nullif(trim(appln_id), '') as appln_id,
                  arg_min(nullif(trim(app_name), ''), rowid) as applicant
           from raw_applicant where nullif(trim(app_name), '') is not null group by 1"""
        if has_applicants
        else "select null::varchar as appln_id, null::varchar as applicant where false"
    )
    con.execute(f"create table applicants as {applicants}")
    con.execute(
        f"""
        create table checked as
        with inventors as (
            select
                i.rowid as row_index,
                {col(inv, "appln_id", "i")} as appln_id,
                upper(replace({col(inv, "pct_nbr", "i")}, ' ', '')) as pct_nbr,
                {col(inv, "person_id", "i")} as person_id,
                {col(inv, "address", "i")} as address,
                {col(inv, "city", "i")} as city_given,
                {col(inv, "postal_code", "i")} as postal_code_given,
                {col(inv, "reg_code", "i")} as reg_code,
                upper({col(inv, "ctry_code", "i")}) as ctry_code,
                {col(inv, "reg_share", "i")} as reg_share_raw,
                try_cast({col(inv, "reg_share", "i")} as double) as reg_share
            from raw_inventor i
        )
        select
            inv.*,
            y.app_year,
            case
                when inv.appln_id is null then 'appln_id|missing application id'
                when inv.pct_nbr is null then 'pct_nbr|missing PCT number'
                when y.appln_id is null then 'appln_id|application not in the IPC table (it gives the year)'
                when coalesce(y.app_year not between 1978 and 2100, true) then 'app_year|unparseable year'
                when inv.ctry_code is null or inv.ctry_code not in (select code from iso_countries)
                    then 'ctry_code|unknown country'
                when inv.reg_share_raw is not null and coalesce(inv.reg_share not between 1e-9 and 1, true)
                    then 'reg_share|not a share in (0, 1]'
            end as problem,
            concat_ws(
                ' ', inv.appln_id, inv.pct_nbr, 'person ' || inv.person_id, inv.ctry_code, y.app_year_raw
            ) as value
        from inventors inv
        left join years y on y.appln_id = inv.appln_id
        """
    )


def _merge(con: duckdb.DuckDBPyConnection, report: ConversionReport) -> None:
    # One inventor per (PCT application, person): REGPAT's region split rows back into one.
    con.execute(
        """
        create table inventors as
        with ranked as (
            select
                *,
                coalesce(person_id, 'row ' || row_index) as person_key,
                row_number() over (
                    partition by pct_nbr, coalesce(person_id, 'row ' || row_index)
                    order by reg_share desc nulls first, row_index
                ) as rank_in_person,
                min(row_index) over (
                    partition by pct_nbr, coalesce(person_id, 'row ' || row_index)
                ) as first_row
            from checked
            where problem is null
        )
        select
            r.*,
            dense_rank() over (partition by r.pct_nbr order by r.first_row) as inventor_seq,
            stc_address_parts(r.address) as parsed,
            a.applicant,
            ipc.ipc
        from ranked r
        left join applicants a on a.appln_id = r.appln_id
        left join ipc_codes ipc on ipc.appln_id = r.appln_id
        where r.rank_in_person = 1
        """
    )
    split = (
        con.execute("select count(*) from checked where problem is null").fetchone()[0]
        - con.execute("select count(*) from inventors").fetchone()[0]
    )
    if split:
        report.excluded["inventor's further regions (rows merged by reg_share)"] += split


_CANONICAL = """
    select
        pct_nbr as application_id,
        printf('%04d-01-01', app_year) as publication_date,
        inventor_seq,
        coalesce(city_given, parsed[1]) as city,
        coalesce(postal_code_given, case when city_given is null then parsed[2] end) as postal_code,
        reg_code as region,
        ctry_code as country,
        null::double as latitude,
        null::double as longitude,
        applicant,
        ipc
    from inventors
    order by pct_nbr, inventor_seq
"""
