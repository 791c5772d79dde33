"""Web of Science adapter on the real 500-record export, tab-delimited variants and faulty records."""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from pathlib import Path

import pytest

from realcorpus import CORPUS, needs_corpus
from stclusters.load.formats import convert, sniff, wos
from stclusters.load.formats.base import FormatError
from stclusters.load.formats.c1 import Address, AddressError, parse_c1

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wos"
REAL = FIXTURES / "black-silicon-savedrecs.txt"
TAB_UTF8 = FIXTURES / "black-silicon-first8-tab-utf8bom.txt"
TAB_UTF16 = FIXTURES / "black-silicon-first8-tab-utf16le.txt"
FAULTS = FIXTURES / "faults-savedrecs.txt"


def rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "[A; B] Harvard Med Sch, Dept X, Boston, MA 02115 USA.",
            ("Harvard Med Sch", "Boston", "02115", "MA", "US"),
        ),
        (
            "Beijing Univ Technol, Beijing 100124, Peoples R China.",
            ("Beijing Univ Technol", "Beijing", "100124", "", "CN"),
        ),
        (
            "Middle East Tech Univ, Dept Phys, TR-06800 Ankara, Turkey.",
            ("Middle East Tech Univ", "Ankara", "TR-06800", "", "TR"),
        ),
        ("Tech Univ Munich, D-80333 Munich, Germany.", ("Tech Univ Munich", "Munich", "D-80333", "", "DE")),
        ("Univ Tokyo, Dept Appl Phys, Tokyo 1138656, Japan.", ("Univ Tokyo", "Tokyo", "1138656", "", "JP")),
        (
            "Univ Toronto, Dept Chem, Toronto, ON M5S 1A1, Canada.",
            ("Univ Toronto", "Toronto", "M5S 1A1", "ON", "CA"),
        ),
        (
            "Vrije Univ, Dept Phys, 1081 HV Amsterdam, Netherlands.",
            ("Vrije Univ", "Amsterdam", "1081 HV", "", "NL"),
        ),
        (
            "Univ Southampton, Southampton SO17 1BJ, Hants, England.",
            ("Univ Southampton", "Southampton", "SO17 1BJ", "Hants", "GB"),
        ),
        ("KAIST, Daejeon 34141, South Korea.", ("KAIST", "Daejeon", "34141", "", "KR")),
        (
            "Chinese Univ Hong Kong, Fac Engn, Shatin, Hong Kong, Peoples R China.",
            ("Chinese Univ Hong Kong", "Shatin", "", "", "HK"),
        ),
        (
            "Swinburne Univ Technol, John St, Hawthorn, Vic 3122, Australia.",
            ("Swinburne Univ Technol", "Hawthorn", "3122", "Vic", "AU"),
        ),
        ("Nagoya Univ, Grad Sch Engn, Nagoya, Aichi, Japan.", ("Nagoya Univ", "Nagoya", "", "Aichi", "JP")),
        (
            "Natl Inst Mat Sci, Tsukuba, Ibaraki 3050044, Japan.",
            ("Natl Inst Mat Sci", "Tsukuba", "3050044", "Ibaraki", "JP"),
        ),
        (
            "Nanjing Univ, Nanjing 210094, Jiangsu, Peoples R China.",
            ("Nanjing Univ", "Nanjing", "210094", "Jiangsu", "CN"),
        ),
        (
            "Adv Silicon Grp, 173 Bedford Rd, Lincoln, MA 01773 USA.",
            ("Adv Silicon Grp", "Lincoln", "01773", "MA", "US"),
        ),
        (
            "Univ Cambridge, Dept Mat, 27 Charles Babbage Rd, Cambridge, England.",
            ("Univ Cambridge", "Cambridge", "", "", "GB"),
        ),
        (
            "Dublin Inst Technol, Kevin St, Dublin 8, Ireland.",
            ("Dublin Inst Technol", "Dublin", "8", "", "IE"),
        ),
        ("CNRS, LP3, F-13288 Marseille 9, France.", ("CNRS", "Marseille", "F-13288", "", "FR")),
        (
            "Umaru Musa Yaradua Univ, PMB 2218, Katsina, Nigeria.",
            ("Umaru Musa Yaradua Univ", "Katsina", "", "", "NG"),
        ),
        (
            "Univ Estadual Campinas, BR-13083970 Campinas, SP, Brazil.",
            ("Univ Estadual Campinas", "Campinas", "BR-13083970", "SP", "BR"),
        ),
        ("Univ X, South Korea.", ("Univ X", "", "", "", "KR")),
    ],
)
def test_parse_c1(entry: str, expected: tuple[str, ...]) -> None:
    assert parse_c1(entry) == Address(*expected)


