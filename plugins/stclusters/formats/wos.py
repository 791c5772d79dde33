"""Web of Science exports (field-tagged plain text and tab-delimited) -> canonical publications.

One canonical row per C1 address of each counted record (RP address when C1 is empty). Rules
(document types, years, address parsing) are documented in docs/data-formats.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stclusters.formats.base import (
    BROKEN,
    ConversionReport,
    FormatError,
    canonical_output,
    check_layer,
    finish,
    open_text,
    peek_bytes,
)
from stclusters.formats.c1 import AddressError, parse_c1

log = logging.getLogger(__name__)

FORMAT = "wos"
# The GII counts original research articles. WoS tags an article that was also presented at a
# conference "Article; Proceedings Paper" and early-access ones "Article; Early Access": the
# first type decides. Reviews, proceedings papers, meeting abstracts, letters... are excluded.
COUNTED_FIRST_TYPE = "Article"
_YEAR = re.compile(r"\b(1[89]\d{2}|20\d{2})\b")
_RP_SPLIT = re.compile(r"\((?:corresponding|reprint) author\),\s*")
_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9]) ?(.*)$")


@dataclass
class Record:
    """One exported record: tag -> list of (line number, value) in file order."""

    file: Path
    line: int
    fields: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    broken: tuple[int, str] | None = None  # first (line, tag) with undecodable bytes
    field_count_error: str | None = None

    def text(self, tag: str) -> str:
        return " ".join(v for _, v in self.fields.get(tag, [])).strip()

    def values(self, tag: str) -> list[tuple[int, str]]:
        return [(n, v.strip()) for n, v in self.fields.get(tag, []) if v.strip()]


# --- reading ---------------------------------------------------------------------------------
def detect_encoding(path: Path) -> str:
    head = peek_bytes(path, 4096)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    # UTF-16 LE without BOM: every other byte of ASCII text is NUL.
    if len(head) >= 8 and head[1::2].count(0) > len(head) // 4:
        return "utf-16-le"
    return "utf-8"


def variant(path: Path) -> str:
    """'plain' (field-tagged) or 'tab' (tab-delimited); FormatError when neither."""
    first = _first_line(path)
    if first.startswith(("FN ", "VR ", "PT ")):
        return "plain"
    tags = first.rstrip("\r\n").split("\t")
    if tags and tags[0] == "PT" and "UT" in tags:
        return "tab"
    raise FormatError(f"{path}: line 1: not a Web of Science export (starts {first[:40]!r})")


def _first_line(path: Path) -> str:
    with open_text(path, detect_encoding(path)) as fh:
        return fh.readline().lstrip("\ufeff")


def read_records(path: Path) -> Iterator[Record]:
    kind = variant(path)
    return _read_plain(path) if kind == "plain" else _read_tab(path)


def _read_plain(path: Path) -> Iterator[Record]:
    record: Record | None = None
    tag = ""
    with open_text(path, detect_encoding(path)) as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n").lstrip("\ufeff")
            if not line.strip():
                continue
            if line.startswith("   "):
                value = line[3:]
            else:
                m = _TAG_LINE.match(line)
                if not m:
                    if record is not None:
                        record.broken = record.broken or (number, "line")
                    continue
                tag, value = m.group(1), m.group(2)
                if tag in ("FN", "VR", "EF"):
                    continue
                if tag == "PT":
                    if record is not None:  # an ER was missing: close the record anyway
                        yield record
                    record = Record(path, number)
                elif tag == "ER":
                    if record is not None:
                        yield record
                    record = None
                    continue
            if record is None:
                continue
            if BROKEN in value and record.broken is None:
                record.broken = (number, tag)
            record.fields.setdefault(tag, []).append((number, value))
    if record is not None:
        yield record


def split_outside_brackets(text: str, sep: str = ";") -> list[str]:
    """Split a tab-export C1 cell on ';' that are not inside an [author; author] list."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [s.strip() for s in out if s.strip()]


