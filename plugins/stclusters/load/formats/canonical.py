"""The canonical dump itself: check the header and every row, pass valid rows through.

The header must hold exactly the layer's columns (any order, mapped by name); rows are rewritten
in schema order. An empty file, a truncated gzip or a wrong header refuses the whole file
(:class:`FormatError`); a bad row is quarantined with the file line where its record starts.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import zlib
from collections.abc import Callable
from pathlib import Path

from stclusters.load.formats.base import (
    BROKEN,
    CanonicalWriter,
    ConversionReport,
    FormatError,
    canonical_output,
    capped_lines,
    check_layer,
    finish,
    open_text,
)
from stclusters.reference.countries import country_code
from stclusters.schema import ADDRESS_SEQ, COLUMNS, DOCUMENT_ID, LAYERS

FORMAT = "canonical"
_ISO2 = re.compile(r"^[A-Z]{2}$")


def check_header(path: Path, header: list[str], layer: str) -> None:
    expected = set(COLUMNS[layer])
    got = [h.strip() for h in header]
    missing = [c for c in COLUMNS[layer] if c not in got]
    unexpected = [c for c in got if c not in expected]
    duplicated = sorted({c for c in got if got.count(c) > 1})
    if missing or unexpected or duplicated:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if unexpected:
            parts.append(f"unexpected columns {unexpected}")
        if duplicated:
            parts.append(f"duplicated columns {duplicated}")
        raise FormatError(f"{path}: line 1: header is not the canonical {layer} header: {'; '.join(parts)}")


def _year(value: str) -> str | None:
    return "year must be YYYY" if not re.fullmatch(r"(1[89]|20)\d{2}", value) else None


def _date(value: str) -> str | None:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return "date must be YYYY-MM-DD"
    return None if len(value) == 10 else "date must be YYYY-MM-DD"


def _seq(value: str) -> str | None:
    return None if value.isdigit() and int(value) >= 1 else "must be an integer >= 1"


def _coordinate(limit: float) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not value:
            return None
        try:
            ok = -limit <= float(value) <= limit
        except ValueError:
            ok = False
        return None if ok else f"not a number within ±{limit:g}"

    return check


CHECKS: dict[str, Callable[[str], str | None]] = {
    "publication_year": _year,
    "publication_date": _date,
    "inventor_seq": _seq,
    "address_seq": _seq,
    "latitude": _coordinate(90),
    "longitude": _coordinate(180),
}


def normalise_country(value: str) -> str | None:
    """ISO alpha-2 as is; a name or other spelling through countries.country_code."""
    text = value.strip()
    if _ISO2.match(text):
        return text
    return country_code(text) if text else None


def validate_row(row: dict[str, str], layer: str) -> tuple[str, str] | None:
    """(field, reason) of the first problem of a canonical row, or None; fixes the country."""
    for name in (DOCUMENT_ID[layer], ADDRESS_SEQ[layer], "country"):
        if not row.get(name, "").strip():
            return name, "missing required value"
    for name, check in CHECKS.items():
        if name in row:
            if name in ("publication_year", "publication_date") and not row[name]:
                return name, "missing required value"
            problem = check(row[name].strip())
            if problem:
                return name, problem
    code = normalise_country(row["country"])
    if code is None:
        return "country", "unknown country"
    row["country"] = code
    return None


def convert(paths: list[Path], layer: str, out_csv_gz: Path) -> ConversionReport:
    check_layer(FORMAT, layer, LAYERS)
    report = ConversionReport(FORMAT, layer, list(paths), out_csv_gz)
    with canonical_output(out_csv_gz, layer) as writer:
        for path in paths:
            _convert_file(path, layer, report, writer)
        report.rows_written = writer.rows
    return finish(report)


def _convert_file(path: Path, layer: str, report: ConversionReport, writer: CanonicalWriter) -> None:
    # Counting id changes keeps memory constant; exact when a document's rows are adjacent,
    # as every exporter writes them.
    previous_id: str | None = None
    try:
        with open_text(path) as fh:
            # every physical line capped (MAX_LINE_BYTES): never an unbounded read
            reader = csv.reader(line for _, line in capped_lines(fh, path))
            header = next(reader, None)
            if not header or header == [""]:
                raise FormatError(f"{path}: empty file (no header row)")
            header[0] = header[0].lstrip("\ufeff")
            check_header(path, header, layer)
            next_line = reader.line_num + 1
            for cells in reader:
                # the record's FIRST file line (line_num is its last: a quoted field may hold
                # line breaks)
                line, next_line = next_line, reader.line_num + 1
                if not cells or cells == [""]:
                    continue
                report.records_read += 1
                if len(cells) != len(header):
                    report.quarantine(
                        path, line, "*", f"wrong field count: {len(cells)}, header has {len(header)}"
                    )
                    continue
                row = {h.strip(): c.strip() for h, c in zip(header, cells, strict=True)}
                broken = next((h for h, c in row.items() if BROKEN in c), None)
                if broken:
                    report.quarantine(path, line, broken, "broken encoding: undecodable bytes")
                    continue
                problem = validate_row(row, layer)
                if problem:
                    report.quarantine(path, line, problem[0], problem[1], row.get(problem[0], ""))
                    continue
                if row[DOCUMENT_ID[layer]] != previous_id:
                    report.documents_written += 1
                    previous_id = row[DOCUMENT_ID[layer]]
                writer.write(row)
    except (EOFError, zlib.error, OSError) as exc:
        raise FormatError(f"{path}: truncated or corrupt gzip: {exc}") from exc
    except csv.Error as exc:
        raise FormatError(f"{path}: not readable as CSV: {exc}") from exc
