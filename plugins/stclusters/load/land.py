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

import csv
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import duckdb
from isal import igzip, isal_zlib

from stclusters.config import RunParams
from stclusters.handover import sql_str
from stclusters.load.formats.base import ADDRESS, MAX_LINE_BYTES, RECORD
from stclusters.reference.countries import iso_codes
from stclusters.schema import COLUMNS, LAYERS, landed_type

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


MAX_HEADER_BYTES = 64 * 1024  # a header line longer than this is not a canonical header
# MAX_LINE_BYTES (formats.base) caps every line read in Python, here and in the format adapters.
ROW_UNIT = ADDRESS
"""The unit of a canonical row quarantined at load: one row is one address of a document
(an inventor address of an application, an author address of an article)."""
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .-]{0,63}$")


# Reading a gzip file: ISA-L's decompressor (python-isal), several times faster than zlib's on
# the world-scale dumps the pull step counts (docs/performance.md); its data errors are not
# OSErrors, hence the tuple.
_READ_ERRORS = (OSError, EOFError, isal_zlib.error)


def _open_binary(path: Path) -> IO[bytes]:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return igzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_header(path: Path) -> list[str]:
    """The header of a canonical CSV (plain or gzip); a clear error for empty or broken files.

    The read is bounded (MAX_HEADER_BYTES) and only the header line is decoded: a broken byte
    in a data row is that row's problem (quarantined at load), not the header's.
    """
    try:
        with _open_binary(path) as fh:
            first = fh.readline(MAX_HEADER_BYTES + 1)
    except _READ_ERRORS as exc:
        raise LoadError(f"{path}: cannot read the header line: {exc}") from exc
    if len(first) > MAX_HEADER_BYTES:
        raise LoadError(
            f"{path}: line 1 (header) is longer than {MAX_HEADER_BYTES} bytes: not a canonical header "
            "(is this a CSV file?)"
        )
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(
            f"{path}: line 1 (header) is not valid UTF-8 (byte {exc.start}): the file must be UTF-8"
        ) from exc
    if not text.strip():
        raise LoadError(f"{path}: file is empty (no header line)")
    return [c.strip().strip('"') for c in text.rstrip("\r\n").split(",")]


def _shown(names: list[str]) -> str:
    """Column names for an error message; anything that does not look like a column name is not
    echoed (a file that is not a dump must not have its content copied into the logs)."""
    shown = [n for n in names if _COLUMN_NAME.match(n)]
    hidden = len(names) - len(shown)
    return f"{shown}" + (f" and {hidden} more that are not column names (not shown)" if hidden else "")


def check_header(path: Path, layer: str) -> list[str]:
    """The file's columns, in its order: exactly the layer's columns, in any order (they are
    mapped by name); a clear error naming the missing, unexpected and duplicated columns."""
    header = read_header(path)
    expected = list(COLUMNS[layer])
    missing = [c for c in expected if c not in header]
    unexpected = [c for c in header if c not in expected]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if missing or unexpected or duplicated:
        detail = []
        if missing:
            detail.append(f"missing columns {missing}")
        if unexpected:
            detail.append(f"unexpected columns {_shown(unexpected)}")
        if duplicated:
            detail.append(f"duplicated columns {duplicated}")
        raise LoadError(f"{path}: line 1 (header) is not a canonical {layer} header: {'; '.join(detail)}")
    return header


@dataclass(frozen=True)
class FileScan:
    """What a streaming pass over a file's (decompressed) bytes found."""

    bytes: int
    lines: int  # physical lines: newline characters, plus a last line without one


def scan_file(path: Path, max_bytes: int | None = None) -> FileScan:
    """Count a file's decompressed bytes and lines in constant memory; refuse it (LoadError) once
    it exceeds ``max_bytes`` (the run parameter max_input_gib), before reading the rest."""
    size = lines = 0
    last = b"\n"
    try:
        with _open_binary(path) as fh:
            while chunk := fh.read(1 << 20):
                size += len(chunk)
                lines += chunk.count(b"\n")
                last = chunk[-1:]
                if max_bytes is not None and size > max_bytes:
                    raise LoadError(
                        f"{path}: more than {max_bytes} bytes once decompressed, the cap set by the run "
                        "parameter max_input_gib: refused without reading further. If the file is genuine, "
                        "raise max_input_gib"
                    )
    except _READ_ERRORS as exc:
        raise LoadError(f"{path}: cannot read: {exc}") from exc
    return FileScan(size, lines + (1 if size and last != b"\n" else 0))


