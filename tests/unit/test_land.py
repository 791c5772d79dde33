"""The load step on real DuckDB files: typed rows, quarantine with file/line/field/reason, atomicity."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from stclusters.land import LoadError, check_header, layer_inputs, load_database
from stclusters.schema import PATENT_COLUMNS, PUBLICATION_COLUMNS

HEADER_P = ",".join(PATENT_COLUMNS)
HEADER_A = ",".join(PUBLICATION_COLUMNS)


def _write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    patents = _write(
        tmp_path / "patents.csv.gz",
        "\n".join(
            [
                HEADER_P,
                "WO2020000001,2020-03-05,1,Tokyo,100-0001,,JP,,,Acme Corp,G06F 3/01",
                "WO2020000001,2020-03-05,2,東京,,,jp,,,Acme Corp,G06F 3/01",
                "WO2020000002,2020-13-05,1,Tokyo,,,JP,,,Acme Corp,",  # bad date
                "WO2020000003,2020-03-05,1,Tokyo,,,XX,,,Acme Corp,",  # unknown country
                ",2020-03-05,1,Tokyo,,,JP,,,Acme Corp,",  # missing id
                "WO2020000004,2020-03-05,1,Tokyo,,JP,,,Acme Corp",  # one field short
                'WO2020000005,2020-03-05,1,"Munich, Bavaria",,,DE,48.14,11.58,Acme,"B60K;B62D"',
                "WO2020000006,2020-03-05,1,Munich,,,DE,148.14,11.58,Acme,",  # latitude out of range
            ]
        )
        + "\n",
    )
    articles = _write(
        tmp_path / "publications.csv",
        "\n".join(
            [
                HEADER_A,
                "WOS:1,2019,Article,1,Univ Tokyo,Tokyo,,,JP,,,Physics",
                "WOS:1,2019,Article,2,TU Munich,München,,,DE,,,Physics",
                "WOS:2,20x9,Article,1,Univ Tokyo,Tokyo,,,JP,,,Physics",  # bad year
            ]
        )
        + "\n",
    )
    return {"patents": patents, "publications": articles}


def _load(db: Path, files: dict[str, Path], **kw) -> dict:
    return load_database(
        db,
        layer_inputs({k: [v] for k, v in files.items()}),
        {},
        max_quarantine_share=kw.pop("share", 1.0),
        **kw,
    )


def test_rows_are_typed_and_bad_rows_quarantined_with_line_field_reason(tmp_path: Path, files) -> None:
    db = tmp_path / "edition.duckdb"
    stats = _load(db, files)
    assert stats[str(files["patents"])]["rows_loaded"] == 3
    assert stats[str(files["patents"])]["rows_quarantined"] == 5
    con = duckdb.connect(str(db), read_only=True)
    q = con.sql(
        "select layer, source_line, field, reason from raw.quarantine order by layer, source_line"
    ).fetchall()
    assert ("patents", 4, "publication_date", "unparseable date") in q
    assert ("patents", 5, "country", "unknown country code") in q
    assert ("patents", 6, "application_id", "missing id") in q
    assert any(r[1] == 7 and "missing columns" in r[3] for r in q)
    assert ("patents", 9, "latitude", "latitude not a number in [-90, 90]") in q
    assert ("publications", 4, "publication_year", "unparseable year") in q
    rows = con.sql(
        "select application_id, inventor_seq, city, country, latitude, ipc, source_line "
        "from raw.patents order by source_line"
    ).fetchall()
    assert rows[0] == ("WO2020000001", 1, "Tokyo", "JP", None, "G06F 3/01", 2)
    assert rows[1][3] == "JP"  # upper-cased
    assert rows[2] == ("WO2020000005", 1, "Munich, Bavaria", "DE", 48.14, "B60K;B62D", 8)
    assert con.sql("select publication_year from raw.publications").fetchall() == [(2019,), (2019,)]


def test_quarantine_above_threshold_fails_naming_file_and_reasons_and_keeps_old_db(
    tmp_path: Path, files
) -> None:
    db = tmp_path / "edition.duckdb"
    _load(db, files)
    before = db.read_bytes()
    with pytest.raises(LoadError) as err:
        _load(db, files, share=0.01)
    message = str(err.value)
    assert str(files["patents"]) in message
    assert "above max_quarantine_share" in message and "unparseable date" in message
    assert db.read_bytes() == before  # the previous database is untouched
    assert not list(tmp_path.glob("*.loading-*"))  # no half-written file left


def test_wrong_header_and_empty_file_are_clear_errors(tmp_path: Path) -> None:
    wrong = _write(tmp_path / "p.csv", HEADER_P.replace("country", "nation") + "\n")
    with pytest.raises(
        LoadError,
        match=r"p.csv: line 1 \(header\).*missing columns \['country'\].*unexpected columns \['nation'\]",
    ):
        check_header(wrong, "patents")
    empty = _write(tmp_path / "e.csv", "")
    with pytest.raises(LoadError, match=r"e\.csv: file is empty"):
        check_header(empty, "patents")
    broken = tmp_path / "t.csv.gz"
    broken.write_bytes(gzip.compress((HEADER_P + "\n").encode())[:10])
    with pytest.raises(LoadError, match=r"t\.csv\.gz: cannot read the header line"):
        check_header(broken, "patents")


def test_empty_layer_fails_the_load(tmp_path: Path) -> None:
    p = _write(tmp_path / "p.csv", HEADER_P + "\n")
    a = _write(tmp_path / "a.csv", HEADER_A + "\nWOS:1,2019,Article,1,U,Tokyo,,,JP,,,X\n")
    with pytest.raises(LoadError, match=r"p\.csv: no data rows"):
        _load(tmp_path / "x.duckdb", {"patents": p, "publications": a})


def test_file_lines_of_good_quarantined_and_rejected_rows_in_a_larger_file(tmp_path: Path) -> None:
    """The line of a row is computed from its position in raw.<layer>_rows. 300,000 rows, each
    naming its own line in its id; every 997th has an unknown country and is quarantined with its
    line; a malformed line, rejected by DuckDB, shifts the numbering of the rows after it. (That
    file order survives DuckDB's parallel read of a world-scale file is checked in
    tests/e2e/test_load_lines.py.)"""
    N = 300_000
    lines = [HEADER_A]
    for line in range(2, N + 2):
        country = "XX" if line % 997 == 0 else "JP"
        if line == 150_000:
            lines.append(f"WOS:{line},2019,Article,1,Univ,Tokyo,,JP")  # too few fields: rejected
            continue
        lines.append(f"WOS:{line},2019,Article,1,Univ,Tokyo,,,{country},,,Physics")
    path = _write(tmp_path / "publications.csv.gz", "\n".join(lines) + "\n")
    db = tmp_path / "edition.duckdb"
    load_database(db, layer_inputs({"publications": [path]}), {}, max_quarantine_share=1.0, threads=2)
    con = duckdb.connect(str(db), read_only=True)
    wrong = con.execute(
        "select count(*) from raw.publications where source_line <> cast(substr(article_id, 5) as bigint)"
    ).fetchall()[0][0]
    assert con.execute("select count(*) from raw.publications").fetchall()[0][0] == N - 1 - (N + 1) // 997
    assert wrong == 0
    quarantined = con.sql(
        "select source_line, field, reason from raw.quarantine order by source_line"
    ).fetchall()
    assert [q[0] for q in quarantined] == sorted([*range(997, N + 2, 997), 150_000])
    by_line = {q[0]: q for q in quarantined}
    assert by_line[997][1:] == ("country", "unknown country code")
    assert "missing columns" in by_line[150_000][2]
