"""Web of Science exports (field-tagged plain text and tab-delimited) -> canonical publications.

One canonical row per C1 address of each counted record (RP address when C1 is empty). Rules
(document types, years, address parsing) are documented in docs/data-formats.md.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import gzip
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stclusters.load.formats.addresses import c1_entries, normalise_entry, split_glued
from stclusters.load.formats.base import (
    ADDRESS,
    BROKEN,
    ConversionReport,
    FormatError,
    canonical_output,
    capped_lines,
    capped_readline,
    check_layer,
    finish,
    is_gzip,
    open_text,
    peek_bytes,
    readable,
)
from stclusters.load.formats.c1 import Address, AddressError, parse_c1
from stclusters.schema import COUNTED_DOCUMENT_TYPES

log = logging.getLogger(__name__)

FORMAT = "wos"
# The GII counts original research articles. WoS tags an article that was also presented at a
# conference "Article; Proceedings Paper" and early-access ones "Article; Early Access": the
# first type decides: it must be one of the counted types (stclusters.schema). Reviews,
# proceedings papers, meeting abstracts, letters... are excluded.
_YEAR = re.compile(r"\b(1[89]\d{2}|20\d{2})\b")
_RP_SPLIT = re.compile(r"\((?:corresponding|reprint) author\),\s*")
# Old (ISI-era) exports write the reprint line without a marker: "WANG, XF, UNIV WASHINGTON, ...".
_RP_NAME = re.compile(r"^\s*[^,;()\[\]]+,\s*[A-Z][A-Za-z.\- ]{0,5},\s*(?=\S)")
_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9]) ?(.*)$")
# The fields the method reads: undecodable bytes elsewhere (CR, AB, TI...) do not matter.
RECORD_TAGS = ("UT", "DT", "PY", "EY", "EA", "WC", "SC")
ADDRESS_TAGS = ("C1", "RP")
# Without these a file cannot give a single counted row: refused whole, naming what is missing.
REQUIRED_TAGS = ("UT", "DT")
YEAR_TAGS = ("PY", "EY", "EA")  # the year: PY, or the early-access year


@dataclass
class Record:
    """One exported record: tag -> list of (line number, value) in file order."""

    file: Path
    line: int
    fields: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    broken: tuple[int, str] | None = None  # first (line, tag) of a used record field with undecodable bytes
    field_count_error: str | None = None
    malformed: int | None = None  # first line that is neither a tag nor a continuation

    def text(self, tag: str) -> str:
        return " ".join(v for _, v in self.fields.get(tag, [])).strip()

    def values(self, tag: str) -> list[tuple[int, str]]:
        return [(n, v.strip()) for n, v in self.fields.get(tag, []) if v.strip()]


# --- reading ---------------------------------------------------------------------------------
def detect_encoding(path: Path) -> str:
    """The file's text encoding: UTF-16 (BOM, or every other byte NUL), UTF-8 (with or without
    BOM), or Windows-1252 when the bytes are not UTF-8 at all (no valid multi-byte sequence and
    more than one invalid one: a "Win" export re-saved, or an old Latin-1 file). A UTF-8 file
    with a stray bad byte stays UTF-8: the record holding it is dealt with field by field."""
    head = peek_bytes(path, 4096)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    # UTF-16 LE without BOM: every other byte of ASCII text is NUL.
    if len(head) >= 8 and head[1::2].count(0) > len(head) // 4:
        return "utf-16-le"
    if len(head) >= 8 and head[0::2].count(0) > len(head) // 4:
        return "utf-16-be"
    stat = path.stat()
    valid, invalid = _utf8_sequences(path, stat.st_size, stat.st_mtime_ns)
    if invalid > 1 and valid == 0:
        log.warning(
            "%s: not UTF-8 (%d undecodable bytes, no UTF-8 character): read as Windows-1252", path, invalid
        )
        return "cp1252"
    return "utf-8"


@functools.lru_cache(maxsize=64)
def _utf8_sequences(path: Path, size: int, mtime_ns: int) -> tuple[int, int]:
    """(non-ASCII characters decoded, bytes that are not UTF-8) over the whole file; cached by
    size and modification time, as each file is opened more than once."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    valid = invalid = 0
    with readable(path), gzip.open(path, "rb") if is_gzip(path) else open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            text = decoder.decode(chunk)
            if chunk.isascii():
                continue
            for ch in text:
                if ch > "\x7f":
                    if "\udc80" <= ch <= "\udcff":
                        invalid += 1
                    else:
                        valid += 1
    return valid, invalid