@dataclass
class _LineMap:
    """How DuckDB's record numbers (its "line": the header is 1, a blank line counts, a record
    with embedded newlines counts once) map to file lines, built by a bounded Python pass over
    a file only when its line count says they differ."""

    shifts: list[tuple[int, int]] = field(default_factory=list)  # (record line, file line - record line)
    blanks: list[int] = field(default_factory=list)  # record lines that are blank
    records: int = 0  # non-blank records read
    unreadable_from: int | None = None  # file line where the bounded reader had to stop


def _bounded_lines(fh: IO[bytes]) -> Iterator[str]:
    while line := fh.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            raise _LineTooLong
        yield line.decode("utf-8", errors="replace")


class _LineTooLong(Exception):
    pass


def _map_lines(path: Path) -> _LineMap:
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    result = _LineMap()
    with _open_binary(path) as fh:
        reader = csv.reader(_bounded_lines(fh))
        record_line = 0
        start = 1  # file line where the next record starts
        shift = 0
        try:
            for cells in reader:
                record_line += 1
                if start - record_line != shift:
                    shift = start - record_line
                    result.shifts.append((record_line, shift))
                if record_line > 1:
                    if not cells:
                        result.blanks.append(record_line)
                    else:
                        result.records += 1
                start = reader.line_num + 1
        except (_LineTooLong, csv.Error):
            result.unreadable_from = start
    return result


def _rows_table(layer: str) -> str:
    return f"raw.{layer}_rows"


def _line_expr(offsets: dict[str, int], alias: str = "t") -> str:
    """The file line of a row of raw.<layer>_rows: stored for files where DuckDB rejected lines,
    else computed from the row's position (rows are inserted in file order; line 1 is the
    header), so that no line number has to be written for the tens of millions of good rows."""
    if not offsets:
        return f"{alias}.source_line"
    cases = " ".join(f"when {sql_str(f)} then {alias}.rowid - {o} + 2" for f, o in sorted(offsets.items()))
    return f"coalesce({alias}.source_line, case {alias}.source_file {cases} end)"


def _load_file(
    con: duckdb.DuckDBPyConnection, layer: str, path: Path, offset: int, lines: int | None = None
) -> tuple[int, int]:
    """Load one canonical file into raw.<layer>_rows in one pass over it: every row typed, with
    its first problem (if any) and, for a row with a problem, its text; returns (rows loaded,
    rows quarantined). ``offset`` is the table's row count before the file (its rows' rowids
    start there); the quarantine gets the problem rows, DuckDB's rejected lines and any line of
    the file that no record accounts for (e.g. a tail DuckDB stopped at). ``lines`` is the file's
    physical line count (scan_file), counted here when not given."""
    header = check_header(path, layer)
    if lines is None:
        lines = scan_file(path).lines
    # mapped by name: the file's columns in the file's order
    columns_sql = "{" + ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in header) + "}"
    src = sql_str(str(path))
    checks = _ROW_CHECKS[layer] + _COMMON_CHECKS
    reason_case = " ".join(
        f"when {cond} then {sql_str(field + '|' + reason)}" for field, cond, reason in checks
    )
    record = ", ".join(f"coalesce(t.{c}, '')" for c in header)
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
    # Fast path: one record per line, every line read. Otherwise (records with embedded
    # newlines, blank lines, or lines DuckDB never returned) a bounded Python pass maps
    # DuckDB's record numbers to file lines and finds the lines nothing accounts for.
    line_map = _map_lines(path) if lines - 1 != n_rows + n_rejected_lines else _LineMap()
    con.execute("create or replace temp table shifts (line bigint, shift bigint)")
    con.execute("create or replace temp table blanks (line bigint)")
    if line_map.shifts:
        con.executemany("insert into shifts values (?, ?)", line_map.shifts)
    if line_map.blanks:
        con.executemany("insert into blanks values (?)", [(b,) for b in line_map.blanks])
    if n_rejected_lines or line_map.shifts or line_map.blanks:
        # Rows keep file order; their record numbers are those DuckDB neither rejected nor
        # skipped as blank, then shifted to file lines.
        top = n_rows + n_rejected_lines + len(line_map.blanks) + 2
        con.execute(
            f"""
            create or replace temp table line_of as
            with lines as (
                select line
                from range(2, {top}) as r(line)
                where line not in (select distinct line from reject_errors)
                  and line not in (select line from blanks)
            ),
            numbered as (
                select row_number() over (order by line) - 1 + {offset} as row_id, line from lines
            )
            select l.row_id, l.line + coalesce(s.shift, 0) as line
            from numbered as l asof left join shifts as s on l.line >= s.line
            where l.row_id < {offset + n_rows}
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
        select {sql_str(layer)}, {src}, r.line + coalesce(s.shift, 0), coalesce(r.column_name, ''),
               lower(r.error_type) || ': ' || r.error_message, left(r.csv_line, 500),
               {sql_str(ROW_UNIT)}
        from (
            select * from reject_errors
            qualify row_number() over (partition by line order by column_idx) = 1
        ) as r asof left join shifts as s on r.line >= s.line
        """
    )
    con.execute(
        f"""
        insert into raw.quarantine
        select {sql_str(layer)}, {src}, {_line_expr({str(path): offset})},
               split_part(t.problem, '|', 1), split_part(t.problem, '|', 2), t.raw_record,
               {sql_str(ROW_UNIT)}
        from {rows} as t where t.source_file = {src} and t.problem is not null
        """
    )
    _quarantine_unread(con, layer, path, lines, n_rows + n_rejected_lines, line_map)
    quarantined = con.execute(
        f"select count(*) from raw.quarantine where layer = {sql_str(layer)} and source_file = {src}"
    ).fetchone()[0]
    loaded = con.execute(
        f"select count(*) from {rows} where source_file = {src} and problem is null"
    ).fetchone()[0]
    return loaded, quarantined


