"""What the relational patent sources (REGPAT, PATSTAT, geocoded first filings) share.

Each of them comes as delimited text tables with a header row, recognised by their columns and
joined in a DuckDB file beside the output (so large joins spill to disk). Column names are
matched case-insensitively (REGPAT and BigQuery exports capitalise them differently). The line of
a record in its file is its position among the lines DuckDB accepted (one record per line, as
these exports write them), see :func:`line_of`.
"""

from __future__ import annotations

import logging
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from stclusters.load.formats.base import (
    ConversionReport,
    FormatError,
    canonical_output,
    capped_readline,
    open_text,
)
from stclusters.reference.countries import country_code, iso_codes
from stclusters.schema import COLUMNS

log = logging.getLogger(__name__)

DELIMITERS = ("|", "\t", ",", ";")
BATCH = 50_000


def first_line(path: Path) -> str:
    with open_text(path) as fh:
        return capped_readline(fh, path, 1, "header line").lstrip("\ufeff").rstrip("\r\n")


def split_header(line: str) -> tuple[list[str], str]:
    """Lower-cased column names and the delimiter of a header line (the one splitting it most)."""
    delim = max(DELIMITERS, key=line.count)
    return [c.strip().strip('"').strip().lower() for c in line.split(delim)], delim


def header(path: Path) -> tuple[list[str], str]:
    return split_header(first_line(path))


def identify(
    paths: list[Path], table_of: Callable[[list[str]], str | None], source: str, expected: str
) -> dict[str, tuple[Path, list[str]]]:
    """Each file's table by its header (``table_of``): name -> (path, header). A file that is none
    of ``expected``, or a second file of one table, is a FormatError naming the file."""
    found: dict[str, tuple[Path, list[str]]] = {}
    for path in paths:
        names, _ = header(path)
        name = table_of(names)
        if name is None:
            raise FormatError(f"{path}: line 1: not a {source} {expected} (header {names[:8]})")
        if name in found:
            raise FormatError(
                f"{path}: a second {source} {name} table (first: {found[name][0]}); give one of each"
            )
        found[name] = (path, names)
    return found


def sql_str(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


@contextmanager
def join_database(out_csv_gz: Path, prefix: str) -> Iterator[duckdb.DuckDBPyConnection]:
    out_csv_gz.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_csv_gz.parent, prefix=f".{prefix}-") as tmp:
        con = duckdb.connect(str(Path(tmp) / "join.duckdb"))
        try:
            con.execute("set preserve_insertion_order = true")
            yield con
        finally:
            con.close()


