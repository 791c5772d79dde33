"""PatentsView adapter: the g_* tables joined in DuckDB into canonical patent rows."""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import pytest

from stclusters.load.formats import convert, patentsview, tables
from stclusters.load.formats.base import FormatError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "patentsview"
ALL = sorted(FIXTURES.glob("g_*.tsv"))


def rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_tables_are_recognised_by_header() -> None:
    assert {p.name: patentsview.table_of(p) for p in ALL} == {
        "g_application.tsv": "application",
        "g_assignee_disambiguated.tsv": "assignee",
        "g_inventor_disambiguated.tsv": "inventor",
        "g_ipc_at_issue.tsv": "ipc",
        "g_location_disambiguated.tsv": "location",
        "g_patent.tsv": "patent",
    }


def test_join_to_canonical_patents(tmp_path: Path) -> None:
    out = tmp_path / "patents.csv.gz"
    report = convert("auto", ALL, "patents", out)
    got = rows(out)
    assert [(r["application_id"], r["inventor_seq"], r["city"], r["region"], r["country"]) for r in got] == [
        ("US11000001", "1", "Tokyo", "", "JP"),
        ("US11000001", "2", "Yokohama", "", "JP"),
        ("US11000002", "1", "San Jose", "CA", "US"),  # inventor_sequence 0 comes first, renumbered 1..n
        ("US11000002", "2", "Cupertino", "CA", "US"),
        ("USD900001", "1", "Seoul", "", "KR"),
    ]
    first = got[0]
    assert first["publication_date"] == "2021-03-02"
    assert (first["latitude"], first["longitude"]) == ("35.6895", "139.6917")
    assert first["applicant"] == "Sony Group Corporation"
    assert first["ipc"] == "H01L 31/0236;H01L 31/18"  # main group first, duplicate symbol once
    assert got[2]["applicant"] == "Apple Inc."  # assignee_sequence 0, not the file's first row
    assert got[4]["applicant"] == "Su Kim"  # an individual assignee
    assert (report.records_read, report.documents_written, report.rows_written) == (11, 3, 5)
    assert [(q.line, q.field, q.reason.split(":")[0]) for q in report.quarantined] == [
        (4, "location_id", "location not in g_location_disambiguated"),
        (7, "patent_date", "unparseable date"),
        (8, "patent_id", "patent not in g_patent"),
        (9, "*", "wrong field count"),
        (10, "patent_id", "missing patent id"),
        (11, "disambig_country", "unknown country"),
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the join database is gone


def test_optional_tables_can_be_left_out(tmp_path: Path) -> None:
    needed = [
        FIXTURES / n for n in ("g_inventor_disambiguated.tsv", "g_location_disambiguated.tsv", "g_patent.tsv")
    ]
    out = tmp_path / "p.csv.gz"
    convert("patentsview", needed, "patents", out)
    got = rows(out)
    assert len(got) == 5 and {r["applicant"] for r in got} == {""} and {r["ipc"] for r in got} == {""}


def test_missing_required_table(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"tables missing: \['location'\]"):
        convert(
            "patentsview",
            [FIXTURES / "g_inventor_disambiguated.tsv", FIXTURES / "g_patent.tsv"],
            "patents",
            tmp_path / "o.csv.gz",
        )


def test_raw_location_ids_go_through_location_not_disambiguated(tmp_path: Path) -> None:
    inv = tmp_path / "g_inventor_not_disambiguated.tsv"
    inv.write_text(
        "patent_id\tinventor_sequence\tinventor_id\traw_inventor_name_first\traw_inventor_name_last\t"
        "deceased_flag\trawlocation_id\n"
        "11000001\t0\tx1\tJiro\tTanaka\t0\traw-1\n"
    )
    raw = tmp_path / "g_location_not_disambiguated.tsv"
    raw.write_text(
        "rawlocation_id\tlocation_id\traw_city\traw_state\traw_country\nraw-1\tloc-yokohama\tYokohama\t\tJP\n"
    )
    for name in ("g_location_disambiguated.tsv", "g_patent.tsv"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    out = tmp_path / "out" / "p.csv.gz"
    convert(
        "patentsview",
        [inv, raw, tmp_path / "g_location_disambiguated.tsv", tmp_path / "g_patent.tsv"],
        "patents",
        out,
    )
    assert [(r["application_id"], r["city"]) for r in rows(out)] == [("US11000001", "Yokohama")]


def test_line_of_skips_rejected_lines() -> None:
    assert tables.line_of(0, []) == 2
    assert tables.line_of(7, [9]) == 10
    assert tables.line_of(2, [3, 4, 6]) == 7


def test_header_longer_than_the_line_cap_is_refused_fast_with_bounded_memory(tmp_path: Path) -> None:
    """A gzip of 160 MiB of zeros without a line end (issue 18 item 5): one bounded read, then a
    clear error naming the file, the line and the cap."""
    import tracemalloc

    from stclusters.load.formats.base import MAX_LINE_BYTES

    path = tmp_path / "g_inventor_disambiguated.tsv.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:
        for _ in range(160):
            fh.write(bytes(1 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match=rf"tsv\.gz: line 1: header line longer than {MAX_LINE_BYTES}"):
            patentsview.header(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20
