"""Format sniffing and the package-level dispatcher."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from stclusters.load.formats import ADAPTERS, FormatError, convert, resolve_format, sniff

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("wos/black-silicon-savedrecs.txt", "wos"),
        ("wos/black-silicon-first8-tab-utf8bom.txt", "wos"),
        ("wos/black-silicon-first8-tab-utf16le.txt", "wos"),
        ("openalex/works-part_000.jsonl.gz", "openalex"),
        ("openalex/institutions-part_000.jsonl.gz", "openalex"),
        ("openalex/api-page-works.json", "openalex"),  # a saved API page, pretty-printed
        ("openalex/snapshot", "openalex"),  # a snapshot folder
        ("openalex/snapshot/data/works/manifest", "openalex"),
        ("patentsview/g_patent.tsv", "patentsview"),
        ("patentsview/g_inventor_disambiguated.tsv", "patentsview"),
        ("canonical/patents.csv", "canonical"),
        ("canonical/publications.csv.gz", "canonical"),
        ("canonical/publications-bad-header.csv", "canonical"),
        ("regpat/202301_PCT_Inv_reg.txt", "regpat"),
        ("regpat/202301_PCT_IPC.txt", "regpat"),
        ("patstat/tls201_appln.csv", "patstat"),
        ("patstat/tls207_pers_appln.csv", "patstat"),
        ("geopat/geoc_inv.txt", "geopat"),
    ],
)
def test_sniff_fixtures(path: str, fmt: str) -> None:
    assert sniff(FIXTURES / path) == fmt


def test_sniff_gzipped_wos(tmp_path: Path) -> None:
    src = tmp_path / "savedrecs.txt.gz"
    src.write_bytes(gzip.compress((FIXTURES / "wos" / "faults-savedrecs.txt").read_bytes()[:4000]))
    assert sniff(src) == "wos"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,value\n1,2\n", "cannot tell the format from line 1"),
        (b'{"hello": "world"}\n', "not OpenAlex"),
        (b"   \n", "empty file"),
    ],
)
def test_sniff_refuses_unknown_content(tmp_path: Path, content: bytes, message: str) -> None:
    src = tmp_path / "mystery.dat"
    src.write_bytes(content)
    with pytest.raises(FormatError, match=message) as err:
        sniff(src)
    assert str(src) in str(err.value)


def test_resolve_format() -> None:
    wos_file = FIXTURES / "wos" / "faults-savedrecs.txt"
    assert resolve_format([wos_file], "wos") == "wos"  # a declared format is trusted
    assert resolve_format([wos_file]) == "wos"
    with pytest.raises(FormatError, match="different formats"):
        resolve_format([wos_file, FIXTURES / "canonical" / "patents.csv"])
    with pytest.raises(FormatError, match="unknown format 'scopus'"):
        resolve_format([wos_file], "scopus")
    assert set(ADAPTERS) == {"canonical", "wos", "openalex", "patentsview", "regpat", "patstat", "geopat"}


def test_convert_with_declared_format(tmp_path: Path) -> None:
    report = convert(
        "wos", [FIXTURES / "wos" / "faults-savedrecs.txt"], "publications", tmp_path / "o.csv.gz"
    )
    assert report.format == "wos" and report.rows_written == 8