def test_parse_c1_unknown_country_is_an_error() -> None:
    with pytest.raises(AddressError, match="unknown country") as err:
        parse_c1("Univ Poseidon, Poseidonia, Atlantis.")
    assert err.value.value == "Atlantis"


def test_real_export_500_records(tmp_path: Path) -> None:
    out = tmp_path / "publications.csv.gz"
    report = convert("auto", [REAL], "publications", out)
    assert report.records_read == 500
    # 358 counted (Article, incl. "Article; Proceedings Paper" x24, "; Early Access", "; Book Chapter").
    assert report.excluded == Counter({"document type Proceedings Paper": 126, "document type Review": 16})
    assert report.documents_written == 358
    assert report.quarantined == []
    got = rows(out)
    assert len(got) == report.rows_written == 917
    assert all(r["country"] and len(r["country"]) == 2 for r in got)
    with_city = sum(1 for r in got if r["city"])
    assert with_city / len(got) >= 0.99, with_city
    countries = Counter(r["country"] for r in got)
    assert countries.most_common(3) == [("CN", 306), ("DE", 78), ("US", 63)]
    first = [r for r in got if r["article_id"] == "WOS:000432989900002"]
    assert [(r["address_seq"], r["city"], r["postal_code"], r["country"]) for r in first] == [
        ("1", "Beijing", "100124", "CN"),
        ("2", "Zhenjiang", "212132", "CN"),
        ("3", "Beijing", "", "CN"),
    ]
    assert first[0]["subject"] == "Materials Science, Multidisciplinary"
    # The one record without PY takes its early-access year (EA MAY 2021).
    assert {r["publication_year"] for r in got if r["article_id"] == "WOS:000649402100001"} == {"2021"}


def test_every_c1_address_of_the_real_export_has_a_country_and_city() -> None:
    entries = [v for rec in wos.read_records(REAL) for _, v in rec.values("C1")]
    assert len(entries) == 1243
    parsed = [parse_c1(e) for e in entries]  # raises on any unknown country
    assert sum(1 for a in parsed if a.city) == 1243


def test_output_is_deterministic(tmp_path: Path) -> None:
    a = convert("wos", [TAB_UTF8], "publications", tmp_path / "a.csv.gz")
    b = convert("wos", [TAB_UTF8], "publications", tmp_path / "b.csv.gz")
    assert a.rows_written == b.rows_written > 0
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()


@pytest.mark.parametrize("tab_file", [TAB_UTF8, TAB_UTF16], ids=["utf8-bom", "utf16le"])
def test_tab_delimited_gives_the_same_rows_as_plain_text(tmp_path: Path, tab_file: Path) -> None:
    assert wos.variant(tab_file) == "tab" and sniff(tab_file) == "wos"
    tab = rows(_convert(tab_file, tmp_path / "tab.csv.gz"))
    plain_ids = {r["article_id"] for r in tab}
    plain = [r for r in rows(_convert(REAL, tmp_path / "plain.csv.gz")) if r["article_id"] in plain_ids]
    assert len(tab) == 18
    assert tab == plain


def _convert(path: Path, out: Path) -> Path:
    convert("wos", [path], "publications", out)
    return out


def test_faulty_records_are_quarantined_or_excluded(tmp_path: Path) -> None:
    out = tmp_path / "p.csv.gz"
    report = convert("wos", [FAULTS], "publications", out)
    assert report.records_read == 12
    assert report.excluded == Counter(
        {"document type Review": 1, "document type Meeting Abstract": 1, "duplicate article id": 1}
    )
    got = {(q.line, q.field, q.reason, q.unit) for q in report.quarantined}
    assert got == {
        (55, "PY", "unparseable year", "record"),
        (66, "UT", "missing article id", "record"),
        (87, "C1", "no address: C1 and RP empty", "record"),
        (105, "C1", "unknown country: Atlantis", "address"),
    }
    # the quarantine counts records and addresses apart, each over its own total
    assert report.quarantine_by_reason() == {
        "record": {"missing article id": 1, "no address": 1, "unparseable year": 1},
        "address": {"unknown country": 1},
    }
    assert (report.quarantined_count("record"), report.records_read) == (3, 12)
    assert (report.quarantined_count("address"), report.addresses_read) == (1, 9)
    assert report.records_with_lost_addresses == 1
    # a Latin-1 byte in the city: the address keeps its country and its share, unlocated
    assert report.unlocated == Counter({"broken encoding": 1})
    written = rows(out)
    by_id = Counter(r["article_id"] for r in written)
    assert by_id == Counter(
        {
            "WOS:000900000000001": 3,  # Cambridge MA, Toronto ON, Amsterdam
            "WOS:000900000000003": 1,  # "Article; Proceedings Paper" counts as an article
            "WOS:000900000000004": 1,  # no PY: early-access year
            "WOS:000900000000007": 1,  # no C1: the reprint address
            "WOS:000900000000009": 1,  # the address with a known country survives
            "WOS:000900000000010": 1,  # São Paulo with a broken byte: Brazil, no city
        }
    )
    [sao] = [r for r in written if r["article_id"].endswith("10")]
    assert (sao["organization"], sao["city"], sao["country"]) == ("Univ Sao Paulo", "", "BR")
    assert {r["publication_year"] for r in written if r["article_id"].endswith("04")} == {"2021"}
    assert [r["city"] for r in written if r["article_id"].endswith("07")] == ["Oxford"]
    assert [r["address_seq"] for r in written if r["article_id"].endswith("09")] == ["1"]
    assert {r["document_type"] for r in written} == {"Article"}
    quarantine = (tmp_path / "p.csv.gz.quarantine.csv").read_text().splitlines()
    assert quarantine[0] == "file,line,field,reason,value,unit" and len(quarantine) == 5


