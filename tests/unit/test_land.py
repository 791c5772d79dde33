"""The load step on real DuckDB files: typed rows, quarantine with file/line/field/reason, atomicity."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import duckdb
import pytest

from stclusters.load.land import LoadError, check_header, layer_inputs, load_database
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


# --- issue 18: bounded reads, encoding, reordered headers, unread tails, file lines, leftovers ---
ROW_A = "WOS:{n},2019,Article,1,Univ Tokyo,Tokyo,,,JP,,,Physics"


def _articles(n: int) -> list[str]:
    return [ROW_A.format(n=i) for i in range(1, n + 1)]


def test_reordered_header_is_mapped_by_name(tmp_path: Path) -> None:
    cols = list(reversed(PUBLICATION_COLUMNS))
    values = dict(zip(PUBLICATION_COLUMNS, ROW_A.format(n=1).split(","), strict=True))
    path = _write(
        tmp_path / "publications.csv", ",".join(cols) + "\n" + ",".join(values[c] for c in cols) + "\n"
    )
    assert check_header(path, "publications") == cols
    db = tmp_path / "e.duckdb"
    load_database(db, layer_inputs({"publications": [path]}), {}, max_quarantine_share=0.0)
    con = duckdb.connect(str(db), read_only=True)
    assert con.sql(
        "select article_id, publication_year, city, country, subject, source_line from raw.publications"
    ).fetchall() == [("WOS:1", 2019, "Tokyo", "JP", "Physics", 2)]


def test_duplicated_column_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", HEADER_A + ",country\n")
    with pytest.raises(LoadError, match=r"header: duplicated columns \['country'\]"):
        check_header(path, "publications")


def test_one_invalid_utf8_byte_in_an_early_row_quarantines_that_row_only(tmp_path: Path) -> None:
    rows = _articles(200)
    body = (HEADER_A + "\n" + "\n".join(rows) + "\n").encode()
    bad = body.replace(b"WOS:3,2019,Article,1,Univ Tokyo", b"WOS:3,2019,Article,1,Univ \xffTokyo")
    path = tmp_path / "publications.csv.gz"
    path.write_bytes(gzip.compress(bad))
    db = tmp_path / "e.duckdb"
    stats = load_database(db, layer_inputs({"publications": [path]}), {}, max_quarantine_share=0.01)
    assert (stats[str(path)]["rows_loaded"], stats[str(path)]["rows_quarantined"]) == (199, 1)
    con = duckdb.connect(str(db), read_only=True)
    [(line, reason)] = con.sql("select source_line, reason from raw.quarantine").fetchall()
    assert line == 4 and "encoding" in reason


def test_invalid_utf8_in_the_header_refuses_the_file_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"\xffsecret-header-text\n1\n")
    with pytest.raises(LoadError, match=r"line 1 \(header\) is not valid UTF-8") as err:
        check_header(path, "patents")
    assert "secret" not in str(err.value)


def test_header_that_is_not_column_names_is_not_echoed(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", "root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(LoadError, match=r"not shown") as err:
        check_header(path, "patents")
    assert "/bin/bash" not in str(err.value)


def _gzip_with_zeros(path: Path, head: str, zero_mib: int) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(head.encode())
        block = b"\0" * (1 << 20)
        for _ in range(zero_mib):
            fh.write(block)
    return path


def test_header_read_is_bounded(tmp_path: Path) -> None:
    """256 MiB of zeros with no line break: the header check stops after 64 KiB (it used to read
    the whole line into memory)."""
    import time

    path = _gzip_with_zeros(tmp_path / "zeros.csv.gz", "", 256)
    started = time.monotonic()
    with pytest.raises(LoadError, match=r"line 1 \(header\) is longer than 65536 bytes"):
        check_header(path, "patents")
    assert time.monotonic() - started < 2


def test_tail_of_zeros_after_good_rows_is_quarantined_and_refuses_the_file(tmp_path: Path) -> None:
    """A header, 2 rows and 128 MiB of NUL bytes: DuckDB returns the 2 rows and says nothing of
    the rest. The unread tail is quarantined and counted; the file is refused, and its
    quarantine is kept where an auditor finds it."""
    path = _gzip_with_zeros(
        tmp_path / "publications.csv.gz", HEADER_A + "\n" + "\n".join(_articles(2)) + "\n", 128
    )
    db = tmp_path / "ws" / "stclusters.duckdb"
    with pytest.raises(LoadError, match=r"quarantined, above max_quarantine_share") as err:
        load_database(db, layer_inputs({"publications": [path]}), {}, max_quarantine_share=0.01)
    kept = tmp_path / "ws" / "quarantine" / "publications.csv.gz.quarantine.csv"
    assert str(kept) in str(err.value)
    text = kept.read_text()
    assert "not read: lines 4-4" in text and ",4,*," in text
    assert not db.exists()


def test_scan_file_counts_lines_and_refuses_above_the_cap(tmp_path: Path) -> None:
    from stclusters.load.land import scan_file

    path = _write(tmp_path / "a.csv.gz", "h\n1\n2")
    assert (scan_file(path).bytes, scan_file(path).lines) == (5, 3)
    big = _gzip_with_zeros(tmp_path / "z.csv.gz", "h\n", 8)
    with pytest.raises(
        LoadError,
        match=r"more than 4194304 bytes once decompressed, the cap set by the run parameter max_input_gib",
    ):
        scan_file(big, max_bytes=4 << 20)


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "bad crc", "not gzip after the magic"])
def test_scan_file_names_the_file_of_a_broken_gzip(tmp_path: Path, damage: str) -> None:
    """The ISA-L reader's own errors (not OSErrors) still become a LoadError naming the file."""
    import gzip
    import random

    from stclusters.load.land import scan_file

    text = "".join(
        f"WOS:{i},2019,Article,1,Org {random.Random(i).random()},Tokyo,,,JP,,,Physics\n" for i in range(20000)
    )
    data = bytearray(gzip.compress(text.encode(), mtime=0))
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped byte":
        data[len(data) // 2] ^= 0xFF
    elif damage == "bad crc":
        data[-8] ^= 0xFF
    else:
        data = bytearray(b"\x1f\x8b" + b"plain text, no deflate stream" * 10)
    path = tmp_path / "p.csv.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(LoadError, match=r"p\.csv\.gz: cannot read"):
        scan_file(path)


def test_quarantine_lines_are_file_lines_with_embedded_newlines(tmp_path: Path) -> None:
    text = "\n".join(
        [
            HEADER_A,
            'WOS:1,2019,Article,1,"Univ\nof\nTokyo",Tokyo,,,JP,,,Physics',  # lines 2-4
            "WOS:2,20x9,Article,1,Univ,Tokyo,,,JP,,,Physics",  # line 5: bad year
            "",  # line 6: blank
            "WOS:3,2019,Article,1,Univ,Tokyo,,JP",  # line 7: too few fields (DuckDB reject)
            'WOS:4,2019,Article,1,"A\nB",Tokyo,,,XX,,,Physics',  # lines 8-9: unknown country
            "WOS:5,2019,Article,1,Univ,Tokyo,,,JP,,,Physics",  # line 10
        ]
    )
    path = _write(tmp_path / "publications.csv", text + "\n")
    db = tmp_path / "e.duckdb"
    load_database(db, layer_inputs({"publications": [path]}), {}, max_quarantine_share=1.0)
    con = duckdb.connect(str(db), read_only=True)
    q = con.sql("select source_line, field from raw.quarantine order by source_line").fetchall()
    assert [line for line, _ in q] == [5, 7, 8]
    good = con.sql("select article_id, source_line from raw.publications order by source_line").fetchall()
    assert good == [("WOS:1", 2), ("WOS:5", 10)]


def test_declared_row_count_is_checked(tmp_path: Path) -> None:
    path = _write(tmp_path / "publications.csv", HEADER_A + "\n" + "\n".join(_articles(3)) + "\n")
    inputs = layer_inputs({"publications": [path]})
    with pytest.raises(LoadError, match=r"3 data rows .* declares rows: 6"):
        load_database(tmp_path / "e.duckdb", inputs, {}, landed_meta={str(path): {"expected_rows": 6}})
    stats = load_database(tmp_path / "e.duckdb", inputs, {}, landed_meta={str(path): {"expected_rows": 3}})
    assert stats[str(path)]["rows_loaded"] == 3


def test_stale_loading_files_of_dead_pids_are_removed(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    db = tmp_path / "stclusters.duckdb"
    stale = tmp_path / f"stclusters.duckdb.loading-{dead_pid}"
    stale_wal = tmp_path / f"stclusters.duckdb.loading-{dead_pid}.wal"
    live = tmp_path / f"stclusters.duckdb.loading-{os.getppid()}"  # a running process: kept
    for p in (stale, stale_wal, live):
        p.write_bytes(b"x")
    path = _write(tmp_path / "publications.csv", HEADER_A + "\n" + "\n".join(_articles(2)) + "\n")
    load_database(db, layer_inputs({"publications": [path]}), {})
    assert not stale.exists() and not stale_wal.exists()
    assert live.exists()


def test_adapter_quarantine_keeps_its_unit_and_the_gate_share_is_per_unit(tmp_path: Path, files) -> None:
    """89 addresses quarantined by the WoS adapter out of 900 addresses in 300 records are 9.9%
    of addresses (not 89 "records" over the landed rows); load-time rows count as addresses."""
    from stclusters.gate import validate
    from stclusters.load.formats.base import ADDRESS, ConversionReport, write_quarantine

    report = ConversionReport("wos", "publications", [], tmp_path / "canonical" / "publications.csv.gz")
    report.records_read, report.addresses_read = 300, 900
    for i in range(89):
        report.quarantine("savedrecs.txt", 10 + i, "C1", "unknown country: Atlantis", "X, Atlantis", ADDRESS)
    qpath = write_quarantine(report)
    db = tmp_path / "edition.duckdb"
    _load(
        db,
        files,
        adapter_quarantine={"publications": qpath},
        adapter_counts={"publications": report.counts()},
    )
    con = duckdb.connect(str(db), read_only=True)
    units = dict(
        con.execute("select layer || '/' || unit, count(*) from raw.quarantine group by all").fetchall()
    )
    # the adapter's addresses plus the publication rows the load refused (each one address)
    load_rows = con.execute(
        "select count(*) from raw.quarantine where layer = 'publications' and source_file <> 'savedrecs.txt'"
    ).fetchone()[0]
    assert units == {"patents/address": 5, "publications/address": 89 + load_rows}
    shares = {
        f"{layer}/{unit}": (n_read, n_q, share)
        for layer, unit, n_read, n_q, share in con.execute(validate.RAW_QUARANTINE_SQL).fetchall()
    }
    con.close()
    assert shares["publications/record"] == (300, 0, 0.0)
    assert shares["publications/address"][:2] == (900, 89 + load_rows)
    assert shares["publications/address"][2] == pytest.approx((89 + load_rows) / 900)
    assert shares["patents/address"] == (8, 5, 5 / 8)  # a canonical layer: its rows are addresses
    assert "patents/record" not in shares


def test_country_macro_agrees_with_the_reference_on_every_two_letter_code() -> None:
    """The load's country check (stc_is_iso_country) says what stclusters.reference.countries
    says, for all 676 upper-case pairs and for text that is not a pair; null stays null (a row
    without a country is not refused by this check)."""
    from string import ascii_uppercase

    from stclusters.load.land import create_country_macro
    from stclusters.reference.countries import is_iso_country

    con = duckdb.connect()
    create_country_macro(con)
    codes = [a + b for a in ascii_uppercase for b in ascii_uppercase]
    codes += ["", "J", "JPN", "jp", "J,", ",P", "JP,", " JP", "%", "J%", "'", "ÄB"]
    got = dict(con.execute("select c, stc_is_iso_country(c) from unnest(?) as t(c)", [codes]).fetchall())
    assert got == {c: is_iso_country(c) for c in codes}
    assert sum(got.values()) >= 240  # the ISO list, not an empty one
    assert con.execute("select stc_is_iso_country(null::varchar)").fetchone()[0] is None