def _read_tab(path: Path) -> Iterator[Record]:
    with open_text(path, detect_encoding(path)) as fh:
        header: list[str] = []
        for number, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n").lstrip("\ufeff") if number == 1 else raw.rstrip("\r\n")
            if number == 1:
                header = line.split("\t")
                while header and header[-1] == "":
                    header.pop()
                continue
            if not line.strip():
                continue
            cells = line.split("\t")
            # WoS ends every row with a tab: one empty cell beyond the header is normal.
            while len(cells) > len(header) and cells[-1] == "":
                cells.pop()
            record = Record(path, number)
            if len(cells) != len(header):
                record.field_count_error = f"{len(cells)} fields, header has {len(header)}"
                yield record
                continue
            for tag, cell in zip(header, cells, strict=True):
                if BROKEN in cell and record.broken is None:
                    record.broken = (number, tag)
                if tag == "C1":
                    record.fields[tag] = [(number, v) for v in split_outside_brackets(cell)]
                elif cell:
                    record.fields[tag] = [(number, cell)]
            yield record


# --- converting --------------------------------------------------------------------------------
def publication_year(record: Record) -> tuple[str | None, str, str]:
    """(year, field, problem): PY, else the early-access year (EY, then the year in EA)."""
    for tag in ("PY", "EY", "EA"):
        text = record.text(tag)
        if not text:
            continue
        m = _YEAR.search(text) if tag == "EA" else re.fullmatch(r"\s*(\d{4})\s*", text)
        if m:
            return m.group(1), tag, ""
        return None, tag, "unparseable year"
    return None, "PY", "no publication year (PY, EY and EA empty)"


def rp_addresses(record: Record) -> list[tuple[int, str]]:
    """The reprint/corresponding addresses: 'Name (corresponding author), Address.; Name ...'."""
    out = []
    for number, value in record.values("RP"):
        pieces = _RP_SPLIT.split(value)
        for piece in pieces[1:]:
            address = re.split(r"\.\s*;\s*", piece)[0].strip()
            if address:
                out.append((number, address))
    return out


def _subjects(record: Record) -> str:
    text = record.text("WC") or record.text("SC")
    return ";".join(s.strip() for s in text.split(";") if s.strip())


def convert(paths: list[Path], layer: str, out_csv_gz: Path) -> ConversionReport:
    check_layer(FORMAT, layer, ("publications",))
    report = ConversionReport(FORMAT, layer, list(paths), out_csv_gz)
    seen: set[str] = set()
    with canonical_output(out_csv_gz, layer) as writer:
        for path in paths:
            for record in read_records(path):
                report.records_read += 1
                rows = _record_rows(record, report, seen)
                for row in rows:
                    writer.write(row)
                report.documents_written += bool(rows)
        report.rows_written = writer.rows
    return finish(report)


def _record_rows(record: Record, report: ConversionReport, seen: set[str]) -> list[dict[str, object]]:
    q = report.quarantine
    if record.field_count_error:
        q(record.file, record.line, "*", f"wrong field count: {record.field_count_error}")
        return []
    if record.broken:
        line, tag = record.broken
        q(record.file, line, tag, "broken encoding: undecodable bytes")
        return []
    doc_type = record.text("DT")
    if doc_type.split(";")[0].strip() != COUNTED_FIRST_TYPE:
        report.excluded[f"document type {doc_type or '(empty)'}"] += 1
        return []
    article_id = record.text("UT")
    if not article_id:
        q(record.file, record.line, "UT", "missing article id")
        return []
    if article_id in seen:
        report.excluded["duplicate article id"] += 1
        return []
    seen.add(article_id)
    year, year_tag, problem = publication_year(record)
    if year is None:
        q(record.file, record.line, year_tag, problem, record.text(year_tag))
        return []
    addresses = record.values("C1")
    source_tag = "C1"
    if not addresses:
        addresses, source_tag = rp_addresses(record), "RP"
    if not addresses:
        q(record.file, record.line, "C1", "no address: C1 and RP empty", article_id)
        return []
    rows: list[dict[str, object]] = []
    subject = _subjects(record)
    for number, entry in addresses:
        try:
            a = parse_c1(entry)
        except AddressError as exc:
            q(record.file, number, source_tag, f"{exc.reason}: {exc.value}", entry)
            continue
        rows.append(
            {
                "article_id": article_id,
                "publication_year": year,
                "document_type": COUNTED_FIRST_TYPE,
                "address_seq": len(rows) + 1,
                "organization": a.organization,
                "city": a.city,
                "postal_code": a.postal_code,
                "region": a.region,
                "country": a.country,
                "subject": subject,
            }
        )
    return rows