def test_wrong_field_count_in_tab_export_is_quarantined(tmp_path: Path) -> None:
    lines = TAB_UTF8.read_bytes().decode("utf-8-sig").splitlines()
    broken = "\t".join(lines[2].split("\t")[:10])  # a row cut after 10 fields
    src = tmp_path / "savedrecs.txt"
    src.write_text("\n".join([lines[0], lines[1], broken, lines[3]]) + "\n", encoding="utf-8")
    report = convert("wos", [src], "publications", tmp_path / "o.csv.gz")
    assert [(q.line, q.field, q.reason.split(":")[0]) for q in report.quarantined] == [
        (3, "*", "wrong field count")
    ]
    assert report.records_read == 3


def test_publications_only(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="not patents"):
        convert("wos", [REAL], "patents", tmp_path / "o.csv.gz")


def test_not_a_wos_file(tmp_path: Path) -> None:
    src = tmp_path / "x.txt"
    src.write_text("hello\tworld\n")
    with pytest.raises(FormatError, match="line 1: not a Web of Science export"):
        convert("wos", [src], "publications", tmp_path / "o.csv.gz")
    assert not (tmp_path / "o.csv.gz").exists()


# --- issue 17: real-export layouts and the errors they raise ------------------------------------
GLUED = FIXTURES / "all-databases-tab-glued.txt"
ISI_ERA = FIXTURES / "isi-era-savedrecs.txt"


def test_glued_addresses_of_the_all_databases_export_are_split(tmp_path: Path) -> None:
    out = tmp_path / "p.csv.gz"
    report = convert("auto", [GLUED], "publications", out)
    got = [
        (r["article_id"][-1], r["address_seq"], r["organization"], r["city"], r["country"]) for r in rows(out)
    ]
    assert got == [
        ("1", "1", "Univ Coll Dublin", "Dublin", "IE"),
        ("1", "2", "Pavement Management Serv Ltd", "Galway", "IE"),
        ("2", "1", "Tsinghua Univ", "Beijing", "CN"),
        ("2", "2", "Harvard Univ", "Cambridge", "US"),
        ("2", "3", "Univ Tokyo", "Tokyo", "JP"),
        ("3", "1", "Trinity Coll Dublin", "Dublin", "IE"),
    ]
    # a country the vocabulary does not know ("Irland") run into the next address: not split,
    # not read as one address either, but quarantined and counted as addresses
    assert [(q.field, q.reason, q.unit) for q in report.quarantined] == [
        ("C1", "glued addresses: cannot split", "address")
    ]
    assert report.addresses_read == 7 and report.records_with_lost_addresses == 1


@pytest.mark.parametrize(
    ("entry", "pieces"),
    [
        ("Univ A, Dublin, IrelandPavement Ltd, Galway, Ireland", 2),
        ("Univ A, Beijing 100084, Peoples R ChinaUniv B, Shanghai, Peoples R China", 2),
        ("Univ A, Boston, MA 02115 USA[Li, X] Univ B, Kyoto, Japan", 2),
        ("Fraunhofer Heinrich Hertz Inst HHI, EnergieCampus,Stollen 19H, D-38640 Goslar, Germany", 1),
        ("CALTECH, Pasadena, CA 91125 USA", 1),
        ("Canada Res Chair, Univ Toronto, Toronto, ON M5S 1A1, Canada", 1),
    ],
)
def test_split_glued(entry: str, pieces: int) -> None:
    found, suspect = wos.split_glued(entry)
    assert (len(found), suspect) == (pieces, False)
    assert all(parse_c1(p).country for p in found)


