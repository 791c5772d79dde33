"""Geocoded worldwide first filings (de Rassenfosse, Kozak and Seliger, Scientific Data 2019)
-> canonical patents, in DuckDB.

Reads the inventor location table (``geoc_inv``, the authors' ``GEOC_INV``): one row per
inventor location of a first filing with ``appln_id`` (PATSTAT's), ``patent_office``,
``priority_date`` (or ``priority_year``), ``lat``, ``lng``, the GADM administrative names
``name_0`` (country) … ``name_5`` with their ``engtype_*``, ``coord_source``, ``source`` (1 = from
the filing itself, 2–6 = imputed from equivalents, subsequent filings or applicants) and
``type`` (priority, pct, continual, singleton), plus ``city`` (or ``city_googlegeon``) when given. The
delimiter (tab, pipe, comma, semicolon) is read from the header. The applicant table
(``geoc_app``) has the same columns and cannot be told apart: give only the inventor table.

These are first filings at any office, not PCT applications: like PatentsView, the source is a
stand-in, and the window follows the priority date (the date the source dates inventions by).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from stclusters.load.formats import tables
from stclusters.load.formats.base import ConversionReport, FormatError, check_layer, finish
from stclusters.reference.countries import country_code

FORMAT = "geopat"
SIGNATURE = ("appln_id", "lat", "lng")


def recognises(names: list[str]) -> bool:
    """True for the header of a geocoded location table (for ``format: auto``)."""
    cols = set(names)
    return set(SIGNATURE) <= cols and bool(cols & {"name_0", "coord_source", "ctry_code"})


def convert(paths: list[Path], layer: str, out_csv_gz: Path) -> ConversionReport:
    check_layer(FORMAT, layer, ("patents",))
    report = ConversionReport(FORMAT, layer, list(paths), out_csv_gz)
    for path in paths:
        names, _ = tables.header(path)
        if not recognises(names):
            raise FormatError(
                f"{path}: line 1: not a geocoded location table (needs {list(SIGNATURE)} and name_0; "
                f"header {names[:8]})"
            )
        if not {"priority_date", "priority_year"} & set(names):
            raise FormatError(
                f"{path}: line 1: no priority_date or priority_year column: the window needs a date"
            )
        if not {"name_0", "ctry_code"} & set(names):
            raise FormatError(f"{path}: line 1: no name_0 or ctry_code column: the country is required")
    with tables.join_database(out_csv_gz, FORMAT) as con:
        tables.register_countries(con)
        con.create_function("stc_country_code", country_code, ["VARCHAR"], "VARCHAR", null_handling="special")
        for index, path in enumerate(paths):
            name = f"locations_{index}"
            tables.load(con, name, path)
            rejected = tables.quarantine_rejects(con, name, path, report)
            report.records_read += len(rejected)
            _check(con, name)
            report.records_read += con.execute(f"select count(*) from checked_{name}").fetchone()[0]
            tables.quarantine_problems(con, f"checked_{name}", path, rejected, report)
        union = " union all by name ".join(
            f"select *, {i} as file_index from checked_{f'locations_{i}'}" for i in range(len(paths))
        )
        con.execute(f"create table checked as {union}")
        tables.write_canonical(con, _CANONICAL, layer, out_csv_gz, report)
    return finish(report)


def _check(con: duckdb.DuckDBPyConnection, name: str) -> None:
    names = con.sql(f"select * from raw_{name} limit 0").columns
    col = tables.column
    date = f"try_cast({col(names, 'priority_date')} as date)" if "priority_date" in names else "null::date"
    year = (
        f"try_cast({col(names, 'priority_year')} as integer)" if "priority_year" in names else "null::integer"
    )
    con.execute(
        f"""
        create table checked_{name} as
        with rows as (
            select
                rowid as row_index,
                {col(names, "appln_id")} as appln_id,
                {col(names, "priority_date")} as date_raw,
                coalesce({date}, make_date({year}, 1, 1)) as priority_date,
                coalesce({col(names, "city")}, {col(names, "city_googlegeon")}) as city,
                {col(names, "name_1")} as region,
                {col(names, "name_0")} as name_0,
                upper({col(names, "ctry_code")}) as ctry_code,
                {col(names, "lat")} as lat_raw,
                {col(names, "lng")} as lng_raw,
                try_cast({col(names, "lat")} as double) as latitude,
                try_cast({col(names, "lng")} as double) as longitude
            from raw_{name}
        ),
        countries as (
            -- the country name is looked up once per distinct spelling
            select name_0, stc_country_code(name_0) as code from (select distinct name_0 from rows)
        )
        select
            r.*,
            coalesce(r.ctry_code, c.code) as country,
            case
                when r.appln_id is null then 'appln_id|missing application id'
                when r.priority_date is null or year(r.priority_date) not between 1900 and 2100
                    then 'priority_date|unparseable date'
                when coalesce(r.ctry_code, c.code) is null
                    or coalesce(r.ctry_code, c.code) not in (select code from iso_countries)
                    then '{"ctry_code" if "ctry_code" in names else "name_0"}|unknown country'
                when r.lat_raw is not null and coalesce(r.latitude not between -90 and 90, true)
                    then 'lat|not a number in [-90, 90]'
                when r.lng_raw is not null and coalesce(r.longitude not between -180 and 180, true)
                    then 'lng|not a number in [-180, 180]'
                when (r.lat_raw is null) <> (r.lng_raw is null) then 'lat|one coordinate of two'
            end as problem,
            concat_ws(' ', r.appln_id, r.date_raw, r.name_0, r.ctry_code, r.lat_raw, r.lng_raw) as value
        from rows r
        left join countries c on c.name_0 is not distinct from r.name_0
        """
    )


_CANONICAL = """
    select
        appln_id as application_id,
        strftime(min(priority_date) over (partition by appln_id), '%Y-%m-%d') as publication_date,
        row_number() over (partition by appln_id order by file_index, row_index) as inventor_seq,
        city,
        null::varchar as postal_code,
        region,
        country,
        latitude,
        longitude,
        null::varchar as applicant,
        null::varchar as ipc
    from checked
    where problem is null
    order by try_cast(appln_id as bigint), appln_id, inventor_seq
"""