def _quarantine_unread(
    con: duckdb.DuckDBPyConnection, layer: str, path: Path, lines: int, records: int, line_map: _LineMap
) -> None:
    """Lines of the file that no loaded, rejected or blank record accounts for (DuckDB can stop
    at a long run of NUL bytes without a word): each is quarantined, so they count against
    max_quarantine_share instead of vanishing."""
    if line_map.unreadable_from is None and line_map.records <= records:
        return
    if line_map.unreadable_from is not None and line_map.records <= records:
        first = line_map.unreadable_from
    else:  # the Python pass read records DuckDB did not return: the tail after the last one
        first = _record_start(line_map, records + len(line_map.blanks) + 2)
    if first > lines:
        return
    reason = (
        f"not read: lines {first}-{lines} of the file were not returned by the CSV reader "
        f"(a line over {MAX_LINE_BYTES} bytes, NUL bytes or broken quoting); the file is incomplete"
    )
    log.warning("%s: %s", path, reason)
    con.execute(
        "insert into raw.quarantine select ?, ?, line, '*', ?, '', ? from range(?, ?) as r(line)",
        [layer, str(path), reason, ROW_UNIT, first, lines + 1],
    )


def _record_start(line_map: _LineMap, record_line: int) -> int:
    shift = 0
    for line, s in line_map.shifts:
        if line <= record_line:
            shift = s
    return record_line + shift


def _create_layer_views(con: duckdb.DuckDBPyConnection, offsets: dict[str, dict[str, int]]) -> None:
    """raw.patents / raw.publications: the rows without a problem, with their file line."""
    for layer in LAYERS:
        con.execute(
            f"create or replace view raw.{layer} as "
            f"select t.* exclude (source_line, problem, raw_record), "
            f"{_line_expr(offsets.get(layer, {}))} as source_line "
            f"from {_rows_table(layer)} as t where t.problem is null"
        )


def _rows_ddl(layer: str) -> str:
    """raw.<layer>_rows: the layer's canonical columns (stclusters.schema), typed, then where the
    row came from and its problem."""
    typed = ", ".join(f"{c} {landed_type(c)}" for c in COLUMNS[layer])
    return (
        f"create or replace table {_rows_table(layer)} ({typed}, source_file varchar, "
        "source_line bigint, problem varchar, raw_record varchar);"
    )


_RAW_DDL = f"""
create schema if not exists raw;
{chr(10).join(_rows_ddl(layer) for layer in LAYERS)}
create or replace table raw.quarantine (
    layer varchar, source_file varchar, source_line bigint, field varchar, reason varchar,
    raw_record varchar, unit varchar);
create or replace table raw.read_counts (layer varchar, unit varchar, n_read bigint);
create or replace table raw.landed_files (
    layer varchar, uri varchar, path varchar, size bigint, sha256 varchar, fetched_at varchar,
    rows_loaded bigint, rows_quarantined bigint);
"""


