"""Load an edition's landed files into its DuckDB database (schema ``raw``).

Canonical CSV dumps are read by DuckDB as text, then checked row by row inside DuckDB: rows with
a wrong field count or broken encoding (DuckDB's CSV rejects), a missing id, an unparseable date
or year, an unknown country code or coordinates out of range go to ``raw.quarantine`` with their
file, line, field and reason. One pass over each file writes every row, typed, into
``raw.patents_rows`` / ``raw.publications_rows`` with its problem (null for a good row); the
views ``raw.patents`` / ``raw.publications`` are the good rows with their file line.

The database is built under a temporary name and renamed over the edition's file only when
complete, so a failed load leaves the previous database as it was.
"""

from __future__ import annotations

import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from stclusters.countries import iso_codes
from stclusters.schema import COLUMNS, LAYERS

log = logging.getLogger(__name__)


class LoadError(RuntimeError):
    """A dump cannot be loaded; the message names the file and what is wrong."""


@dataclass(frozen=True)
class LayerInput:
    layer: str
    files: tuple[Path, ...]


# Per layer: (field, SQL that is true when the field is bad, reason). Evaluated in order; the
# first failing check is the row's reason. `t` is the text row.
_ROW_CHECKS: dict[str, list[tuple[str, str, str]]] = {
    "patents": [
        ("application_id", "nullif(trim(t.application_id), '') is null", "missing id"),
        ("inventor_seq", "try_cast(t.inventor_seq as integer) is null", "inventor_seq is not an integer"),
        (
            "publication_date",
            "try_strptime(trim(t.publication_date), '%Y-%m-%d') is null",
            "unparseable date",
        ),
    ],
    "publications": [
        ("article_id", "nullif(trim(t.article_id), '') is null", "missing id"),
        ("address_seq", "try_cast(t.address_seq as integer) is null", "address_seq is not an integer"),
        (
            "publication_year",
            "coalesce(try_cast(trim(t.publication_year) as integer) not between 1900 and 2100, true)",
            "unparseable year",
        ),
    ],
}
_COMMON_CHECKS: list[tuple[str, str, str]] = [
    # a scalar macro, not `in (select ...)`: a join here would let DuckDB insert the rows out of
    # file order, and the file line of a row is computed from its position (_line_expr)
    ("country", "not stc_is_iso_country(upper(trim(t.country)))", "unknown country code"),
    (
        "latitude",
        "nullif(trim(t.latitude), '') is not null and coalesce(try_cast(t.latitude as double) "
        "not between -90 and 90, true)",
        "latitude not a number in [-90, 90]",
    ),
    (
        "longitude",
        "nullif(trim(t.longitude), '') is not null and coalesce(try_cast(t.longitude as double) "
        "not between -180 and 180, true)",
        "longitude not a number in [-180, 180]",
    ),
]

_TYPED_SELECT = {
    "patents": """
        trim(t.application_id) as application_id,
        cast(try_strptime(trim(t.publication_date), '%Y-%m-%d') as date) as publication_date,
        try_cast(t.inventor_seq as integer) as inventor_seq,
        t.city, t.postal_code, t.region,
        upper(trim(t.country)) as country,
        try_cast(t.latitude as double) as latitude,
        try_cast(t.longitude as double) as longitude,
        t.applicant, t.ipc""",
    "publications": """
        trim(t.article_id) as article_id,
        try_cast(trim(t.publication_year) as integer) as publication_year,
        t.document_type,
        try_cast(t.address_seq as integer) as address_seq,
        t.organization, t.city, t.postal_code, t.region,
        upper(trim(t.country)) as country,
        try_cast(t.latitude as double) as latitude,
        try_cast(t.longitude as double) as longitude,
        t.subject""",
}