def test_reprint_line_without_marker_and_broken_bytes_in_unused_fields(tmp_path: Path) -> None:
    out = tmp_path / "p.csv.gz"
    report = convert("auto", [ISI_ERA], "publications", out)
    # U+FFFD in AB and CR (fields the method never reads) costs nothing
    assert report.quarantined == []
    got = [(r["article_id"], r["organization"], r["city"], r["postal_code"], r["country"]) for r in rows(out)]
    assert got == [
        ("ISI:A1995QE12300001", "UNIV HAMBURG", "HAMBURG", "D-20146", "DE"),
        ("ISI:A1996TR45600012", "UNIV TOKYO", "TOKYO", "113", "JP"),
    ]


def test_broken_bytes_in_a_used_field_still_quarantine_the_record(tmp_path: Path) -> None:
    src = tmp_path / "savedrecs.txt"
    src.write_text(ISI_ERA.read_text(encoding="utf-8").replace("PY 1996", "PY 19\ufffd6"), encoding="utf-8")
    report = convert("wos", [src], "publications", tmp_path / "p.csv.gz")
    assert [(q.field, q.reason, q.unit) for q in report.quarantined] == [
        ("PY", "broken encoding: undecodable bytes", "record")
    ]


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    data = gzip.compress(REAL.read_bytes())
    src = tmp_path / "savedrecs.txt.gz"
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated or corrupt gzip") as err:
        convert("wos", [src], "publications", tmp_path / "o.csv.gz")
    assert str(src) in str(err.value) and "fetch the file again" in str(err.value)
    assert not (tmp_path / "o.csv.gz").exists()


def test_plain_export_cut_mid_record_is_refused(tmp_path: Path) -> None:
    lines = REAL.read_text(encoding="utf-8").splitlines(keepends=True)
    src = tmp_path / "savedrecs.txt"
    src.write_text("".join(lines[:5000]), encoding="utf-8")
    start = max(i for i, line in enumerate(lines[:5000], start=1) if line.startswith("PT "))
    with pytest.raises(FormatError, match=f"line {start}: the file ends inside this record"):
        convert("wos", [src], "publications", tmp_path / "o.csv.gz")


def test_tab_export_cut_mid_row_is_refused(tmp_path: Path) -> None:
    text = TAB_UTF8.read_text(encoding="utf-8-sig")
    src = tmp_path / "savedrecs.txt"
    src.write_text(text[: text.index("\n", text.index("\n") + 1) + 400], encoding="utf-8")
    with pytest.raises(FormatError, match="line 3: the file ends inside this row"):
        convert("wos", [src], "publications", tmp_path / "o.csv.gz")


@pytest.mark.parametrize("layout", ["tab", "plain"])
def test_export_without_addresses_or_type_names_the_missing_fields(tmp_path: Path, layout: str) -> None:
    src = tmp_path / "savedrecs.txt"
    if layout == "tab":
        table = [line.split("\t") for line in TAB_UTF8.read_text(encoding="utf-8-sig").splitlines()]
        keep = [i for i, tag in enumerate(table[0]) if tag not in ("C1", "RP", "DT")]
        src.write_text("\n".join("\t".join(r[i] for i in keep) for r in table) + "\n", encoding="utf-8")
    else:
        text = FAULTS.read_bytes().decode("utf-8", errors="replace")
        src.write_text(
            "\n".join(x for x in text.splitlines() if not x.startswith(("C1 ", "RP ", "DT ", "   ["))) + "\n",
            encoding="utf-8",
        )
    with pytest.raises(FormatError, match=r"no DT, C1 \(or RP\) field in the export") as err:
        convert("wos", [src], "publications", tmp_path / "o.csv.gz")
    assert str(src) in str(err.value)


def test_windows_1252_export_is_decoded(tmp_path: Path) -> None:
    text = ISI_ERA.read_text(encoding="utf-8").replace("\ufffd", "")
    text = text.replace("UNIV HAMBURG, INST PHYS CHEM", "Univ Hamburg, Inst Phys Chem Müller").replace(
        "UNIV TOKYO, DEPT APPL PHYS", "Univ Tokyo, Département Phys"
    )
    src = tmp_path / "savedrecs.txt"
    src.write_bytes(text.encode("cp1252"))
    assert wos.detect_encoding(src) == "cp1252"
    out = tmp_path / "p.csv.gz"
    report = convert("wos", [src], "publications", out)
    assert report.quarantined == [] and report.unlocated == Counter()
    assert [r["organization"] for r in rows(out)] == ["Univ Hamburg", "Univ Tokyo"]


