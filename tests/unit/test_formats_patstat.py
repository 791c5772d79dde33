"""PATSTAT adapter: tls201/206/207/209 exports joined into canonical rows of PCT applications."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from stclusters.load.formats import convert, patstat
from stclusters.load.formats.base import FormatError
from stclusters.load.formats.tables import header

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "patstat"
ALL = sorted(FIXTURES.glob("tls*.csv"))
LINKS = FIXTURES / "tls207_pers_appln.csv"


def rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    out = tmp_path_factory.mktemp("patstat") / "patents.csv.gz"
    report = convert("auto", ALL, "patents", out)
    by_doc: dict[str, list[dict[str, str]]] = {}
    for r in rows(out):
        by_doc.setdefault(r["application_id"], []).append(r)
    return report, by_doc


def test_tables_are_recognised_by_header() -> None:
    assert {p.name: patstat.table_of(header(p)[0]) for p in ALL} == {
        "tls201_appln.csv": "appln",
        "tls206_person.csv": "person",
        "tls207_pers_appln.csv": "pers_appln",
        "tls209_appln_ipc.csv": "ipc",
    }


def test_only_published_pct_applications_are_documents(converted) -> None:
    report, by_doc = converted
    assert sorted(by_doc) == [
        "WOCN2020123456",
        "WOEP2020051234",
        "WOIB2021000001/528000110",  # one number, two receiving offices: kept apart by appln_id
        "WOIB2021000001/528000111",
        "WOJP2019012345",
        "WOJP2022003456",
        "WOKR2020012345",
        "WONL2021050123",
        "WOUS2019045678",
    ]
    assert report.documents_written == 9
    # the EP regional phase (internat_appln_id -> the WO application) and a US filing are not counted
    assert report.excluded["not a PCT international application (appln_kind not W)"] == 2
    assert report.excluded["PCT application not published (earliest_publn_date 9999-12-31)"] == 1
    # dated by the international publication, not the filing
    assert {r["publication_date"] for r in by_doc["WOJP2019012345"]} == {"2020-01-02"}


def test_duplicated_persons_are_one_inventor(converted) -> None:
    report, by_doc = converted
    # the same invt_seq_nr twice (a name in Latin and Japanese script, the latter without country)
    assert [(r["inventor_seq"], r["city"]) for r in by_doc["WOJP2019012345"]] == [
        ("1", "Tokyo"),
        ("2", "Yokohama"),
    ]
    # the same psn_id at two sequence numbers
    assert [r["city"] for r in by_doc["WOCN2020123456"]] == ["Shenzhen"]
    assert report.excluded["same inventor twice (same invt_seq_nr)"] == 1
    assert report.excluded["same person twice (same psn_id)"] == 1


def test_addresses_nuts_applicant_and_ipc(converted) -> None:
    _, by_doc = converted
    us = by_doc["WOUS2019045678"]
    assert [(r["city"], r["postal_code"], r["region"], r["country"]) for r in us] == [
        ("Palo Alto", "94301", "CA", "US"),
        ("San Jose", "95134", "CA", "US"),
    ]
    assert us[0]["applicant"] == "JONES, MARK"  # an inventor who is also the applicant (psn_name)
    ep = by_doc["WOEP2020051234"]
    # an inventor with no address keeps the NUTS 3 region only: left at region level
    assert [(r["city"], r["region"]) for r in ep] == [("München", "DE212"), ("", "DE21H")]
    assert ep[0]["applicant"] == "SIEMENS AKTIENGESELLSCHAFT"
    assert by_doc["WOJP2019012345"][0]["ipc"] == "H01L 31/0236;H01L 31/18"  # ipc_position F first
    assert by_doc["WONL2021050123"][0]["postal_code"] == "5656 AE"


def test_quarantine_names_file_line_and_field(converted) -> None:
    report, _ = converted
    got = [(Path(q.file).name, q.line, q.field, q.reason.split(":")[0]) for q in report.quarantined]
    assert got == [
        ("tls201_appln.csv", 9, "earliest_publn_date", "unparseable date"),
        ("tls207_pers_appln.csv", 14, "person_ctry_code", "no country ('--')"),
        ("tls207_pers_appln.csv", 20, "person_id", "person not in tls206_person"),
        ("tls207_pers_appln.csv", 22, "*", "wrong field count"),
        ("tls207_pers_appln.csv", 25, "person_ctry_code", "no country (empty)"),
        ("tls207_pers_appln.csv", 26, "invt_seq_nr", "not an integer"),
    ]
    assert report.records_read == 20 and report.rows_written == 12


def test_required_tables(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"missing: \['tls206_person'\]"):
        convert("patstat", [p for p in ALL if "206" not in p.name], "patents", tmp_path / "o.csv.gz")


def test_ipc_is_optional(tmp_path: Path) -> None:
    report = convert("patstat", [p for p in ALL if "209" not in p.name], "patents", tmp_path / "o.csv.gz")
    assert report.rows_written == 12
    assert {r["ipc"] for r in rows(tmp_path / "o.csv.gz")} == {""}


def test_bigquery_style_capitals_and_quotes(tmp_path: Path) -> None:
    for path in ALL:
        first, rest = path.read_text(encoding="utf-8").split("\n", 1)
        quoted = ",".join(f'"{c.upper()}"' for c in first.split(","))
        (tmp_path / path.name).write_text(quoted + "\n" + rest, encoding="utf-8")
    report = convert("auto", sorted(tmp_path.glob("*.csv")), "patents", tmp_path / "out" / "o.csv.gz")
    assert report.rows_written == 12


def test_same_input_same_bytes(tmp_path: Path) -> None:
    convert("patstat", ALL, "patents", tmp_path / "a.csv.gz")
    convert("patstat", list(reversed(ALL)), "patents", tmp_path / "b.csv.gz")
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
