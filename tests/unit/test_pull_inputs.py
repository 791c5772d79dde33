"""The pull and load tasks on real files, a real loopback HTTP server and real DuckDB: declared
row counts and checksums from config/sources.yml, the decompressed-size cap, landing retention,
URI placeholders (issue 18, input side)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from httpserver import LoopbackServer, Route
from stclusters import config, handover, tasks
from stclusters.config import ConfigError
from stclusters.load import land
from stclusters.pull.sources import SourceError
from stclusters.schema import PATENT_COLUMNS, PUBLICATION_COLUMNS
from worlds import share_gazetteer

PATENT = "WO2020{n:06d},2020-03-05,1,Tokyo,,,JP,,,Acme,G06F"
ARTICLE = "WOS:{n},2019,Article,1,Univ,Tokyo,,,JP,,,Physics"


def dump(rows: int, row: str, header: tuple[str, ...]) -> bytes:
    return gzip.compress(
        ("\n".join([",".join(header), *(row.format(n=i) for i in range(1, rows + 1))]) + "\n").encode(),
        mtime=0,
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, gazetteer_cache: Path) -> Path:
    """One workspace root for the module, whose pulls land the session's gazetteer cache."""
    root = tmp_path_factory.mktemp("inputs")
    share_gazetteer(root / "ws", gazetteer_cache)
    return root


def sources_file(root: Path, name: str, patents: dict, publications: dict) -> Path:
    path = root / f"{name}.yml"
    sets = {"source_sets": {name: {"patents": patents, "publications": publications}}}
    path.write_text(yaml.safe_dump(sets))
    return path


def conf(root: Path, name: str, edition: int, **extra: object) -> dict:
    return {"source_set": name, "edition": edition, "workspace_dir": str(root / "ws"), **extra}