def read_header(path: Path) -> list[str]:
    """The header of a canonical CSV (plain or gzip); a clear error for empty or broken files."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            first = fh.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise LoadError(f"{path}: cannot read the header line: {exc}") from exc
    if not first.strip():
        raise LoadError(f"{path}: file is empty (no header line)")
    return [c.strip().strip('"') for c in first.rstrip("\r\n").split(",")]


def check_header(path: Path, layer: str) -> None:
    header = read_header(path)
    expected = list(COLUMNS[layer])
    if header != expected:
        missing = [c for c in expected if c not in header]
        unexpected = [c for c in header if c not in expected]
        detail = []
        if missing:
            detail.append(f"missing columns {missing}")
        if unexpected:
            detail.append(f"unexpected columns {unexpected}")
        if not detail:
            detail.append(f"columns out of order, expected {expected}")
        raise LoadError(f"{path}: line 1 (header) is not a canonical {layer} header: {'; '.join(detail)}")


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _rows_table(layer: str) -> str:
    return f"raw.{layer}_rows"


def _line_expr(offsets: dict[str, int], alias: str = "t") -> str:
    """The file line of a row of raw.<layer>_rows: stored for files where DuckDB rejected lines,
    else computed from the row's position (rows are inserted in file order; line 1 is the
    header), so that no line number has to be written for the tens of millions of good rows."""
    if not offsets:
        return f"{alias}.source_line"
    cases = " ".join(f"when {_sql_str(f)} then {alias}.rowid - {o} + 2" for f, o in sorted(offsets.items()))
    return f"coalesce({alias}.source_line, case {alias}.source_file {cases} end)"


def _load_file(con: duckdb.DuckDBPyConnection, layer: str, path: Path, offset: int) -> tuple[int, int]:
    """Load one canonical file into raw.<layer>_rows in one pass over it: every row typed, with
    its first problem (if any) and, for a row with a problem, its text; returns (rows loaded,
    rows quarantined). ``offset`` is the table's row count before the file (its rows' rowids
    start there); the quarantine gets the problem rows and DuckDB's rejected lines."""
    check_header(path, layer)
    cols = COLUMNS[layer]
    columns_sql = "{" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in cols) + "}"
    src = _sql_str(str(path))
    checks = _ROW_CHECKS[layer] + _COMMON_CHECKS
    reason_case = " ".join(
        f"when {cond} then {_sql_str(field + '|' + reason)}" for field, cond, reason in checks
    )
    record = ", ".join(f"coalesce(t.{c}, '')" for c in cols)
    rows = _rows_table(layer)
    con.execute("drop table if exists reject_errors; drop table if exists reject_scans;")
    # insertion order is file order (preserve_insertion_order), so rowid - offset + 2 is the line
    con.execute(
        f"""
        insert into {rows}
        select {_TYPED_SELECT[layer]}, {src} as source_file, null as source_line, t.problem,
               case when t.problem is not null then left(concat_ws(',', {record}), 500) end
        from (
            select t.*, case {reason_case} end as problem
            from read_csv({src}, header = true, delim = ',', quote = '"', escape = '"',
                          columns = {columns_sql}, auto_detect = false, strict_mode = true,
                          store_rejects = true, rejects_table = 'reject_errors',
                          rejects_scan = 'reject_scans', encoding = 'utf-8') as t
        ) as t
        """
    )
    n_rows = con.execute(f"select count(*) from {rows}").fetchone()[0] - offset
    n_rejected_lines = con.execute("select count(distinct line) from reject_errors").fetchone()[0]
    if n_rejected_lines:
        # Rows keep file order; their line numbers are the data lines DuckDB did not reject.
        con.execute(
            f"""
            create or replace temp table line_of as
            with lines as (
                select line
                from range(2, {n_rows + n_rejected_lines + 2}) as r(line)
                where line not in (select distinct line from reject_errors)
            )
            select row_number() over (order by line) - 1 + {offset} as row_id, line from lines
            """
        )
        con.execute(
            f"update {rows} set source_line = l.line from line_of as l "
            f"where {rows}.rowid = l.row_id and {rows}.source_file = {src}"
        )
        con.execute("drop table line_of")
    con.execute(
        f"""
        insert into raw.quarantine
        select {_sql_str(layer)}, {src}, line, coalesce(column_name, ''),
               lower(error_type) || ': ' || error_message, left(csv_line, 500)
        from reject_errors
        qualify row_number() over (partition by line order by column_idx) = 1
        """
    )
    con.execute(
        f"""
        insert into raw.quarantine
        select {_sql_str(layer)}, {src}, {_line_expr({str(path): offset})},
               split_part(t.problem, '|', 1), split_part(t.problem, '|', 2), t.raw_record
        from {rows} as t where t.source_file = {src} and t.problem is not null
        """
    )
    quarantined = con.execute(
        f"select count(*) from raw.quarantine where layer = {_sql_str(layer)} and source_file = {src}"
    ).fetchone()[0]
    loaded = con.execute(
        f"select count(*) from {rows} where source_file = {src} and problem is null"
    ).fetchone()[0]
    return loaded, quarantined


def _create_layer_views(con: duckdb.DuckDBPyConnection, offsets: dict[str, dict[str, int]]) -> None:
    """raw.patents / raw.publications: the rows without a problem, with their file line."""
    for layer in LAYERS:
        con.execute(
            f"create or replace view raw.{layer} as "
            f"select t.* exclude (source_line, problem, raw_record), "
            f"{_line_expr(offsets.get(layer, {}))} as source_line "
            f"from {_rows_table(layer)} as t where t.problem is null"
        )


_RAW_DDL = """
create schema if not exists raw;
create or replace table raw.patents_rows (
    application_id varchar, publication_date date, inventor_seq integer, city varchar,
    postal_code varchar, region varchar, country varchar, latitude double, longitude double,
    applicant varchar, ipc varchar, source_file varchar, source_line bigint, problem varchar,
    raw_record varchar);
create or replace table raw.publications_rows (
    article_id varchar, publication_year integer, document_type varchar, address_seq integer,
    organization varchar, city varchar, postal_code varchar, region varchar, country varchar,
    latitude double, longitude double, subject varchar, source_file varchar, source_line bigint,
    problem varchar, raw_record varchar);
create or replace table raw.quarantine (
    layer varchar, source_file varchar, source_line bigint, field varchar, reason varchar,
    raw_record varchar);
create or replace table raw.landed_files (
    layer varchar, uri varchar, path varchar, size bigint, sha256 varchar, fetched_at varchar,
    rows_loaded bigint, rows_quarantined bigint);
"""


