"""OpenAlex works snapshot (JSON lines, gzipped) -> canonical publications.

One row per (work, distinct institution) in authorship order. Institutions carry a country
code in the work; an optional institutions file (OpenAlex ``institutions`` entity, JSON lines)
adds city, region and coordinates. Files are told apart by their first record.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stclusters.formats.base import (
    BROKEN,
    ConversionReport,
    FormatError,
    canonical_output,
    check_layer,
    finish,
    open_text,
)

log = logging.getLogger(__name__)

FORMAT = "openalex"
# OpenAlex "article" covers journal articles (reviews are "review", preprints "preprint");
# paratext (covers, tables of contents) is flagged separately and excluded too.
COUNTED_TYPES = frozenset({"article"})
_PREFIX = "https://openalex.org/"


@dataclass(frozen=True)
class Place:
    city: str
    region: str
    country: str
    latitude: str
    longitude: str


def short_id(value: Any) -> str:
    text = str(value or "").strip()
    return text[len(_PREFIX) :] if text.startswith(_PREFIX) else text


def file_kind(path: Path) -> str:
    """'works' or 'institutions', from the first record of the file."""
    with open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                first = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FormatError(f"{path}: line {number}: not JSON lines: {exc}") from exc
            if not isinstance(first, dict):
                break
            if "authorships" in first or short_id(first.get("id")).startswith("W"):
                return "works"
            if "geo" in first or short_id(first.get("id")).startswith("I"):
                return "institutions"
            break
    raise FormatError(f"{path}: neither OpenAlex works nor institutions (no authorships/geo in record 1)")


def load_institutions(path: Path, report: ConversionReport) -> dict[str, Place]:
    places: dict[str, Place] = {}
    with open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                geo = record.get("geo") or {}
                places[short_id(record["id"])] = Place(
                    city=str(geo.get("city") or ""),
                    region=str(geo.get("region") or ""),
                    country=str(geo.get("country_code") or record.get("country_code") or ""),
                    latitude=_number(geo.get("latitude")),
                    longitude=_number(geo.get("longitude")),
                )
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                report.quarantine(path, number, "id", f"unusable institution record: {exc}")
    log.info("%s: %d institutions with places", path, len(places))
    return places


def _number(value: Any) -> str:
    return "" if value is None or isinstance(value, bool) else repr(float(value))


def convert(paths: list[Path], layer: str, out_csv_gz: Path) -> ConversionReport:
    check_layer(FORMAT, layer, ("publications",))
    report = ConversionReport(FORMAT, layer, list(paths), out_csv_gz)
    kinds = {path: file_kind(path) for path in paths}
    places: dict[str, Place] = {}
    for path in (p for p in paths if kinds[p] == "institutions"):
        places.update(load_institutions(path, report))
    works = [p for p in paths if kinds[p] == "works"]
    if not works:
        raise FormatError(f"no OpenAlex works file among {[str(p) for p in paths]}")
    with canonical_output(out_csv_gz, layer) as writer:
        for path in works:
            with open_text(path) as fh:
                for number, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    report.records_read += 1
                    rows = _work_rows(path, number, line, places, report)
                    for row in rows:
                        writer.write(row)
                    report.documents_written += bool(rows)
        report.rows_written = writer.rows
    return finish(report)


def _work_rows(
    path: Path, number: int, line: str, places: dict[str, Place], report: ConversionReport
) -> list[dict[str, object]]:
    q = report.quarantine
    if BROKEN in line:
        q(path, number, "*", "broken encoding: undecodable bytes")
        return []
    try:
        work = json.loads(line)
    except json.JSONDecodeError as exc:
        q(path, number, "*", f"invalid JSON: {exc.msg}", line[:80])
        return []
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
    for authorship in work.get("authorships") or []:
        for inst in (authorship or {}).get("institutions") or []:
            key = short_id(inst.get("id")) or f"{inst.get('display_name')}|{inst.get('country_code')}"
            if key in seen:
                continue
            seen.add(key)
            place = places.get(short_id(inst.get("id")))
            country = str(inst.get("country_code") or (place.country if place else "") or "").upper()
            if len(country) != 2 or not country.isalpha():
                q(path, number, "country_code", "unknown country", f"{key} {country}".strip())
                continue
            rows.append(
                {
                    "article_id": work_id,
                    "publication_year": str(year),
                    "document_type": "Article",
                    "address_seq": len(rows) + 1,
                    "organization": inst.get("display_name") or "",
                    "city": place.city if place else "",
                    "region": place.region if place else "",
                    "country": country,
                    "latitude": place.latitude if place else "",
                    "longitude": place.longitude if place else "",
                    "subject": subject,
                }
            )
    if not seen:
        q(path, number, "authorships", "no institution in any authorship", work_id)
    return rows


def _subject(work: dict[str, Any]) -> str:
    field = ((work.get("primary_topic") or {}).get("field") or {}).get("display_name")
    if field:
        return str(field)
    top = [c.get("display_name") for c in work.get("concepts") or [] if c.get("level") == 0]
    return ";".join(str(t) for t in top if t)