def variant(path: Path) -> str:
    """'plain' (field-tagged) or 'tab' (tab-delimited); FormatError when neither."""
    first = _first_line(path)
    if first.startswith(("FN ", "VR ", "PT ")):
        return "plain"
    tags = first.rstrip("\r\n").split("\t")
    if tags and tags[0] == "PT" and "UT" in tags:
        return "tab"
    hint = ""
    if BROKEN in first or "\x00" in first:
        hint = (
            " - the bytes do not decode as UTF-8 or UTF-16: the file's encoding is the problem; "
            "export again as 'Tab-delimited (UTF-8)' or plain text, or convert the file to UTF-8"
        )
    raise FormatError(f"{path}: line 1: not a Web of Science export (starts {first[:40]!r}){hint}")


def _first_line(path: Path) -> str:
    with readable(path), open_text(path, detect_encoding(path)) as fh:
        return capped_readline(fh, path, 1).lstrip("\ufeff")


def read_records(path: Path) -> Iterator[Record]:
    kind = variant(path)
    return _read_plain(path) if kind == "plain" else _read_tab(path)


def _read_plain(path: Path) -> Iterator[Record]:
    record: Record | None = None
    tag = ""
    seen: set[str] = set()
    ended = False  # the EF line WoS writes at the end of every export
    with readable(path), open_text(path, detect_encoding(path)) as fh:
        for number, raw in capped_lines(fh, path):
            line = raw.rstrip("\r\n").lstrip("\ufeff")
            if not line.strip():
                continue
            if line.startswith("   "):
                value = line[3:]
            else:
                m = _TAG_LINE.match(line)
                if not m:
                    if record is not None and record.malformed is None:
                        record.malformed = number
                    continue
                tag, value = m.group(1), m.group(2)
                ended = tag == "EF"
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
            if value.strip():
                seen.add(tag)
            if BROKEN in value and record.broken is None and tag in RECORD_TAGS:
                record.broken = (number, tag)
            record.fields.setdefault(tag, []).append((number, value))
    if record is not None:
        raise FormatError(
            f"{path}: line {record.line}: the file ends inside this record (no ER, no EF): the export "
            "or its copy was cut; export or download it again"
        )
    _check_fields(path, seen)
    if not ended and seen:
        log.warning("%s: no EF line at the end: the export may have been cut after a whole record", path)


def _check_fields(path: Path, tags: set[str], empty_columns: bool = False) -> None:
    """Refuse an export that lacks a field the method needs, naming it (not "no data rows" later)."""
    missing = [t for t in REQUIRED_TAGS if t not in tags]
    if not tags & set(YEAR_TAGS):
        missing.append("PY")
    if not tags & set(ADDRESS_TAGS):
        missing.append("C1 (or RP)")
    if missing:
        what = (
            f"the {', '.join(missing)} columns are empty in every row"
            if empty_columns
            else f"no {', '.join(missing)} field in the export"
        )
        raise FormatError(
            f"{path}: {what}: export 'Full Record' (the addresses C1/RP, document type DT, year PY "
            "and accession number UT are needed)"
        )