def create_country_macro(con: duckdb.DuckDBPyConnection) -> None:
    """Temp macro stc_is_iso_country(code): true for an ISO 3166 alpha-2 code (upper case), false
    for any other text, null for null, so that a row without a country is not refused by the
    country check. A cast to an ENUM of the codes, which DuckDB looks up in a hash table: a
    ``list_contains`` over the codes compares each row with them one by one, and cost about 10 s of
    a 70 s insert of 47 M rows; a strpos over the codes joined in one string cost 16 s before that
    (docs/performance.md)."""
    codes = "ENUM(" + ", ".join(sql_str(c) for c in sorted(iso_codes())) + ")"
    # `code is null and null` is null for a null code and false otherwise
    con.execute(
        f"create or replace temp macro stc_is_iso_country(code) as "
        f"try_cast(code as {codes}) is not null or (code is null and null)"
    )


def remove_stale_loading(db_path: Path) -> list[Path]:
    """Remove ``<db>.loading-<pid>`` files (and their .wal) left by loads that were killed: those
    whose pid is no longer a running process on this machine. Returns what was removed."""
    removed = []
    for path in sorted(db_path.parent.glob(db_path.name + ".loading-*")):
        pid_text = path.name.rsplit(".loading-", 1)[1].removesuffix(".wal")
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
        log.warning("removed %s, left by a load (pid %s) that did not finish", path, pid_text)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def load_database(
    db_path: Path,
    inputs: list[LayerInput],
    gazetteer_files: dict[str, Path],
    landed_meta: dict[str, dict] | None = None,
    adapter_quarantine: dict[str, Path] | None = None,
    adapter_counts: dict[str, dict] | None = None,
    max_quarantine_share: float = 0.01,
    memory_limit: str | None = None,
    threads: int | None = None,
    quarantine_dir: Path | None = None,
) -> dict[str, dict]:
    """Build the edition's database from scratch; returns per-file load statistics.

    Raises LoadError (and leaves any existing database untouched) when a file cannot be read,
    when a file's quarantined share is above ``max_quarantine_share``, or when a file's data
    rows differ from the ``expected_rows`` its landed record declares (config/sources.yml). A
    refused file's quarantine is written to ``quarantine_dir`` (default: ``<db dir>/quarantine``)
    as ``<file name>.quarantine.csv`` so that it outlives the discarded database. ``landed_meta``
    (per file path) may carry ``lines`` (scan_file) to spare a pass over the file.
    ``adapter_quarantine`` and ``adapter_counts`` (per layer: an adapter's quarantine file and
    its conversion counts from landed.json) add the adapter's quarantine, with its units, and
    its records and addresses read (raw.read_counts, the gate's denominators). ``memory_limit``
    and ``threads`` are the run's ``duckdb_memory_limit`` and ``duckdb_threads``; None takes the
    schema's defaults (RunParams, the one place they are written).
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_loading(db_path)
    tmp_path = db_path.with_name(db_path.name + f".loading-{os.getpid()}")
    for stale in (tmp_path, Path(str(tmp_path) + ".wal")):
        stale.unlink(missing_ok=True)
    landed_meta = landed_meta or {}
    quarantine_dir = quarantine_dir or db_path.parent / "quarantine"
    stats: dict[str, dict] = {}
    try:
        con = duckdb.connect(
            str(tmp_path),
            config={
                "memory_limit": memory_limit or RunParams.duckdb_memory_limit,
                "threads": threads or RunParams.duckdb_threads,
            },
        )
        con.execute("set enable_progress_bar = false")  # progress goes to the task log, not as bars
        try:
            create_country_macro(con)
            con.execute(_RAW_DDL)
            offsets: dict[str, dict[str, int]] = {}
            for item in inputs:
                for path in item.files:
                    log.info("loading %s %s", item.layer, path)
                    offset = con.execute(f"select count(*) from {_rows_table(item.layer)}").fetchone()[0]
                    offsets.setdefault(item.layer, {})[str(path)] = offset
                    meta = landed_meta.get(str(path), {})
                    loaded, quarantined = _load_file(con, item.layer, path, offset, meta.get("lines"))
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
            _check_expected_rows(stats)
            _check_quarantine(stats, max_quarantine_share, con, quarantine_dir)
            for layer, qpath in sorted((adapter_quarantine or {}).items()):
                # Records (or addresses) a format adapter refused before the canonical file was
                # written, each with its unit.
                con.execute(
                    "insert into raw.quarantine "
                    "select ?, file, try_cast(line as bigint), field, reason, value, unit "
                    "from read_csv(?, header = true, all_varchar = true)",
                    [layer, str(qpath)],
                )
            _record_read_counts(con, stats, adapter_counts or {})
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


def _record_read_counts(
    con: duckdb.DuckDBPyConnection, stats: dict[str, dict], adapter_counts: dict[str, dict]
) -> None:
    """raw.read_counts: per layer and unit, what was read, the denominators of the gate's
    quarantine shares (quarantined records / records read, quarantined addresses / addresses
    read). A converted layer's records and addresses are those its adapter read (landed.json's
    conversion counts); the canonical rows the load reads are addresses of these. A layer landed
    canonical has no records of its own: its addresses are the canonical rows read."""
    rows: list[tuple[str, str, int]] = []
    for layer in LAYERS:
        canonical_rows = sum(
            s["rows_loaded"] + s["rows_quarantined"] for s in stats.values() if s["layer"] == layer
        )
        counts = adapter_counts.get(layer) or {}
        if counts.get("records_read"):
            rows.append((layer, RECORD, int(counts["records_read"])))
        # an adapter that does not count addresses (one address per record) leaves them to the
        # canonical rows; an adapter that does counts every address it read, written or not
        addresses = int(counts.get("addresses_read") or 0)
        rows.append((layer, ADDRESS, max(addresses, canonical_rows)))
    con.executemany("insert into raw.read_counts values (?, ?, ?)", rows)


def _check_expected_rows(stats: dict[str, dict]) -> None:
    """A file whose landed record declares ``expected_rows`` (config/sources.yml) must hold
    exactly that many data rows, loaded or quarantined (a dump cut short is not complete)."""
    for path, s in stats.items():
        want = s.get("expected_rows")
        got = s["rows_loaded"] + s["rows_quarantined"]
        if want is not None and got != int(want):
            raise LoadError(
                f"{path}: {got} data rows ({s['rows_loaded']} loaded, {s['rows_quarantined']} quarantined), "
                f"but the source set declares rows: {want} (config/sources.yml): the dump is incomplete "
                "or not the one declared"
            )


def _check_quarantine(
    stats: dict[str, dict], max_share: float, con: duckdb.DuckDBPyConnection, quarantine_dir: Path
) -> None:
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
            "select field || ': ' || split_part(reason, ' (', 1) as r, count(*) n from raw.quarantine "
            "where source_file = ? group by r order by n desc limit 5",
            [path],
        ).fetchall()
        listed = "; ".join(f"{r} ({n} rows)" for r, n in reasons)
        kept = export_quarantine(con, path, quarantine_dir)
        raise LoadError(
            f"{path}: {share:.1%} of rows quarantined, above max_quarantine_share={max_share:.1%} "
            f"(a row is one {ROW_UNIT}). "
            f"Main reasons: {listed}. The quarantined rows (file, line, field, reason): {kept}"
        )


def export_quarantine(con: duckdb.DuckDBPyConnection, source_file: str, out_dir: Path) -> Path:
    """Write one file's quarantined rows to ``<out_dir>/<file name>.quarantine.csv`` (atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{Path(source_file).name}.quarantine.csv"
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    con.execute(
        f"copy (select source_file as file, source_line as line, field, reason, raw_record as value, unit "
        f"from raw.quarantine where source_file = ? order by source_line) to {sql_str(str(tmp))} "
        "(header, delimiter ',')",
        [source_file],
    )
    os.replace(tmp, out)
    return out


def _load_gazetteer(con: duckdb.DuckDBPyConnection, files: dict[str, Path]) -> None:
    for name, path in sorted(files.items()):
        table = name if name.startswith("gazetteer_") else f"gazetteer_{name}"
        con.execute(
            f"create or replace table raw.{table} as select * from read_parquet({sql_str(str(path))})"
        )


def layer_inputs(files_by_layer: dict[str, list[Path]]) -> list[LayerInput]:
    unknown = set(files_by_layer) - set(LAYERS)
    if unknown:
        raise LoadError(f"unknown layers {sorted(unknown)}")
    return [LayerInput(layer, tuple(files_by_layer.get(layer, []))) for layer in LAYERS]


__all__ = [
    "FileScan",
    "LayerInput",
    "LoadError",
    "check_header",
    "export_quarantine",
    "layer_inputs",
    "load_database",
    "remove_stale_loading",
    "scan_file",
]