def test_half_the_rows_served_as_complete_is_refused_by_the_declared_rows(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 item 1: a dump of half the rows, served with a consistent Content-Length, can
    only be caught by what the source set declares: rows (or sha256)."""
    full, half = dump(400, PATENT, PATENT_COLUMNS), dump(200, PATENT, PATENT_COLUMNS)
    articles = root / "src" / "publications.csv.gz"
    articles.parent.mkdir(exist_ok=True)
    articles.write_bytes(dump(50, ARTICLE, PUBLICATION_COLUMNS))
    with LoopbackServer({"/patents.csv.gz": Route(half)}, max_lifetime_s=600) as server:
        path = sources_file(
            root,
            "rows",
            {"uri": server.url("/patents.csv.gz"), "files": {"patents.csv.gz": {"rows": 400}}},
            {"uri": str(articles), "rows": 50},
        )
        monkeypatch.setenv("STCLUSTERS_SOURCES_FILE", str(path))
        c = conf(root, "rows", 2101 - 100)
        tasks.pull(c)
        landed = json.loads((handover.landing_dir(config.resolve(c)) / "landed.json").read_text())
        assert landed["layers"]["patents"]["files"][0]["expected_rows"] == 400
        assert landed["layers"]["publications"]["files"][0]["lines"] == 51
        with pytest.raises(land.LoadError, match=r"patents.csv.gz: 200 data rows .* declares rows: 400"):
            tasks.load(c)
        server.routes["/patents.csv.gz"] = Route(full)
        tasks.pull(c)
        assert tasks.load(c)["rows_loaded"] == 450


def test_declared_sha256_per_file_is_checked_at_landing(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = root / "sha"
    src.mkdir()
    (src / "patents.csv.gz").write_bytes(dump(3, PATENT, PATENT_COLUMNS))
    (src / "publications.csv.gz").write_bytes(dump(3, ARTICLE, PUBLICATION_COLUMNS))
    path = sources_file(
        root,
        "sha",
        {"uri": str(src / "patents.csv.gz"), "files": {"patents.csv.gz": {"sha256": "ab" * 32}}},
        {"uri": str(src / "publications.csv.gz")},
    )
    monkeypatch.setenv("STCLUSTERS_SOURCES_FILE", str(path))
    with pytest.raises(SourceError, match="sha256 mismatch"):
        tasks.pull(conf(root, "sha", 1990))
    bad = sources_file(root, "sha", {"uri": str(src / "patents.csv.gz"), "sha256": "xyz"}, {"uri": "x.csv"})
    monkeypatch.setenv("STCLUSTERS_SOURCES_FILE", str(bad))
    with pytest.raises(ConfigError, match=r"source_sets.sha.patents.sha256: 'xyz' is not a sha256"):
        tasks.pull(conf(root, "sha", 1990))


def test_decompressed_size_cap_refuses_the_file(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = root / "cap"
    src.mkdir()
    (src / "patents.csv.gz").write_bytes(dump(20_000, PATENT, PATENT_COLUMNS))  # ~1 MB decompressed
    (src / "publications.csv.gz").write_bytes(dump(3, ARTICLE, PUBLICATION_COLUMNS))
    path = sources_file(
        root, "cap", {"uri": str(src / "patents.csv.gz")}, {"uri": str(src / "publications.csv.gz")}
    )
    monkeypatch.setenv("STCLUSTERS_SOURCES_FILE", str(path))
    with pytest.raises(land.LoadError, match=r"patents.csv.gz: more than 536870 bytes once decompressed"):
        tasks.pull(conf(root, "cap", 1991, max_input_gib=0.0005))


def test_landing_keeps_only_what_the_last_landed_json_references(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = root / "ret"
    src.mkdir()
    for name in ("patents-a.csv.gz", "patents-b.csv.gz"):
        (src / name).write_bytes(dump(3, PATENT, PATENT_COLUMNS))
    (src / "publications.csv.gz").write_bytes(dump(3, ARTICLE, PUBLICATION_COLUMNS))
    monkeypatch.setenv(
        "STCLUSTERS_SOURCES_FILE",
        str(
            sources_file(
                root, "ret", {"uri": str(src / "patents-a.csv.gz")}, {"uri": str(src / "publications.csv.gz")}
            )
        ),
    )
    c = conf(root, "ret", 1992)
    tasks.pull(c)
    landing = handover.landing_dir(config.resolve(c))
    (landing / "patents" / ".patents-a.csv.gz.0badc0de.part").write_bytes(b"left by a killed pull")
    monkeypatch.setenv(
        "STCLUSTERS_SOURCES_FILE",
        str(
            sources_file(
                root, "ret", {"uri": str(src / "patents-b.csv.gz")}, {"uri": str(src / "publications.csv.gz")}
            )
        ),
    )
    tasks.pull(c)
    assert sorted(p.name for p in (landing / "patents").iterdir()) == [
        "patents-b.csv.gz",
        "patents-b.csv.gz.sha256",
        "patents-b.csv.gz.source.json",
    ]
    assert tasks.load(c)["rows_loaded"] == 6


def test_unknown_placeholder_in_a_uri_names_the_allowed_one(root: Path) -> None:
    p = config.resolve({"patents_uri": "data/{year}/patents.csv.gz"}, environ={})
    with pytest.raises(
        ConfigError,
        match=r"patents_uri 'data/\{year\}/patents.csv.gz'.*only placeholder allowed is \{edition\}",
    ):
        p.uri("patents")
    assert config.resolve({"patents_uri": "d/{edition}/p.csv"}, environ={}).uri("patents") == "d/2023/p.csv"


def test_sha_of_landed_record_is_the_content(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18 item 2: a changed local file with the same name, size and mtime is landed again
    and landed.json records the new content's sha256."""
    import os

    src = root / "same"
    src.mkdir()
    pat = src / "patents.csv"
    pat.write_bytes(gzip.decompress(dump(5, PATENT, PATENT_COLUMNS)))
    (src / "publications.csv.gz").write_bytes(dump(3, ARTICLE, PUBLICATION_COLUMNS))
    monkeypatch.setenv(
        "STCLUSTERS_SOURCES_FILE",
        str(sources_file(root, "same", {"uri": str(pat)}, {"uri": str(src / "publications.csv.gz")})),
    )
    c = conf(root, "same", 1993)
    tasks.pull(c)
    st = pat.stat()
    new = gzip.decompress(dump(5, PATENT.replace("Tokyo", "Osaka"), PATENT_COLUMNS))
    assert len(new) == st.st_size
    pat.write_bytes(new)
    os.utime(pat, ns=(st.st_atime_ns, st.st_mtime_ns))
    tasks.pull(c)
    landed = json.loads((handover.landing_dir(config.resolve(c)) / "landed.json").read_text())
    [f] = landed["layers"]["patents"]["files"]
    assert f["sha256"] == hashlib.sha256(new).hexdigest() and not f["reused"]
    assert Path(f["path"]).read_bytes() == new


def test_make_clean_workspace_applies_the_retention_rule(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from stclusters.config import REPO_ROOT

    ws = tmp_path / "workspace" / "2023"
    landing = ws / "landing" / "patents"
    landing.mkdir(parents=True)
    kept = landing / "patents.csv.gz"
    for name in (
        "patents.csv.gz",
        "patents.csv.gz.sha256",
        "old-patents.csv.gz",
        "old-patents.csv.gz.sha256",
    ):
        (landing / name).write_bytes(b"x")
    record = {"layers": {"patents": {"files": [{"path": str(kept)}], "canonical": [str(kept)]}}}
    (ws / "landing" / "landed.json").write_text(json.dumps(record))
    dead = int(
        subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        ).stdout
    )
    (ws / f"stclusters.duckdb.loading-{dead}").write_bytes(b"x")
    (ws / "stclusters.duckdb").write_bytes(b"db")
    runs = [f"2026010{d}T000000000000Z" for d in range(1, 8)]
    for run in runs:  # keep_validation_runs (5) are kept
        (ws / "validation" / run).mkdir(parents=True)
    env = dict(os.environ)
    out = subprocess.run(
        ["make", "-s", "-C", str(REPO_ROOT), "clean-workspace", f"WORKSPACE={tmp_path / 'workspace'}"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "removed 5 file(s)/folder(s)" in out
    assert sorted(p.name for p in landing.iterdir()) == ["patents.csv.gz", "patents.csv.gz.sha256"]
    assert sorted(p.name for p in (ws / "validation").iterdir()) == runs[2:]
    assert (ws / "stclusters.duckdb").exists() and not list(ws.glob("*.loading-*"))
