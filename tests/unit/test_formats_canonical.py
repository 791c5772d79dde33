"""Canonical adapter: header checks, whole-file refusals and row quarantine."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from stclusters.load.formats import convert, sniff
from stclusters.load.formats.base import FormatError
from stclusters.schema import PATENT_COLUMNS, PUBLICATION_COLUMNS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "canonical"


def rows(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_valid_rows_pass_through_and_bad_rows_are_quarantined(tmp_path: Path) -> None:
    out = tmp_path / "patents.csv.gz"
    report = convert("canonical", [FIXTURES / "patents.csv"], "patents", out)
    got = rows(out)
    assert tuple(got[0]) == PATENT_COLUMNS
    assert [r[:3] for r in got[1:]] == [
        ["WO2021000001", "2021-01-07", "1"],
        ["WO2021000001", "2021-01-07", "2"],
        ["WO2021000002", "2021-01-14", "1"],
    ]
    assert got[3][6] == "DE"  # "Germany" normalised to its ISO code
    assert (report.records_read, report.documents_written, report.rows_written) == (9, 2, 3)
    assert [(q.line, q.field, q.reason) for q in report.quarantined] == [
        (5, "publication_date", "date must be YYYY-MM-DD"),
        (6, "inventor_seq", "must be an integer >= 1"),
        (7, "country", "unknown country"),
        (8, "application_id", "missing required value"),
        (9, "latitude", "not a number within ±90"),
        (10, "*", "wrong field count: 6, header has 11"),
    ]
    assert report.quarantine_share == pytest.approx(6 / 9)
    assert len((tmp_path / "patents.csv.gz.quarantine.csv").read_text().splitlines()) == 7


def test_gzip_input_and_deterministic_output(tmp_path: Path) -> None:
    for name in ("a.csv.gz", "b.csv.gz"):
        convert("auto", [FIXTURES / "publications.csv.gz"], "publications", tmp_path / name)
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
    got = rows(tmp_path / "a.csv.gz")
    assert tuple(got[0]) == PUBLICATION_COLUMNS and len(got) == 4


def test_columns_in_another_order_are_reordered(tmp_path: Path) -> None:
    src = tmp_path / "pubs.csv"
    cols = list(reversed(PUBLICATION_COLUMNS))
    cells = ["WOS:1", "2020", "Article", "1", "U", "Oslo", "", "", "NO", "", "", ""]
    values = dict(zip(PUBLICATION_COLUMNS, cells, strict=True))
    src.write_text(",".join(cols) + "\n" + ",".join(values[c] for c in cols) + "\n")
    convert("canonical", [src], "publications", tmp_path / "o.csv.gz")
    assert rows(tmp_path / "o.csv.gz")[1] == [values[c] for c in PUBLICATION_COLUMNS]


def test_wrong_header_names_the_missing_and_unexpected_columns(tmp_path: Path) -> None:
    bad = FIXTURES / "publications-bad-header.csv"
    with pytest.raises(FormatError) as err:
        convert("canonical", [bad], "publications", tmp_path / "o.csv.gz")
    message = str(err.value)
    assert str(bad) in message and "line 1" in message
    assert "missing columns ['organization', 'longitude']" in message
    assert "unexpected columns ['organisation']" in message
    assert not (tmp_path / "o.csv.gz").exists()


def test_patent_header_for_publications_layer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="missing columns"):
        convert("canonical", [FIXTURES / "patents.csv"], "publications", tmp_path / "o.csv.gz")


def test_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="empty file"):
        convert("canonical", [FIXTURES / "empty.csv"], "patents", tmp_path / "o.csv.gz")
    with pytest.raises(FormatError, match="empty file"):
        sniff(FIXTURES / "empty.csv")


def test_truncated_gzip_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "o.csv.gz"
    with pytest.raises(FormatError, match=r"publications-truncated\.csv\.gz: truncated or corrupt gzip"):
        convert("canonical", [FIXTURES / "publications-truncated.csv.gz"], "publications", out)
    assert list(tmp_path.iterdir()) == []


def test_broken_encoding_row_is_quarantined(tmp_path: Path) -> None:
    src = tmp_path / "pubs.csv"
    header = ",".join(PUBLICATION_COLUMNS).encode()
    src.write_bytes(
        header + b"\nWOS:1,2020,Article,1,Univ,S\xe3o Paulo,,,BR,,,\nWOS:2,2020,Article,1,Univ,Lima,,,PE,,,\n"
    )
    report = convert("canonical", [src], "publications", tmp_path / "o.csv.gz")
    assert [(q.line, q.field, q.reason) for q in report.quarantined] == [
        (2, "city", "broken encoding: undecodable bytes")
    ]
    assert report.rows_written == 1


def test_quarantine_line_is_the_file_line_where_a_multiline_record_starts(tmp_path: Path) -> None:
    src = tmp_path / "pubs.csv"
    src.write_text(
        ",".join(PUBLICATION_COLUMNS)
        + "\n"
        + 'WOS:1,2020,Article,1,"Univ\nof\nOslo",Oslo,,,NO,,,\n'  # lines 2-4
        + "WOS:2,20x0,Article,1,Univ,Oslo,,,NO,,,\n"  # line 5: bad year
        + 'WOS:3,2020,Article,1,"A\nB",Oslo,,,Atlantis,,,\n'  # lines 6-7: unknown country
    )
    report = convert("canonical", [src], "publications", tmp_path / "o.csv.gz")
    assert [(q.line, q.field) for q in report.quarantined] == [(5, "publication_year"), (6, "country")]
    assert report.rows_written == 1


def test_one_invalid_utf8_byte_in_an_early_row_quarantines_that_row_not_the_file(tmp_path: Path) -> None:
    src = tmp_path / "pubs.csv.gz"
    rows = [f"WOS:{i},2020,Article,1,Univ,Oslo,,,NO,,," for i in range(1, 300)]
    body = (",".join(PUBLICATION_COLUMNS) + "\n" + "\n".join(rows) + "\n").encode()
    src.write_bytes(
        gzip.compress(body.replace(b"WOS:2,2020,Article,1,Univ", b"WOS:2,2020,Article,1,U\xffniv"))
    )
    report = convert("canonical", [src], "publications", tmp_path / "o.csv.gz")
    assert [(q.line, q.reason) for q in report.quarantined] == [(3, "broken encoding: undecodable bytes")]
    assert report.rows_written == 298


def test_a_line_longer_than_the_cap_is_refused_without_reading_it(tmp_path, monkeypatch) -> None:
    """Issue 18, item 5: the canonical adapter reads capped lines, like the others."""
    import gzip

    from stclusters.load.formats import base, canonical
    from stclusters.schema import COLUMNS

    monkeypatch.setattr(base, "MAX_LINE_BYTES", 1 << 16)
    path = tmp_path / "patents.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(",".join(COLUMNS["patents"]) + "\n" + "x" * (1 << 20))
    with pytest.raises(base.LineTooLong, match=r"line 2: line longer than 65536"):
        canonical.convert([path], "patents", tmp_path / "out.csv.gz")
