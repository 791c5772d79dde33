"""The real-export corpus: provenance intact, and what the adapters do with it.

The provenance (repository, path, commit, licence, sha256) is committed in
tests/fixtures/real/corpus.yml; the exported files themselves are not (they are other projects'
data: see tests/fixtures/real/README.md, "Where the files live"). Where the tests look for them:
tests/realcorpus.py; they skip, saying where to put them, when absent.

Record counts are taken independently of the adapters (PT lines, tab rows, API results, JSON
lines); the adapters must sniff every file, read every record, and write canonical rows only for
ids that are in the file. Rows per address, cities and countries are left to the parser and
geocoding tests: they change as those are fixed (issue 17).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest

from realcorpus import CORPUS, ENTRIES, PROVENANCE, needs_corpus
from stclusters.load.formats import FormatError, convert, sniff

pytestmark = needs_corpus
FORMATS = {"wos-plain": "wos", "wos-tab": "wos", "openalex-api": "openalex", "openalex-jsonl": "openalex"}
KEYS = {"file", "repo", "path", "commit", "licence", "format", "encoding", "newline", "records"}
LINE_END = re.compile(r"\r\n|\r|\n")  # str.splitlines would also split on \x1c, \u2028... inside fields

# What the current adapters cannot read at all; strict=False so the fixes being made now pass.
NOT_READ: dict[str, str] = {}  # OpenAlex API pages are read since issue 17, item 9

# Reduced-field exports (no addresses or document type at all): refused whole, naming the
# missing fields, instead of "no data rows" later (issue 17, item 10).
REFUSED = {
    "wos_plain_no_c1_no_dt.txt": r"no DT, C1 \(or RP\) field in the export",
    "wos_tab_utf16le_cr_2019_no_c1.txt": r"the DT, C1 \(or RP\) columns are empty in every row",
}


def ids(entry: dict) -> str:
    return str(entry["file"])


def text_of(path: Path) -> str:
    raw = path.read_bytes()
    return raw.decode("utf-16") if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else raw.decode("utf-8-sig")


def count_records(entry: dict) -> tuple[int, set[str]]:
    """(records, ids) of a corpus file, read without the project's adapters."""
    path = CORPUS / entry["file"]
    fmt = entry["format"]
    if fmt == "wos-plain":
        lines = LINE_END.split(text_of(path))
        pt = sum(1 for line in lines if line.startswith("PT "))
        er = sum(1 for line in lines if line == "ER")
        assert pt == er, f"{path.name}: {pt} PT lines but {er} ER lines"
        return pt, {line[3:].strip() for line in lines if line.startswith("UT ")}
    if fmt == "wos-tab":
        lines = LINE_END.split(text_of(path))
        header = lines[0].split("\t")
        rows = [line.split("\t") for line in lines[1:] if line.strip()]
        ut = header.index("UT")
        return len(rows), {r[ut].strip() for r in rows if len(r) > ut}
    if fmt == "openalex-api":
        works = json.loads(path.read_bytes())["results"]
    else:
        works = [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return len(works), {str(w["id"]).rsplit("/", 1)[-1] for w in works}


def test_every_file_is_listed_once_with_its_provenance():
    names = [e["file"] for e in ENTRIES]
    assert len(names) == len(set(names))
    on_disk = {
        p.name for p in CORPUS.iterdir() if p.name not in {"README.md", "corpus.yml", ".gitattributes"}
    }
    assert on_disk == set(names), "every corpus file needs an entry in corpus.yml, and every entry a file"
    readme = (PROVENANCE / "README.md").read_text(encoding="utf-8")
    for e in ENTRIES:
        assert set(e) >= KEYS, f"{e['file']}: corpus.yml lacks {sorted(KEYS - set(e))}"
        assert re.fullmatch(r"[0-9a-f]{40}", e["commit"]), e["file"]
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", e["repo"]), e["file"]
        assert e["licence"].strip() and e["format"] in FORMATS
        assert f"`{e['file']}`" in readme, f"{e['file']} has no row in README.md"


@pytest.mark.parametrize("entry", ENTRIES, ids=ids)
def test_bytes_are_the_exporters(entry):
    """Nobody 'fixed' a file: size and sha256 as recorded when it was taken."""
    raw = (CORPUS / entry["file"]).read_bytes()
    assert len(raw) == entry["bytes"]
    assert hashlib.sha256(raw).hexdigest() == entry["sha256"]


@pytest.mark.parametrize("entry", ENTRIES, ids=ids)
def test_record_count_matches_corpus_yml(entry):
    records, _ = count_records(entry)
    assert records == entry["records"]
    assert entry["trimmed"] == (entry["records"] < entry["source_records"])


@pytest.mark.parametrize("entry", ENTRIES, ids=ids)
def test_sniffer_recognises_the_format(entry):
    assert sniff(CORPUS / entry["file"]) == FORMATS[entry["format"]]


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(e, marks=pytest.mark.xfail(strict=False, reason=NOT_READ[e["format"]]))
        if e["format"] in NOT_READ
        else e
        for e in ENTRIES
    ],
    ids=ids,
)
def test_adapter_reads_every_record(entry, tmp_path):
    records, known_ids = count_records(entry)
    out = tmp_path / "publications.csv.gz"
    if entry["file"] in REFUSED:
        with pytest.raises(FormatError, match=REFUSED[entry["file"]]):
            convert("auto", [CORPUS / entry["file"]], "publications", out)
        return
    report = convert("auto", [CORPUS / entry["file"]], "publications", out)
    assert report.records_read == records
    assert report.documents_written <= records
    with gzip.open(out, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == report.rows_written
    assert {r["article_id"] for r in rows} <= known_ids, "canonical rows for an id that is not in the file"
    assert all(re.fullmatch(r"[A-Z]{2}", r["country"]) for r in rows), (
        "a canonical row without a country code"
    )
