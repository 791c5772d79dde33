"""REGPAT adapter: the PCT inventor, IPC and applicant tables joined into canonical patent rows."""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import pytest

from stclusters.load.formats import convert, regpat
from stclusters.load.formats.base import FormatError
from stclusters.load.formats.tables import address_parts, header

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "regpat"
ALL = sorted(FIXTURES.glob("*.txt"))
INVENTORS = FIXTURES / "202301_PCT_Inv_reg.txt"


def rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_tables_are_recognised_by_header() -> None:
    assert {p.name: regpat.table_of(header(p)[0]) for p in ALL} == {
        "202301_PCT_App_reg.txt": "applicant",
        "202301_PCT_IPC.txt": "ipc",
        "202301_PCT_Inv_reg.txt": "inventor",
    }


def test_pct_inventors_to_canonical_patents(tmp_path: Path) -> None:
    out = tmp_path / "patents.csv.gz"
    report = convert("auto", ALL, "patents", out)
    got = rows(out)
    docs = [r["application_id"] for r in got]
    assert docs == sorted(docs) and len(set(docs)) == report.documents_written == 10
    first = got[0]
    assert first == {
        "application_id": "WO2019001001",
        "publication_date": "2019-01-01",  # REGPAT gives the filing year (app_year) only
        "inventor_seq": "1",
        "city": "Tokyo",
        "postal_code": "105-0014",
        "region": "JPD13",
        "country": "JP",
        "latitude": "",
        "longitude": "",
        "applicant": "SONY GROUP CORPORATION",
        "ipc": "H01L 31/0236;H01L 31/18",  # padded symbols collapsed, file order
    }
    by_doc: dict[str, list[dict[str, str]]] = {}
    for r in got:
        by_doc.setdefault(r["application_id"], []).append(r)
    # one inventor split over two regions (reg_share 0.5 each) is one inventor, in its first region
    assert [(r["inventor_seq"], r["region"]) for r in by_doc["WO2020002004"]] == [("1", "DE212")]
    assert report.excluded == {"inventor's further regions (rows merged by reg_share)": 1}
    # no city column value: the city comes from the address; the postcode letters stay with it
    assert [(r["city"], r["postal_code"]) for r in by_doc["WO2021003007"]] == [("Eindhoven", "5656 AE")]
    # a region code alone stays at region level (no centroid is invented)
    assert [(r["city"], r["postal_code"], r["region"]) for r in by_doc["WO2021003008"]] == [("", "", "ES300")]
    assert [r["inventor_seq"] for r in by_doc["WO2020002005"]] == ["1", "2", "3"]
    assert (report.records_read, report.rows_written) == (22, 15)
    assert [(q.line, q.field, q.reason.split(":")[0]) for q in report.quarantined] == [
        (15, "ctry_code", "unknown country"),
        (16, "reg_share", "not a share in (0, 1]"),
        (17, "appln_id", "application not in the IPC table (it gives the year)"),
        (21, "*", "wrong field count"),
        (22, "pct_nbr", "missing PCT number"),
        (23, "app_year", "unparseable year"),
    ]
    assert all(q.file == str(INVENTORS) for q in report.quarantined)
    assert report.quarantine_path.read_text().count("\n") == 7


def test_same_input_same_bytes(tmp_path: Path) -> None:
    convert("regpat", ALL, "patents", tmp_path / "a.csv.gz")
    convert("regpat", list(reversed(ALL)), "patents", tmp_path / "b.csv.gz")
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()


def test_applicants_are_optional(tmp_path: Path) -> None:
    report = convert("regpat", [INVENTORS, FIXTURES / "202301_PCT_IPC.txt"], "patents", tmp_path / "o.csv.gz")
    assert report.rows_written == 15
    assert {r["applicant"] for r in rows(tmp_path / "o.csv.gz")} == {""}


def test_the_ipc_table_is_required(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="ipc table missing"):
        convert("regpat", [INVENTORS], "patents", tmp_path / "o.csv.gz")


def test_epo_tables_are_refused(tmp_path: Path) -> None:
    epo = tmp_path / "202301_EPO_Inv_reg.txt"
    text = INVENTORS.read_text(encoding="utf-8").replace("pct_nbr", "app_nbr", 1)
    epo.write_text(text, encoding="utf-8")
    with pytest.raises(FormatError, match=r"EPO table .* counts PCT applications") as err:
        convert("regpat", [epo, FIXTURES / "202301_PCT_IPC.txt"], "patents", tmp_path / "o.csv.gz")
    assert str(epo) in str(err.value)


def test_capitalised_headers_are_read(tmp_path: Path) -> None:
    for path in ALL:
        lines = path.read_text(encoding="utf-8").split("\n", 1)
        (tmp_path / path.name).write_text(lines[0].title() + "\n" + lines[1], encoding="utf-8")
    report = convert("auto", sorted(tmp_path.glob("*.txt")), "patents", tmp_path / "out" / "o.csv.gz")
    assert report.rows_written == 15


def test_publications_are_refused(tmp_path: Path) -> None:
    shutil.copy(INVENTORS, tmp_path / "inv.txt")
    with pytest.raises(FormatError, match="holds patents"):
        convert("regpat", [tmp_path / "inv.txt"], "publications", tmp_path / "o.csv.gz")


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("Leopoldstr. 12, 80802 München", ["München", "80802", None]),
        ("12 Elm Street, Palo Alto, CA 94301", ["Palo Alto", "94301", "CA"]),
        ("High Tech Campus 5, 5656 AE Eindhoven", ["Eindhoven", "5656 AE", None]),
        ("1-2-3 Shiba, Minato-ku, Tokyo 105-0014", ["Tokyo", "105-0014", None]),
        ("Highfield, Southampton SO17 1BJ", ["Southampton", "SO17 1BJ", None]),
        ("Kista, Stockholm, Sweden", ["Stockholm", None, None]),
        ("Room 5, 100084", [None, "100084", None]),
        ("", [None, None, None]),
        (None, [None, None, None]),
    ],
)
def test_address_parts(address: str | None, parts: list[str | None]) -> None:
    assert address_parts(address) == parts