def _read_tab(path: Path) -> Iterator[Record]:
    filled: set[str] = set()  # columns with a value in at least one row
    with readable(path), open_text(path, detect_encoding(path)) as fh:
        header: list[str] = []
        for number, raw in capped_lines(fh, path):
            line = raw.rstrip("\r\n").lstrip("\ufeff") if number == 1 else raw.rstrip("\r\n")
            if number == 1:
                header = line.split("\t")
                while header and header[-1] == "":
                    header.pop()
                _check_fields(path, set(header))
                continue
            if not line.strip():
                continue
            cells = line.split("\t")
            # WoS ends every row with a tab: one empty cell beyond the header is normal.
            while len(cells) > len(header) and cells[-1] == "":
                cells.pop()
            record = Record(path, number)
            if len(cells) < len(header) and not raw.endswith(("\n", "\r")):
                raise FormatError(
                    f"{path}: line {number}: the file ends inside this row ({len(cells)} of {len(header)} "
                    "fields, no line end): the export or its copy was cut; export or download it again"
                )
            if len(cells) != len(header):
                record.field_count_error = f"{len(cells)} fields, header has {len(header)}"
                yield record
                continue
            for tag, cell in zip(header, cells, strict=True):
                if BROKEN in cell and record.broken is None and tag in RECORD_TAGS:
                    record.broken = (number, tag)
                if tag == "C1":
                    record.fields[tag] = [(number, v) for v in c1_entries(cell)]
                elif cell:
                    record.fields[tag] = [(number, cell)]
                if cell.strip():
                    filled.add(tag)
            yield record
    # the columns can be there and empty in every row (a reduced-field export saved as tab)
    _check_fields(path, filled, empty_columns=True)


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
    """The reprint/corresponding addresses: 'Name (corresponding author), Address.; Name ...';
    in old exports without the marker, 'NAME, INITIALS, Address.'."""
    out = []
    for number, value in record.values("RP"):
        pieces = _RP_SPLIT.split(value)
        if len(pieces) == 1:
            name = _RP_NAME.match(value)
            pieces = ["", value[name.end() :]] if name else []
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
    if record.malformed:
        q(record.file, record.malformed, "*", "malformed line: neither a field tag nor a continuation")
        return []
    if record.broken:
        line, tag = record.broken
        q(record.file, line, tag, "broken encoding: undecodable bytes")
        return []
    doc_type = record.text("DT")
    first_type = doc_type.split(";")[0].strip()
    if first_type not in COUNTED_DOCUMENT_TYPES:
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
    entries = record.values("C1")
    source_tag = "C1"
    if not entries:
        entries, source_tag = rp_addresses(record), "RP"
    if not entries:
        q(record.file, record.line, "C1", "no address: C1 and RP empty", article_id)
        return []
    addresses = _addresses(record, entries, source_tag, report)
    if not addresses:
        return []  # quarantined as a record
    subject = _subjects(record)
    return [
        {
            "article_id": article_id,
            "publication_year": year,
            "document_type": first_type,
            "address_seq": seq,
            "organization": a.organization,
            "city": a.city,
            "postal_code": a.postal_code,
            "region": a.region,
            "country": a.country,
            "subject": subject,
        }
        for seq, a in enumerate(addresses, start=1)
    ]


def _addresses(
    record: Record, entries: list[tuple[int, str]], tag: str, report: ConversionReport
) -> list[Address]:
    """The record's addresses, glued ones split. An address whose country cannot be read is
    quarantined: as an address when the record's other addresses are written, as the record
    when none is. One whose place holds undecodable bytes is kept with its country only
    (unlocated), so it keeps its share of the record."""
    out: list[Address] = []
    lost: list[tuple[int, str, str]] = []  # (line, reason, value)
    for number, value in entries:
        pieces, suspect = split_glued(value)
        report.addresses_read += len(pieces)
        if suspect:
            lost.append((number, "glued addresses: cannot split", value))
            continue
        for entry in map(normalise_entry, pieces):
            try:
                a = parse_c1(entry)
            except AddressError as exc:
                reason = (
                    "broken encoding: undecodable bytes"
                    if BROKEN in exc.value
                    else f"{exc.reason}: {exc.value}"
                )
                lost.append((number, reason, entry))
                continue
            if BROKEN in entry:
                a = dataclasses.replace(
                    a,
                    **{
                        f: ""
                        for f in ("organization", "city", "postal_code", "region")
                        if BROKEN in getattr(a, f)
                    },
                )
                report.unlocated["broken encoding"] += 1
            out.append(a)
    if lost and not out:
        number, reason, value = lost[0]
        report.quarantine(record.file, number, tag, reason, value)
    elif lost:
        for number, reason, value in lost:
            report.quarantine(record.file, number, tag, reason, value, unit=ADDRESS)
        report.records_with_lost_addresses += 1
    return out
