"""Geocoded first filings (de Rassenfosse, Kozak and Seliger 2019): location rows to canonical patents."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from stclusters.load.formats import convert
from stclusters.load.formats.base import FormatError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "geopat" / "geoc_inv.txt"


def rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_locations_to_canonical_patents(tmp_path: Path) -> None:
    out = tmp_path / "patents.csv.gz"
    report = convert("auto", [FIXTURE], "patents", out)
    got = rows(out)
    assert (report.records_read, report.documents_written, report.rows_written) == (25, 14, 19)
    first = got[0]
    assert first == {
        "application_id": "487100001",
        "publication_date": "2019-03-14",  # the priority date
        "inventor_seq": "1",
        "city": "Minato",
        "postal_code": "",
        "region": "Tokyo",
        "country": "JP",  # from the GADM country name
        "latitude": "35.6581",
        "longitude": "139.7516",
        "applicant": "",
        "ipc": "",
    }
    by_doc: dict[str, list[dict[str, str]]] = {}
    for r in got:
        by_doc.setdefault(r["application_id"], []).append(r)
    # missing coordinates: city and region go to the geocoding cascade
    assert [(r["city"], r["latitude"]) for r in by_doc["487100004"]] == [
        ("Palo Alto", "37.4419"),
        ("San Jose", ""),
    ]
    assert by_doc["487100003"][0]["country"] == "DE" and by_doc["487100005"][1]["country"] == "KR"
    assert [(Path(q.file).name, q.line, q.field, q.reason.split(":")[0]) for q in report.quarantined] == [
        ("geoc_inv.txt", 19, "*", "wrong field count"),
        ("geoc_inv.txt", 21, "lat", "not a number in [-90, 90]"),
        ("geoc_inv.txt", 22, "name_0", "unknown country"),
        ("geoc_inv.txt", 23, "priority_date", "unparseable date"),
        ("geoc_inv.txt", 24, "appln_id", "missing application id"),
        ("geoc_inv.txt", 25, "lat", "one coordinate of two"),
    ]


def test_delimiter_and_year_only_dates(tmp_path: Path) -> None:
    src = tmp_path / "geoc_inv.csv"
    src.write_text(
        "appln_id|priority_year|city|lat|lng|name_0|name_1|coord_source\n"
        "1|2020|Seoul|37.5665|126.978|South Korea|Seoul|geolocalization\n",
        encoding="utf-8",
    )
    convert("geopat", [src], "patents", tmp_path / "o.csv.gz")
    assert [(r["publication_date"], r["country"]) for r in rows(tmp_path / "o.csv.gz")] == [
        ("2020-01-01", "KR")
    ]


def test_a_table_without_a_date_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "geoc_inv.txt"
    src.write_text("appln_id\tcity\tlat\tlng\tname_0\n1\tSeoul\t37.5\t127.0\tSouth Korea\n", encoding="utf-8")
    with pytest.raises(FormatError, match="no priority_date or priority_year") as err:
        convert("geopat", [src], "patents", tmp_path / "o.csv.gz")
    assert str(src) in str(err.value)


def test_table_header_longer_than_the_line_cap_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    """formats.tables reads only the header line in Python (DuckDB reads the rows): capped too."""
    import tracemalloc

    from stclusters.load.formats import tables
    from stclusters.load.formats.base import MAX_LINE_BYTES

    path = tmp_path / "geopat.csv"
    with open(path, "wb") as fh:
        fh.write(b"appln_id," + b"c" * (12 * 2**20) + b"\n1,2\n")
    tracemalloc.start()
    try:
        with pytest.raises(
            FormatError, match=rf"geopat\.csv: line 1: header line longer than {MAX_LINE_BYTES}"
        ):
            tables.header(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20
