"""OpenAlex adapter on a works snapshot part and an institutions file in the real shape."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from stclusters.formats import convert, openalex
from stclusters.formats.base import FormatError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openalex"
WORKS = FIXTURES / "works-part_000.jsonl.gz"
INSTITUTIONS = FIXTURES / "institutions-part_000.jsonl.gz"


def rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_works_with_institutions_file(tmp_path: Path) -> None:
    out = tmp_path / "p.csv.gz"
    report = convert("auto", [WORKS, INSTITUTIONS], "publications", out)
    assert report.records_read == 9
    assert report.excluded == Counter({"type review": 1, "type preprint": 1, "paratext": 1})
    assert [(q.line, q.field, q.reason) for q in report.quarantined] == [
        (4, "authorships", "no institution in any authorship"),
        (5, "publication_year", "unparseable year"),
        (6, "*", "invalid JSON: Expecting value"),
        (7, "country_code", "unknown country"),
    ]
    got = rows(out)
    first = [r for r in got if r["article_id"] == "W3001000001"]
    # one row per distinct institution, in authorship order (Tokyo appears twice, counted once)
    assert [(r["address_seq"], r["organization"], r["city"], r["country"]) for r in first] == [
        ("1", "Massachusetts Institute of Technology", "Cambridge", "US"),
        ("2", "The University of Tokyo", "Tokyo", "JP"),
        ("3", "Huawei Technologies (China)", "Shenzhen", "CN"),
    ]
    assert (first[0]["latitude"], first[0]["longitude"], first[0]["region"]) == (
        "42.35982",
        "-71.09211",
        "Massachusetts",
    )
    assert {r["subject"] for r in first} == {"Engineering"}
    # country missing in the work, taken from the institution's geo
    [geo_only] = [r for r in got if r["article_id"] == "W3001000003"]
    assert (geo_only["country"], geo_only["city"]) == ("CH", "Zürich")
    # one institution without any country is quarantined, the other one is kept
    assert [r["organization"] for r in got if r["article_id"] == "W3001000007"] == ["ETH Zurich"]
    assert report.documents_written == 3 and len(got) == report.rows_written == 5


def test_without_institutions_file_city_stays_empty(tmp_path: Path) -> None:
    out = tmp_path / "p.csv.gz"
    report = convert("openalex", [WORKS], "publications", out)
    got = rows(out)
    assert {r["city"] for r in got} == {""}
    assert {r["article_id"] for r in got} == {"W3001000001", "W3001000007"}  # W..03 has no country then
    assert sum(q.reason == "unknown country" for q in report.quarantined) == 2


def test_institutions_only_is_refused(tmp_path: Path) -> None:
    assert openalex.file_kind(INSTITUTIONS) == "institutions"
    with pytest.raises(FormatError, match="no OpenAlex works file"):
        convert("openalex", [INSTITUTIONS], "publications", tmp_path / "o.csv.gz")


def test_broken_encoding_line_is_quarantined(tmp_path: Path) -> None:
    src = tmp_path / "works.jsonl"
    good = json.dumps(
        {
            "id": "https://openalex.org/W1",
            "publication_year": 2020,
            "type": "article",
            "authorships": [
                {
                    "institutions": [
                        {"id": "https://openalex.org/I1", "display_name": "U", "country_code": "BR"}
                    ]
                }
            ],
        }
    )
    src.write_bytes(
        good.encode() + b"\n" + good.replace("W1", "W2").replace('"U"', '"S\xe3o"').encode("latin-1") + b"\n"
    )
    report = convert("openalex", [src], "publications", tmp_path / "o.csv.gz")
    assert [(q.line, q.reason) for q in report.quarantined] == [(2, "broken encoding: undecodable bytes")]
    assert report.rows_written == 1
