"""PatentsView bulk tables (tab-separated ``g_*.tsv``) -> canonical patents, joined in DuckDB.

Needed: an inventor table (``g_inventor_disambiguated`` or ``g_inventor_not_disambiguated``),
``g_location_disambiguated`` and ``g_patent``. Optional: ``g_assignee_disambiguated`` (applicant),
``g_ipc_at_issue`` (IPC), ``g_location_not_disambiguated`` (when the inventor table carries
``rawlocation_id``). Tables are recognised by their header, not their file name. The joins run
in a DuckDB database file beside the output so they spill to disk instead of filling memory.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import duckdb

from stclusters.load.formats.base import (
    ConversionReport,
    FormatError,
    canonical_output,
    capped_readline,
    check_layer,
    finish,
    open_text,
)
from stclusters.load.formats.tables import line_of, quarantine_rejects

log = logging.getLogger(__name__)

FORMAT = "patentsview"
# Table name -> columns that identify it in a header.
TABLES: dict[str, tuple[str, ...]] = {
    "inventor": ("patent_id", "inventor_sequence"),
    "location": ("location_id", "disambig_city", "disambig_country"),
    "rawlocation": ("rawlocation_id", "location_id"),
    "patent": ("patent_id", "patent_date"),
    "assignee": ("patent_id", "assignee_sequence"),
    "ipc": ("patent_id", "ipc_sequence", "section"),
    "application": ("application_id", "patent_id", "filing_date"),
}
REQUIRED = ("inventor", "location", "patent")
BATCH = 50_000


def header(path: Path) -> list[str]:
    with open_text(path) as fh:
        line = capped_readline(fh, path, 1, "header line")
        return [h.strip().strip('"') for h in line.lstrip("\ufeff").rstrip("\r\n").split("\t")]


def table_of(path: Path) -> str:
    cols = set(header(path))
    # The most specific signature wins: g_location_not_disambiguated also has location_id.
    for name in ("ipc", "assignee", "inventor", "rawlocation", "location", "application", "patent"):
        if set(TABLES[name]) <= cols:
            return name
    raise FormatError(f"{path}: line 1: not a known PatentsView table (header {sorted(cols)[:8]})")


def _read_csv(path: Path, table: str) -> str:
    # all_varchar: ids like "D900000" and zero-padded codes must stay text.
    return (
        f"read_csv('{_sql_str(path)}', delim='\\t', header=true, quote='\"', all_varchar=true, "
        f"store_rejects=true, rejects_table='rejects_{table}', rejects_scan='scan_{table}')"
    )


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")


def convert(paths: list[Path], layer: str, out_csv_gz: Path) -> ConversionReport:
    check_layer(FORMAT, layer, ("patents",))
    report = ConversionReport(FORMAT, layer, list(paths), out_csv_gz)
    tables: dict[str, Path] = {}
    for path in paths:
        name = table_of(path)
        if name in tables:
            raise FormatError(f"{path}: a second {name} table (first: {tables[name]}); give one of each")
        tables[name] = path
    missing = [t for t in REQUIRED if t not in tables]
    if missing:
        raise FormatError(f"PatentsView tables missing: {missing} (given: {[str(p) for p in paths]})")
    if "location_id" not in header(tables["inventor"]) and "rawlocation" not in tables:
        raise FormatError(f"{tables['inventor']}: has rawlocation_id: add g_location_not_disambiguated.tsv")
    out_csv_gz.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_csv_gz.parent, prefix=".patentsview-") as tmp:
        con = duckdb.connect(str(Path(tmp) / "join.duckdb"))
        try:
            con.execute("set preserve_insertion_order = true")
            _load(con, tables)
            _quarantine_rejects(con, tables, report)
            _join(con, tables)
            _quarantine_unjoinable(con, tables["inventor"], report)
            _write(con, layer, out_csv_gz, report)
        finally:
            con.close()
    return finish(report)


def _load(con: duckdb.DuckDBPyConnection, tables: dict[str, Path]) -> None:
    for name, path in tables.items():
        # The table's rowid follows file order (insertion order is preserved): it gives line numbers.
        con.execute(f"create table raw_{name} as select * from {_read_csv(path, name)}")
        n = con.execute(f"select count(*) from raw_{name}").fetchone()[0]
        log.info("%s: %d rows read as PatentsView %s", path, n, name)


def _quarantine_rejects(
    con: duckdb.DuckDBPyConnection, tables: dict[str, Path], report: ConversionReport
) -> None:
    for name, path in tables.items():
        rejected = quarantine_rejects(con, name, path, report)
        if name == "inventor":
            report.records_read += len(rejected)


def _join(con: duckdb.DuckDBPyConnection, tables: dict[str, Path]) -> None:
    has_raw = "location_id" not in con.sql("select * from raw_inventor limit 0").columns
    raw_join = (
        """left join (select distinct on (rawlocation_id) rawlocation_id, location_id from raw_rawlocation) r
               on r.rawlocation_id = i.rawlocation_id"""
        if has_raw
        else ""
    )
    con.execute(
        f"""
        create table inventors as
        select
            i.rowid as row_index,
            nullif(trim(i.patent_id), '') as patent_id,
            try_cast(i.inventor_sequence as integer) as inventor_sequence,
            i.inventor_sequence as inventor_sequence_raw,
            nullif(trim({"r" if has_raw else "i"}.location_id), '') as location_id
        from raw_inventor i
        {raw_join}
        """
    )
    ipc = (
        """, ipc_symbols as (
            select
                patent_id,
                section || ipc_class || subclass || ' ' || main_group || '/' || subgroup as symbol,
                min(try_cast(ipc_sequence as integer)) as first_sequence
            from raw_ipc
            where section is not null and main_group is not null
            group by all
        ), ipc as (
            -- the first listed (main) classification first, as PatentsView orders them
            select patent_id, string_agg(symbol, ';' order by first_sequence, symbol) as ipc
            from ipc_symbols
            group by patent_id
        )"""
        if "ipc" in tables
        else ", ipc as (select null::varchar as patent_id, null::varchar as ipc where false)"
    )
    applicants = (
        """, applicants as (
            select patent_id,
                arg_min(coalesce(nullif(disambig_assignee_organization, ''),
                        trim(coalesce(disambig_assignee_individual_name_first, '') || ' ' ||
                             coalesce(disambig_assignee_individual_name_last, ''))),
                        try_cast(assignee_sequence as integer)) as applicant
            from raw_assignee group by patent_id
        )"""
        if "assignee" in tables
        else ", applicants as (select null::varchar as patent_id, null::varchar as applicant where false)"
    )
    con.execute(
        f"""
        create table joined as
        with patents as (
            select patent_id, min(try_cast(patent_date as date)) as patent_date
            from raw_patent group by patent_id
        ){ipc}{applicants}
        select
            inv.row_index,
            inv.patent_id,
            inv.inventor_sequence,
            inv.inventor_sequence_raw,
            inv.location_id,
            p.patent_id is not null as patent_known,
            p.patent_date,
            l.location_id is not null as location_known,
            nullif(trim(l.disambig_city), '') as city,
            nullif(trim(l.disambig_state), '') as region,
            upper(trim(l.disambig_country)) as country,
            try_cast(l.latitude as double) as latitude,
            try_cast(l.longitude as double) as longitude,
            a.applicant,
            ipc.ipc,
            case
                when inv.patent_id is null then 'patent_id|missing patent id'
                when inv.inventor_sequence is null then 'inventor_sequence|not an integer'
                when p.patent_id is null then 'patent_id|patent not in g_patent'
                when p.patent_date is null then 'patent_date|unparseable date'
                when inv.location_id is null then 'location_id|missing location id'
                when l.location_id is null then 'location_id|location not in g_location_disambiguated'
                when not regexp_matches(coalesce(upper(trim(l.disambig_country)), ''), '^[A-Z]{{2}}$')
                    then 'disambig_country|unknown country'
            end as problem
        from inventors inv
        left join patents p on p.patent_id = inv.patent_id
        left join (select distinct on (location_id) * from raw_location) l on l.location_id = inv.location_id
        left join applicants a on a.patent_id = inv.patent_id
        left join ipc on ipc.patent_id = inv.patent_id
        """
    )


def _quarantine_unjoinable(
    con: duckdb.DuckDBPyConnection, inventor_path: Path, report: ConversionReport
) -> None:
    rejected = [
        r[0] for r in con.execute("select distinct line from rejects_inventor order by line").fetchall()
    ]
    report.records_read += con.execute("select count(*) from joined").fetchone()[0]
    rows = con.execute(
        """select row_index, problem, coalesce(patent_id, '') || ' #' || coalesce(inventor_sequence_raw, '')
           from joined where problem is not null order by row_index"""
    ).fetchall()
    for row_index, problem, value in rows:
        field, reason = problem.split("|", 1)
        report.quarantine(inventor_path, line_of(int(row_index), rejected), field, reason, value)


def _write(con: duckdb.DuckDBPyConnection, layer: str, out_csv_gz: Path, report: ConversionReport) -> None:
    cursor = con.execute(
        """
        select
            'US' || patent_id as application_id,
            strftime(patent_date, '%Y-%m-%d') as publication_date,
            row_number() over (partition by patent_id order by inventor_sequence, row_index) as inventor_seq,
            city, region, country,
            latitude, longitude, applicant, ipc
        from joined
        where problem is null
        order by patent_id, inventor_seq
        """
    )
    previous = None
    with canonical_output(out_csv_gz, layer) as writer:
        while batch := cursor.fetchmany(BATCH):
            for app, date, seq, city, region, country, lat, lon, applicant, ipc in batch:
                writer.write(
                    {
                        "application_id": app,
                        "publication_date": date,
                        "inventor_seq": seq,
                        "city": city,
                        "postal_code": "",
                        "region": region,
                        "country": country,
                        "latitude": "" if lat is None else repr(lat),
                        "longitude": "" if lon is None else repr(lon),
                        "applicant": applicant,
                        "ipc": ipc,
                    }
                )
                if app != previous:
                    report.documents_written += 1
                    previous = app
        report.rows_written = writer.rows