def test_utf16_big_endian_without_bom_is_decoded(tmp_path: Path) -> None:
    src = tmp_path / "savedrecs.txt"
    src.write_bytes(TAB_UTF8.read_text(encoding="utf-8-sig").encode("utf-16-be"))
    assert wos.detect_encoding(src) == "utf-16-be"
    assert convert("wos", [src], "publications", tmp_path / "o.csv.gz").rows_written == 18


def test_undecodable_header_says_the_encoding_is_the_problem(tmp_path: Path) -> None:
    src = tmp_path / "savedrecs.txt"
    src.write_bytes(TAB_UTF8.read_text(encoding="utf-8-sig").encode("utf-32-le"))
    with pytest.raises(FormatError, match="the file's encoding is the problem"):
        convert("wos", [src], "publications", tmp_path / "o.csv.gz")


def test_a_record_whose_only_address_is_lost_is_quarantined_as_a_record(tmp_path: Path) -> None:
    src = tmp_path / "savedrecs.txt"
    text = FAULTS.read_bytes().decode("utf-8", errors="replace")
    src.write_text(
        text.replace("C1 [Kim, S] KAIST, Daejeon 34141, South Korea.\n   ", "C1 "), encoding="utf-8"
    )
    report = convert("wos", [src], "publications", tmp_path / "o.csv.gz")
    [atlantis] = [q for q in report.quarantined if q.reason.startswith("unknown country")]
    assert (atlantis.unit, atlantis.value) == ("record", "[Atlas, Q] Univ Poseidon, Poseidonia, Atlantis.")
    assert report.records_with_lost_addresses == 0


@needs_corpus
def test_real_export_with_u_fffd_in_an_unused_field_loses_nothing(tmp_path: Path) -> None:
    real = CORPUS / "wos_tab_2026_utf8_crlf_fffd_window.txt"
    assert "\ufffd" in real.read_text(encoding="utf-8-sig")  # WoS wrote it (in RI)
    report = convert("wos", [real], "publications", tmp_path / "o.csv.gz")
    assert report.records_read == 20 and report.quarantined == []


# --- bounded reads (issue 18 item 5) -------------------------------------------------------------
def _zeros_gz(path: Path, mib: int, prefix: bytes = b"") -> Path:
    """``prefix`` then ``mib`` MiB of NUL bytes without a line end, gzip-compressed (small on disk)."""
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(prefix)
        block = bytes(1 << 20)
        for _ in range(mib):
            fh.write(block)
    return path


def _fails_bounded(call, match: str) -> None:
    import time
    import tracemalloc

    from stclusters.load.formats.base import MAX_LINE_BYTES

    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(FormatError, match=match) as caught:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(MAX_LINE_BYTES) in str(caught.value)
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert time.monotonic() - started < 30


def test_plain_reader_refuses_a_gzip_of_zeros_without_newline_fast_and_bounded(tmp_path: Path) -> None:
    path = _zeros_gz(tmp_path / "savedrecs.txt.gz", 160)  # old code: one 160 MiB readline
    _fails_bounded(
        lambda: convert("wos", [path], "publications", tmp_path / "out.csv.gz"),
        r"savedrecs\.txt\.gz: line 1: ",
    )


def test_plain_reader_refuses_a_multi_megabyte_line_inside_a_record(tmp_path: Path) -> None:
    head = b"FN Clarivate Analytics Web of Science\nVR 1.0\nPT J\nAU Smith, J\nTI "
    path = tmp_path / "savedrecs.txt"
    with open(path, "wb") as fh:
        fh.write(head + b"x" * (6 * 2**20) + b"\nER\n\nEF\n")
    _fails_bounded(lambda: list(wos.read_records(path)), r"savedrecs\.txt: line 5: line longer than")


def test_tab_reader_refuses_a_multi_megabyte_row(tmp_path: Path) -> None:
    path = tmp_path / "savedrecs.tsv"
    with open(path, "wb") as fh:
        fh.write(b"PT\tAU\tC1\tDT\tPY\tUT\tWC\n")
        fh.write(b"J\tSmith, J\t[Smith, J] Univ Tokyo, Tokyo, Japan.\tArticle\t2020\tWOS:1\tPhysics\n")
        fh.write(b"J\t" + b"y" * (6 * 2**20) + b"\n")
    assert wos.variant(path) == "tab"
    _fails_bounded(lambda: list(wos.read_records(path)), r"savedrecs\.tsv: line 3: line longer than")
