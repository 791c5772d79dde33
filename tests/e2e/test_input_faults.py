"""Input faults (issue 18) through the real task bodies: `tasks.pull` from a real loopback HTTP
server and real files, `tasks.load` into a real DuckDB file. Each fault must be refused before it
reaches the database (or quarantined and counted), with a message that names the file, and must
leave what an earlier run landed as it was. docs/operations.md ("Fault matrix", "Input faults") lists them."""

from __future__ import annotations

import glob
import gzip
import json
import logging
from pathlib import Path

import duckdb
import pytest
import yaml

from httpserver import LoopbackServer, Route
from stclusters import config, tasks
from stclusters.load import land
from stclusters.pull.sources import SourceError
from stclusters.schema import PATENT_COLUMNS, PUBLICATION_COLUMNS

pytestmark = pytest.mark.e2e

PATENT = "WO2020{n:06d},2020-03-05,1,Tokyo,,,JP,,,Acme,G06F"
ARTICLE = "WOS:{n},2019,Article,1,Univ,Tokyo,,,JP,,,Physics"


def text(rows: int, row: str, header: tuple[str, ...]) -> bytes:
    return ("\n".join([",".join(header), *(row.format(n=i) for i in range(1, rows + 1))]) + "\n").encode()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("input-faults")  # one gazetteer cache for the module


def use_sources(
    root: Path, monkeypatch: pytest.MonkeyPatch, name: str, patents: str, publications: str
) -> dict:
    path = root / f"{name}.yml"
    sets = {"source_sets": {name: {"patents": {"uri": patents}, "publications": {"uri": publications}}}}
    path.write_text(yaml.safe_dump(sets))
    monkeypatch.setenv("STCLUSTERS_SOURCES_FILE", str(path))
    return {"source_set": name, "edition": 2023, "workspace_dir": str(root / name)}


def articles_file(root: Path) -> Path:
    path = root / "src" / "publications.csv.gz"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(gzip.compress(text(40, ARTICLE, PUBLICATION_COLUMNS), mtime=0))
    return path


def test_lying_content_length_never_lands(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain-CSV dump whose Content-Length is half its size used to land half the rows."""
    body = text(600, PATENT, PATENT_COLUMNS)
    with LoopbackServer({"/patents.csv": Route(body)}, max_lifetime_s=900) as server:
        conf = use_sources(root, monkeypatch, "lying", server.url("/patents.csv"), str(articles_file(root)))
        tasks.pull(conf)
        manifest = tasks.landing_dir(config.resolve(conf)) / "landed.json"
        before = manifest.read_bytes()
        server.routes["/patents.csv"] = Route(
            body.replace(b"Tokyo", b"Osaka"), announce_length=len(body) // 2
        )
        with pytest.raises(SourceError, match="body longer than announced"):
            tasks.pull(conf)
        assert manifest.read_bytes() == before  # the earlier, complete landing stands
        landed = json.loads(before)["layers"]["patents"]["files"][0]
        assert Path(landed["path"]).read_bytes() == body
    assert tasks.load(conf)["rows_loaded"] == 640


def test_zero_tail_is_refused_with_its_quarantine_kept(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dump = root / "src" / "zeros" / "patents.csv.gz"
    dump.parent.mkdir(parents=True)
    with gzip.open(dump, "wb", compresslevel=1) as fh:
        fh.write(text(2, PATENT, PATENT_COLUMNS))
        for _ in range(256):  # 256 MiB of NUL bytes after two good rows
            fh.write(bytes(1 << 20))
    conf = use_sources(root, monkeypatch, "zeros", str(dump), str(articles_file(root)))
    tasks.pull(conf)
    params = config.resolve(conf)
    with pytest.raises(land.LoadError, match=r"patents.csv.gz: 33.3% of rows quarantined") as err:
        tasks.load(conf)
    kept = params.workspace / "quarantine" / "patents.csv.gz.quarantine.csv"
    assert str(kept) in str(err.value)
    assert "not read: lines 4-4" in kept.read_text()
    assert not params.duckdb_path.exists() and not list(params.workspace.glob("*.loading-*"))


def test_bad_byte_row_is_quarantined_and_the_edition_loads(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = text(500, PATENT, PATENT_COLUMNS).replace(
        b"WO2020000003,2020-03-05,1,Tokyo", b"WO2020000003,2020-03-05,1,To\xffkyo"
    )
    dump = root / "src" / "badbyte" / "patents.csv.gz"
    dump.parent.mkdir(parents=True)
    dump.write_bytes(gzip.compress(body, mtime=0))
    conf = use_sources(root, monkeypatch, "badbyte", str(dump), str(articles_file(root)))
    tasks.pull(conf)
    result = tasks.load(conf)
    assert (result["rows_loaded"], result["rows_quarantined"]) == (539, 1)
    con = duckdb.connect(str(config.resolve(conf).duckdb_path), read_only=True)
    [(path, line, reason)] = con.sql("select source_file, source_line, reason from raw.quarantine").fetchall()
    assert path.endswith("patents.csv.gz") and line == 4 and "encoding" in reason


def test_system_files_are_never_landed(root: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    confs = sorted(glob.glob("/etc/*.conf"))
    if not confs:
        pytest.skip("no /etc/*.conf on this machine")
    first_lines = [ln for f in confs[:20] for ln in _first_line(f)]
    conf = use_sources(root, monkeypatch, "etc", "/etc/*.conf", str(articles_file(root)))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError, match=r"not a data file: .*nothing was read from it"):
        tasks.pull(conf)
    landing = tasks.landing_dir(config.resolve(conf))
    assert not landing.exists() or not [p for p in landing.rglob("*") if p.is_file()]
    assert not [ln for ln in first_lines if ln in caplog.text]


def _first_line(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            line = fh.readline().strip()
    except OSError:
        return []
    return [line] if len(line) > 12 else []  # short lines ("#") would match anything