def load_database(
    db_path: Path,
    inputs: list[LayerInput],
    gazetteer_files: dict[str, Path],
    landed_meta: dict[str, dict] | None = None,
    adapter_quarantine: dict[str, Path] | None = None,
    max_quarantine_share: float = 0.01,
    memory_limit: str = "8GB",
    threads: int = 2,
) -> dict[str, dict]:
    """Build the edition's database from scratch; returns per-file load statistics.

    Raises LoadError (and leaves any existing database untouched) when a file cannot be read or
    when a file's quarantined share is above ``max_quarantine_share``.
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = db_path.with_name(db_path.name + f".loading-{os.getpid()}")
    for stale in (tmp_path, Path(str(tmp_path) + ".wal")):
        stale.unlink(missing_ok=True)
    landed_meta = landed_meta or {}
    stats: dict[str, dict] = {}
    try:
        con = duckdb.connect(str(tmp_path), config={"memory_limit": memory_limit, "threads": threads})
        con.execute("set enable_progress_bar = false")  # progress goes to the task log, not as bars
        try:
            codes = "," + ",".join(sorted(iso_codes())) + ","
            con.execute(
                "create temp macro stc_is_iso_country(code) as "
                f"length(code) = 2 and strpos({_sql_str(codes)}, ',' || code || ',') > 0"
            )
            con.execute(_RAW_DDL)
            offsets: dict[str, dict[str, int]] = {}
            for item in inputs:
                for path in item.files:
                    log.info("loading %s %s", item.layer, path)
                    offset = con.execute(f"select count(*) from {_rows_table(item.layer)}").fetchone()[0]
                    offsets.setdefault(item.layer, {})[str(path)] = offset
                    loaded, quarantined = _load_file(con, item.layer, path, offset)
                    meta = landed_meta.get(str(path), {})
                    stats[str(path)] = {
                        "layer": item.layer,
                        "rows_loaded": loaded,
                        "rows_quarantined": quarantined,
                        **meta,
                    }
                    con.execute(
                        "insert into raw.landed_files values (?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            item.layer,
                            meta.get("uri", str(path)),
                            str(path),
                            meta.get("size"),
                            meta.get("sha256"),
                            meta.get("fetched_at"),
                            loaded,
                            quarantined,
                        ],
                    )
                    log.info("%s: %d rows loaded, %d quarantined", path, loaded, quarantined)
            _create_layer_views(con, offsets)
            _check_quarantine(stats, max_quarantine_share, con)
            for layer, qpath in sorted((adapter_quarantine or {}).items()):
                # Records a format adapter refused before the canonical file was written.
                con.execute(
                    "insert into raw.quarantine "
                    "select ?, file, try_cast(line as bigint), field, reason, value "
                    "from read_csv(?, header = true, all_varchar = true)",
                    [layer, str(qpath)],
                )
            _load_gazetteer(con, gazetteer_files)
            con.execute("checkpoint")
        finally:
            con.close()
        os.replace(tmp_path, db_path)
        Path(str(db_path) + ".wal").unlink(missing_ok=True)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        Path(str(tmp_path) + ".wal").unlink(missing_ok=True)
        raise
    return stats


def _check_quarantine(stats: dict[str, dict], max_share: float, con: duckdb.DuckDBPyConnection) -> None:
    worst = None
    for path, s in stats.items():
        total = s["rows_loaded"] + s["rows_quarantined"]
        share = s["rows_quarantined"] / total if total else 1.0
        s["quarantine_share"] = share
        if total == 0:
            raise LoadError(f"{path}: no data rows (empty {s['layer']} dump)")
        if share > max_share and (worst is None or share > worst[1]):
            worst = (path, share)
    if worst:
        path, share = worst
        reasons = con.execute(
            "select field || ': ' || reason as r, count(*) n from raw.quarantine where source_file = ? "
            "group by r order by n desc limit 5",
            [path],
        ).fetchall()
        listed = "; ".join(f"{r} ({n} rows)" for r, n in reasons)
        raise LoadError(
            f"{path}: {share:.1%} of rows quarantined, above max_quarantine_share={max_share:.1%}. "
            f"Main reasons: {listed}"
        )


def _load_gazetteer(con: duckdb.DuckDBPyConnection, files: dict[str, Path]) -> None:
    for name, path in sorted(files.items()):
        table = name if name.startswith("gazetteer_") else f"gazetteer_{name}"
        con.execute(
            f"create or replace table raw.{table} as select * from read_parquet({_sql_str(str(path))})"
        )


def layer_inputs(files_by_layer: dict[str, list[Path]]) -> list[LayerInput]:
    unknown = set(files_by_layer) - set(LAYERS)
    if unknown:
        raise LoadError(f"unknown layers {sorted(unknown)}")
    return [LayerInput(layer, tuple(files_by_layer.get(layer, []))) for layer in LAYERS]


__all__ = ["LayerInput", "LoadError", "check_header", "layer_inputs", "load_database"]