def load(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> int:
    """``raw_<name>``: the table as text, columns lower-cased, rows in file order (rowid = position)."""
    line = first_line(path)
    _, delim = split_header(line)
    # CSV exports quote fields that hold the delimiter; pipe and tab text files (REGPAT) are not
    # quoted, and a name that starts with a quote (`"ABC" Corp`) must stay text there
    quote = '"' if delim in ",;" or line.startswith('"') else ""
    source = (
        f"read_csv({sql_str(path)}, delim={sql_str(delim)}, header=true, quote={sql_str(quote)}, "
        "escape=" + sql_str(quote) + ", all_varchar=true, "
        f"store_rejects=true, rejects_table='rejects_{name}', rejects_scan='scan_{name}')"
    )
    columns = con.sql(f"select * from {source} limit 0").columns
    select = ", ".join(f'"{c}" as "{c.strip().lower()}"' for c in columns)
    con.execute(f"create table raw_{name} as select {select} from {source}")
    n = con.execute(f"select count(*) from raw_{name}").fetchone()[0]
    log.info("%s: %d rows read as %s", path, n, name)
    return n


def line_of(row_index: int, rejected_lines: list[int]) -> int:
    """File line of the ``row_index``-th accepted row (0-based), skipping header and rejected lines.

    Assumes one record per line, as PatentsView, REGPAT and PATSTAT write their tables.
    """
    line = row_index + 2
    seen = 0
    while True:
        before = bisect_right(rejected_lines, line)
        if before == seen:
            return line
        line += before - seen
        seen = before


def quarantine_rejects(
    con: duckdb.DuckDBPyConnection, name: str, path: Path, report: ConversionReport
) -> list[int]:
    """Quarantine the lines DuckDB could not read (wrong field count, bad quoting); their numbers."""
    rows = con.execute(
        f"""select line, arg_min(coalesce(column_name, '*'), column_idx), arg_min(error_type, column_idx),
                   arg_min(error_message, column_idx), arg_min(csv_line, column_idx)
            from rejects_{name} group by line order by line"""
    ).fetchall()
    for line, column, error_type, message, csv_line in rows:
        if "COLUMNS" in str(error_type):
            column, reason = "*", "wrong field count"
        else:
            reason = str(error_type).lower()
        report.quarantine(path, int(line), column, f"{reason}: {message}", csv_line or "")
    return [int(r[0]) for r in rows]


def quarantine_problems(
    con: duckdb.DuckDBPyConnection, table: str, path: Path, rejected: list[int], report: ConversionReport
) -> None:
    """Quarantine the rows of ``table`` whose ``problem`` ('field|reason') is set, at their file line."""
    rows = con.execute(
        f"""select row_index, problem, coalesce(value, '') from {table}
            where problem is not null order by row_index"""
    ).fetchall()
    for row_index, problem, value in rows:
        field_name, reason = problem.split("|", 1)
        report.quarantine(path, line_of(int(row_index), rejected), field_name, reason, value)


def write_canonical(
    con: duckdb.DuckDBPyConnection, query: str, layer: str, out_csv_gz: Path, report: ConversionReport
) -> None:
    """Write the rows of ``query`` (the layer's columns, in order, documents adjacent) as the dump."""
    cursor = con.execute(query)
    names = [d[0] for d in cursor.description]
    if tuple(names) != COLUMNS[layer]:
        raise AssertionError(f"query columns {names} are not the canonical {layer} columns")
    previous = None
    with canonical_output(out_csv_gz, layer) as writer:
        while batch := cursor.fetchmany(BATCH):
            for values in batch:
                row = {
                    n: ("" if v is None else (repr(v) if isinstance(v, float) else v))
                    for n, v in zip(names, values, strict=True)
                }
                writer.write(row)
                if values[0] != previous:
                    report.documents_written += 1
                    previous = values[0]
        report.rows_written = writer.rows


def required_columns(path: Path, names: list[str], wanted: tuple[str, ...], what: str) -> None:
    missing = [c for c in wanted if c not in names]
    if missing:
        raise FormatError(f"{path}: line 1: {what} lacks columns {missing} (header {names[:12]})")


def register_countries(con: duckdb.DuckDBPyConnection) -> None:
    """Table ``iso_countries(code)``: the codes the load step accepts (countries.iso_codes)."""
    codes = sorted(iso_codes())
    con.execute("create table iso_countries (code varchar primary key)")
    con.executemany("insert into iso_countries values (?)", [(c,) for c in codes])


def _has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)


def address_parts(address: str | None) -> list[str | None]:
    """[city, postal_code, region] from a one-line postal address ("Hauptstr. 5, 80331 München").

    The last comma-separated part that is not a country name holds the city and the postal code
    (tokens with a digit); a trailing state code ("Palo Alto, CA 94304") makes the part before
    it the city. Nothing is guessed beyond that: the geocoding cascade decides what matches.
    """
    if not address or not address.strip():
        return [None, None, None]
    parts = [p.strip() for p in address.replace(";", ",").split(",") if p.strip()]
    while len(parts) > 1 and len(parts[-1]) > 3 and not _has_digit(parts[-1]) and country_code(parts[-1]):
        parts.pop()
    tokens = parts[-1].split()
    # a Dutch-style postcode's letters ("5656 AE") belong to the code, not to the city
    in_code = [
        _has_digit(t)
        or (i > 0 and len(t) == 2 and t.isupper() and tokens[i - 1].isdigit() and len(tokens[i - 1]) == 4)
        for i, t in enumerate(tokens)
    ]
    postal = " ".join(t for t, c in zip(tokens, in_code, strict=True) if c) or None
    names = [t for t, c in zip(tokens, in_code, strict=True) if not c]
    region = None
    if len(names) == 1 and len(names[0]) <= 3 and names[0].isupper() and len(parts) > 1:
        region, names = names[0], []
    city = " ".join(names).strip(" -.") or None
    if city is None and len(parts) > 1 and not _has_digit(parts[-2]):
        city = parts[-2]
    return [city, postal, region]


def register_address_parser(con: duckdb.DuckDBPyConnection) -> None:
    con.create_function("stc_address_parts", address_parts, ["VARCHAR"], "VARCHAR[]", null_handling="special")


def column(names: list[str], name: str, alias: str = "") -> str:
    """``alias.name`` trimmed and empty as null, or a null text when the table lacks the column."""
    if name not in names:
        return "null::varchar"
    return f"nullif(trim({alias + '.' if alias else ''}\"{name}\"), '')"
