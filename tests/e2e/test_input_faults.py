"""Input faults (issue 18) through the real task bodies: `tasks.pull` from a real loopback HTTP
server, a real S3-compatible server (moto's server mode on 127.0.0.1) and real files, `tasks.load`
into a real DuckDB file, `python -m stclusters run` and `make clean-workspace` where the user runs
them. Each fault must be refused before it reaches the database (or quarantined and counted),
with a message that names the file, and must leave what an earlier run landed as it was.
docs/operations.md ("Fault matrix", "Input faults") lists them, a row per fault. Every workspace
shares the session's gazetteer cache (tests/e2e/conftest.py)."""

from __future__ import annotations

import base64
import glob
import gzip
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from hashlib import sha256
from pathlib import Path

import duckdb
import pytest
import yaml

from httpserver import LoopbackServer, Route
from stclusters import config, handover, runlock, tasks
from stclusters.load import land
from stclusters.pull.sources import SourceError
from stclusters.schema import PATENT_COLUMNS, PUBLICATION_COLUMNS
from worlds import share_gazetteer

pytestmark = pytest.mark.e2e

PATENT = "WO2020{n:06d},2020-03-05,1,Tokyo,,,JP,,,Acme,G06F"
ARTICLE = "WOS:{n},2019,Article,1,Univ,Tokyo,,,JP,,,Physics"


def text(rows: int, row: str, header: tuple[str, ...]) -> bytes:
    return ("\n".join([",".join(header), *(row.format(n=i) for i in range(1, rows + 1))]) + "\n").encode()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, gazetteer_cache: Path) -> Path:
    root = tmp_path_factory.mktemp("input-faults")
    (root / "gazetteer").symlink_to(gazetteer_cache)  # every workspace shares the session's cache
    return root


def use_source_set(
    root: Path, monkeypatch: pytest.MonkeyPatch, name: str, patents: dict, publications: dict, **conf: object
) -> dict:
    """A source set ``name`` in its own sources file (the run's STCLUSTERS_SOURCES_FILE) and the
    conf of a run of it in the workspace folder ``root/name``."""
    path = root / f"{name}.yml"
    path.write_text(
        yaml.safe_dump({"source_sets": {name: {"patents": patents, "publications": publications}}})
    )
    monkeypatch.setenv("STCLUSTERS_SOURCES_FILE", str(path))
    workspace = share_gazetteer(root / name, root / "gazetteer")
    # its own output folder: never the repo's output/, whose publications would make the pull
    # refuse a run that differs from them
    output = root / f"{name}-output"
    return {
        "source_set": name,
        "edition": 2023,
        "workspace_dir": str(workspace),
        "output_dir": str(output),
        **conf,
    }


def use_sources(
    root: Path, monkeypatch: pytest.MonkeyPatch, name: str, patents: str, publications: str
) -> dict:
    return use_source_set(root, monkeypatch, name, {"uri": patents}, {"uri": publications})


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
        manifest = handover.landing_dir(config.resolve(conf)) / "landed.json"
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
    landing = handover.landing_dir(config.resolve(conf))
    assert not landing.exists() or not [p for p in landing.rglob("*") if p.is_file()]
    assert not [ln for ln in first_lines if ln in caplog.text]


def _first_line(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            line = fh.readline().strip()
    except OSError:
        return []
    return [line] if len(line) > 12 else []  # short lines ("#") would match anything


def landed_files(conf: dict) -> list[Path]:
    landing = handover.landing_dir(config.resolve(conf))
    return sorted(p for p in landing.rglob("*") if p.is_file()) if landing.exists() else []


def landed_record(conf: dict) -> dict:
    return json.loads((handover.landing_dir(config.resolve(conf)) / "landed.json").read_text())


def test_body_cut_short_is_retried_then_refused_and_nothing_lands(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = text(600, PATENT, PATENT_COLUMNS)
    with LoopbackServer({"/patents.csv": Route(body, truncate_first=-1)}, max_lifetime_s=900) as server:
        conf = use_sources(root, monkeypatch, "cut", server.url("/patents.csv"), str(articles_file(root)))
        with pytest.raises(SourceError, match=rf"body cut short: {len(body) // 2} of {len(body)} bytes"):
            tasks.pull(conf)
        assert server.count("GET", "/patents.csv") == 5  # the first attempt and 4 retries
    assert landed_files(conf) == []


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_a_wrong_checksum_stated_by_the_server_is_refused_at_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = text(50, PATENT, PATENT_COLUMNS)
    routes = {
        "/sha/patents.csv": Route(body, headers={"Repr-Digest": f"sha-256=:{_b64(sha256(b'x').digest())}:"}),
        "/md5/patents.csv": Route(body, headers={"Content-MD5": _b64(hashlib.md5(b"x").digest())}),
        "/ok/patents.csv": Route(body, headers={"Repr-Digest": f"sha-256=:{_b64(sha256(body).digest())}:"}),
    }
    articles = str(articles_file(root))
    with LoopbackServer(routes, max_lifetime_s=900) as server:
        for path, message in (
            ("/sha/patents.csv", "sha256 mismatch: the source states"),
            ("/md5/patents.csv", "MD5 mismatch: the source states"),
        ):
            conf = use_sources(root, monkeypatch, "digest", server.url(path), articles)
            with pytest.raises(SourceError, match=message):
                tasks.pull(conf)
            assert server.count("GET", path) == 1  # a wrong checksum is not transient: no retry
        assert landed_files(conf) == []
        tasks.pull(use_sources(root, monkeypatch, "digest", server.url("/ok/patents.csv"), articles))
    assert landed_record(conf)["layers"]["patents"]["files"][0]["sha256"] == sha256(body).hexdigest()


def test_declared_rows_sha256_and_size_are_checked(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dump of half the rows, served as complete: only what the source set declares catches it."""
    dump = root / "src" / "declared" / "patents.csv.gz"
    dump.parent.mkdir(parents=True)
    dump.write_bytes(gzip.compress(text(200, PATENT, PATENT_COLUMNS), mtime=0))
    articles = {"uri": str(articles_file(root))}
    digest, size = sha256(dump.read_bytes()).hexdigest(), dump.stat().st_size

    def declare(**declared: object) -> dict:
        patents = {"uri": str(dump), "files": {"patents.csv.gz": declared}}
        return use_source_set(root, monkeypatch, "declared", patents, articles)

    conf = declare(rows=400)
    tasks.pull(conf)
    with pytest.raises(land.LoadError) as err:
        tasks.load(conf)
    assert (
        "patents.csv.gz: 200 data rows (200 loaded, 0 quarantined), but the source set declares rows: 400"
        in (str(err.value))
    )
    with pytest.raises(SourceError, match=rf"patents.csv.gz: sha256 mismatch: got {digest}, expected (ab)+$"):
        tasks.pull(declare(sha256="ab" * 32))
    with pytest.raises(SourceError, match=rf"size mismatch: got {size} bytes, expected {size + 1}"):
        tasks.pull(declare(size=size + 1))
    with pytest.raises(
        config.ConfigError, match=r"declared.patents.files.patents.csv.gz.sha256: 'xyz' is not"
    ):
        tasks.pull(declare(sha256="xyz"))
    conf = declare(rows=200, sha256=digest, size=size)
    tasks.pull(conf)
    assert tasks.load(conf)["rows_loaded"] == 240


def test_landing_is_keyed_by_location_and_content(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed local file with the same name, size and mtime used to be "already landed"
    (the run used the old content, landed.json the old sha256). Landing is keyed by location and
    content; an HTTP body without a strong ETag or digest is fetched again."""
    src = root / "src" / "same"
    first, moved = src / "a" / "patents.csv", src / "b" / "patents.csv"
    first.parent.mkdir(parents=True)
    first.write_bytes(text(5, PATENT, PATENT_COLUMNS))
    articles = str(articles_file(root))
    conf = use_sources(root, monkeypatch, "same", str(first), articles)
    tasks.pull(conf)
    stat = first.stat()
    osaka = text(5, PATENT.replace("Tokyo", "Osaka"), PATENT_COLUMNS)  # the same size
    first.write_bytes(osaka)
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    tasks.pull(conf)
    [landed] = landed_record(conf)["layers"]["patents"]["files"]
    assert (landed["sha256"], landed["reused"]) == (sha256(osaka).hexdigest(), False)
    tasks.load(conf)
    con = duckdb.connect(str(config.resolve(conf).duckdb_path), read_only=True)
    assert con.sql("select distinct city from raw.patents").fetchall() == [("Osaka",)]
    con.close()
    # the same name and bytes from another location
    moved.parent.mkdir()
    moved.write_bytes(osaka)
    tasks.pull(conf := use_sources(root, monkeypatch, "same", str(moved), articles))
    [landed] = landed_record(conf)["layers"]["patents"]["files"]
    assert (landed["uri"], landed["reused"]) == (str(moved), False)

    body = text(50, PATENT, PATENT_COLUMNS)
    stamp = "Wed, 01 Nov 2023 10:00:00 GMT"
    routes = {
        "/strong/patents.csv": Route(body, etag='"v1"'),
        "/weak/patents.csv": Route(body, etag='W/"v1"'),
        "/plain/patents.csv": Route(body, last_modified=stamp),
    }
    with LoopbackServer(routes, max_lifetime_s=900) as server:
        for path in routes:
            conf = use_sources(root, monkeypatch, "same-http", server.url(path), articles)
            tasks.pull(conf)
            if path == "/strong/patents.csv":
                tasks.pull(conf)  # unchanged, with a strong ETag: reused (the test can tell)
                assert server.count("GET", path) == 1
                [landed] = landed_record(conf)["layers"]["patents"]["files"]
                Path(landed["path"]).write_bytes(bytes(len(body)))  # edited in place, same size
            elif path == "/plain/patents.csv":  # no ETag: same size and date, other bytes
                server.routes[path] = Route(body.replace(b"Tokyo", b"Osaka"), last_modified=stamp)
            tasks.pull(conf)
            assert server.count("GET", path) == 2, path
            [landed] = landed_record(conf)["layers"]["patents"]["files"]
            assert Path(landed["path"]).read_bytes() == server.routes[path].body and not landed["reused"]


def _zeros_gz(path: Path, head: bytes, mib: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(head)
        for _ in range(mib):
            fh.write(bytes(1 << 20))
    return path


# what the pull says when it refuses each kind of file (case -> message)
REFUSED = {
    "header-over-the-cap": r"line 1 \(header\) is longer than 65536 bytes: not a canonical header",
    "decompressed-over-max_input_gib": (
        r"more than 536870 bytes once decompressed, the cap set by the run parameter max_input_gib"
    ),
    "invalid-utf8-header": r"line 1 \(header\) is not valid UTF-8 \(byte 0\): the file must be UTF-8",
    "not-column-names": r"that are not column names \(not shown\)",
    "duplicated-column": r"header: duplicated columns \['country'\]",
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_or_oversized_files_are_refused_at_the_pull_without_echoing_them(
    case: str, root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = root / "src" / "refused" / case
    patents, extra = folder / "patents.csv.gz", {}
    secret = "secret-header-text"
    if case == "header-over-the-cap":  # a gzip of zeros: the header check used to read it all
        _zeros_gz(patents, b"", 64)
    elif case == "decompressed-over-max_input_gib":
        _zeros_gz(patents, text(3, PATENT, PATENT_COLUMNS), 1)  # 1 MiB: over a cap of 0.0005 GiB
        extra = {"max_input_gib": 0.0005}
    elif case == "invalid-utf8-header":
        patents.parent.mkdir(parents=True)
        patents.write_bytes(
            gzip.compress(b"\xff" + secret.encode() + b"\n" + text(3, PATENT, PATENT_COLUMNS))
        )
    elif case == "not-column-names":  # a system file renamed as a dump
        patents.parent.mkdir(parents=True)
        secret = "/root:/bin/bash"
        patents.write_bytes(gzip.compress(b"root:x:0:0:root:/root:/bin/bash\n"))
    else:
        patents.parent.mkdir(parents=True)
        rows = [",".join([*PATENT_COLUMNS, "country"]), *(PATENT.format(n=n) + ",JP" for n in (1, 2))]
        patents.write_bytes(gzip.compress("\n".join(rows).encode() + b"\n"))
    conf = use_source_set(
        root, monkeypatch, "refused", {"uri": str(patents)}, {"uri": str(articles_file(root))}, **extra
    )
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(land.LoadError, match=REFUSED[case]) as err:
        tasks.pull(conf)
    assert time.monotonic() - started < 20  # bounded reads: 64 MiB of zeros are not read whole
    assert "patents.csv.gz" in str(err.value)
    assert secret not in str(err.value) and secret not in caplog.text
    assert not (handover.landing_dir(config.resolve(conf)) / "landed.json").exists()


def test_killed_loads_and_old_landings_are_cleaned_up(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A load killed with SIGKILL leaves stclusters.duckdb.loading-<pid>: the next load removes
    it, and so does `make clean-workspace`. After each pull, landing holds only what landed.json
    references (a renamed dump no longer leaves the old one behind)."""
    src = root / "src" / "leftovers"
    src.mkdir(parents=True)
    for name in ("patents-2022.csv.gz", "patents-2023.csv.gz"):
        (src / name).write_bytes(gzip.compress(text(30, PATENT, PATENT_COLUMNS), mtime=0))
    articles = str(articles_file(root))
    conf = use_sources(root, monkeypatch, "leftovers", str(src / "patents-2022.csv.gz"), articles)
    tasks.pull(conf)
    conf = use_sources(root, monkeypatch, "leftovers", str(src / "patents-2023.csv.gz"), articles)
    tasks.pull(conf)
    params = config.resolve(conf)
    assert sorted(p.name for p in (handover.landing_dir(params) / "patents").iterdir()) == [
        "patents-2023.csv.gz",
        "patents-2023.csv.gz.sha256",
        "patents-2023.csv.gz.source.json",
    ]
    code = "import json, sys; from stclusters import tasks; tasks.load(json.loads(sys.argv[1]))"
    env = dict(os.environ)
    env["STCLUSTERS_RUN_ID"] = runlock.current_run_id()  # the same run's load task

    def kill_a_load() -> Path:
        proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(conf)], env=env)
        loading = params.workspace / f"stclusters.duckdb.loading-{proc.pid}"
        deadline = time.monotonic() + 120
        while not loading.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the load ended before it was killed"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert loading.exists()
        return loading

    stale = kill_a_load()
    assert tasks.load(conf)["rows_loaded"] == 70
    assert not stale.exists() and not list(params.workspace.glob("*.loading-*"))
    stale = kill_a_load()
    cleaned = subprocess.run(
        ["make", "-s", "-C", str(config.REPO_ROOT), "clean-workspace", f"WORKSPACE={conf['workspace_dir']}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert cleaned.returncode == 0 and "clean-workspace: removed" in cleaned.stdout, cleaned.stderr
    assert not stale.exists() and params.duckdb_path.exists()


ARTICLE_HEADER = ",".join(PUBLICATION_COLUMNS)


def _load_publications(
    root: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str
) -> duckdb.DuckDBPyConnection:
    """Pull and load ``body`` as the publications dump (quarantine tolerated); the database."""
    dump = root / "src" / name / "publications.csv"
    dump.parent.mkdir(parents=True)
    dump.write_text(body, encoding="utf-8")
    patents = root / "src" / name / "patents.csv"
    patents.write_bytes(text(3, PATENT, PATENT_COLUMNS))
    conf = use_source_set(
        root, monkeypatch, name, {"uri": str(patents)}, {"uri": str(dump)}, max_quarantine_share=1.0
    )
    tasks.pull(conf)
    tasks.load(conf)
    return duckdb.connect(str(config.resolve(conf).duckdb_path), read_only=True)


def test_quarantine_lines_are_file_lines_with_embedded_newlines(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "\n".join(
        [
            ARTICLE_HEADER,
            'WOS:1,2019,Article,1,"Univ\nof\nTokyo",Tokyo,,,JP,,,Physics',  # lines 2-4
            "WOS:2,20x9,Article,1,Univ,Tokyo,,,JP,,,Physics",  # line 5: bad year
            "",  # line 6: blank
            "WOS:3,2019,Article,1,Univ,Tokyo,,JP",  # line 7: too few fields
            'WOS:4,2019,Article,1,"A\nB",Tokyo,,,XX,,,Physics',  # lines 8-9: unknown country
            "WOS:5,2019,Article,1,Univ,Tokyo,,,JP,,,Physics",  # line 10
        ]
    )
    con = _load_publications(root, monkeypatch, "newlines", body + "\n")
    quarantined = con.sql(
        "select source_line from raw.quarantine where layer = 'publications' order by source_line"
    ).fetchall()
    assert quarantined == [(5,), (7,), (8,)]  # the record numbers would be 3, 5, 6
    loaded = con.sql("select article_id, source_line from raw.publications order by source_line").fetchall()
    assert loaded == [("WOS:1", 2), ("WOS:5", 10)]
    con.close()


def test_canonical_columns_in_another_order_are_loaded_by_name(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    columns = list(reversed(PUBLICATION_COLUMNS))
    rows = [dict(zip(PUBLICATION_COLUMNS, ARTICLE.format(n=n).split(","), strict=True)) for n in (1, 2)]
    body = "\n".join([",".join(columns), *(",".join(r[c] for c in columns) for r in rows)]) + "\n"
    con = _load_publications(root, monkeypatch, "reordered", body)
    assert con.sql(
        "select article_id, publication_year, city, country, subject from raw.publications order by 1"
    ).fetchall() == [("WOS:1", 2019, "Tokyo", "JP", "Physics"), ("WOS:2", 2019, "Tokyo", "JP", "Physics")]
    assert con.sql("select count(*) from raw.quarantine").fetchall() == [(0,)]
    con.close()


FIXTURES = config.REPO_ROOT / "tests" / "fixtures"
WOS_FAULTS = FIXTURES / "wos" / "faults-savedrecs.txt"
OPENALEX_WORKS = FIXTURES / "openalex" / "works-part_000.jsonl.gz"
CAP = 4194304  # MAX_LINE_BYTES


def canonical_file(root: Path, layer: str) -> dict:
    """A small canonical dump for the layer a test does not look at."""
    if layer == "publications":
        return {"uri": str(articles_file(root))}
    path = root / "src" / "patents-small.csv"
    path.write_bytes(text(3, PATENT, PATENT_COLUMNS))
    return {"uri": str(path)}


OVER_CAP = {
    "wos-gzip-of-zeros": rf"savedrecs.txt.gz: line 1: line longer than {CAP} characters \(MAX_LINE_BYTES",
    "wos-multi-megabyte-line": rf"savedrecs.txt: line 5: line longer than {CAP} characters \(MAX_LINE_BYTES",
    "patentsview-header": rf"g_inventor_disambiguated.tsv.gz: line 1: header line longer than {CAP} chara",
}


@pytest.mark.parametrize("case", list(OVER_CAP))
def test_over_cap_lines_of_converted_formats_are_refused_at_the_pull(
    case: str, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 item 5: the adapters used one unbounded readline per line; a gzip of zeros without
    a line end, or a multi-megabyte line, is now refused after reading at most MAX_LINE_BYTES."""
    from stclusters.load.formats.base import FormatError

    folder = root / "src" / "overcap" / case
    if case == "wos-gzip-of-zeros":
        dump = _zeros_gz(folder / "savedrecs.txt.gz", b"", 16)
    elif case == "wos-multi-megabyte-line":
        dump = folder / "savedrecs.txt"
        folder.mkdir(parents=True)
        head = b"FN Clarivate Analytics Web of Science\nVR 1.0\nPT J\nAU Smith, J\nTI "
        dump.write_bytes(head + b"x" * (6 * 2**20) + b"\nER\n\nEF\n")
    else:
        dump = _zeros_gz(folder / "g_inventor_disambiguated.tsv.gz", b"", 16)
    layer, fmt = ("patents", "patentsview") if case == "patentsview-header" else ("publications", "wos")
    specs = {layer: {"uri": str(dump), "format": fmt}}
    other = "publications" if layer == "patents" else "patents"
    specs[other] = canonical_file(root, other)
    conf = use_source_set(root, monkeypatch, "overcap", specs["patents"], specs["publications"])
    started = time.monotonic()
    with pytest.raises(FormatError, match=OVER_CAP[case]):
        tasks.pull(conf)
    assert time.monotonic() - started < 20
    assert not (handover.landing_dir(config.resolve(conf)) / "landed.json").exists()


def test_openalex_line_over_the_cap_is_quarantined_and_an_oversized_page_refused(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stclusters.load.formats.base import FormatError

    folder = root / "src" / "openalex"
    folder.mkdir(parents=True)
    with gzip.open(OPENALEX_WORKS, "rb") as fh:
        lines = fh.read().splitlines(keepends=True)
    huge = b'{"id": "https://openalex.org/W9", "title": "' + b"x" * (5 * 2**20) + b'"}\n'
    works = folder / "part_000.jsonl"
    works.write_bytes(lines[0] + huge + b"".join(lines[1:]))
    spec = {"uri": str(works), "format": "openalex"}
    # the fixture's own faults (5 of its 9 records) are quarantined too: tolerated here
    conf = use_source_set(
        root, monkeypatch, "openalex", canonical_file(root, "patents"), spec, max_quarantine_share=1.0
    )
    tasks.pull(conf)
    tasks.load(conf)
    con = duckdb.connect(str(config.resolve(conf).duckdb_path), read_only=True)
    assert con.sql(
        "select source_line, field, reason, unit from raw.quarantine where reason like 'line longer%'"
    ).fetchall() == [(2, "*", f"line longer than {CAP} characters (MAX_LINE_BYTES): not read", "record")]
    assert con.sql("select count(*) from raw.publications").fetchall()[0][0] > 0  # the rest is read
    con.close()

    # a saved API page over MAX_DOCUMENT_BYTES (64 MiB): refused, not read whole
    page = folder / "page.json.gz"
    work = json.dumps({"id": "https://openalex.org/W1", "type": "article", "title": "y" * 4000}).encode()
    with gzip.open(page, "wb", compresslevel=1) as fh:
        fh.write(b'{"meta": {"count": 17000},\n "results": [\n')
        for _ in range(17_000):  # ~68 MB
            fh.write(work + b",\n")
        fh.write(work + b"]}\n")
    conf = use_source_set(
        root, monkeypatch, "openalex-page", canonical_file(root, "patents"), {**spec, "uri": str(page)}
    )
    with pytest.raises(FormatError, match=r"page.json.gz: one JSON document longer than 67108864 characters"):
        tasks.pull(conf)


def test_adapter_quarantine_keeps_its_unit_and_a_refused_file_keeps_its_quarantine(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Web of Science export with 3 bad records of 12 and 1 bad address of 9. Refused at the
    default max_quarantine_share, its quarantine is kept where the error says; tolerated, the
    quarantine reaches raw.quarantine with its unit, and the gate's share (its query,
    validate.RAW_QUARANTINE_SQL) is per unit: addresses over addresses read, not over rows."""
    from stclusters.gate import validate

    spec = {"uri": str(WOS_FAULTS), "format": "wos"}
    conf = use_source_set(root, monkeypatch, "wos-units", canonical_file(root, "patents"), spec)
    with pytest.raises(land.LoadError, match=r"wos quarantine above max_quarantine_share=1.0%") as err:
        tasks.pull(conf)
    assert "25.0% of records, 11.1% of addresses" in str(err.value)
    kept = Path(str(err.value).split("(file, line, field, reason): ")[1])
    assert kept.parent == config.resolve(conf).workspace / "quarantine"
    assert "unknown country" in kept.read_text()

    conf = {**conf, "max_quarantine_share": 0.5}
    tasks.pull(conf)
    tasks.load(conf)
    con = duckdb.connect(str(config.resolve(conf).duckdb_path), read_only=True)
    units = con.sql(
        "select unit, count(*) from raw.quarantine where layer = 'publications' group by unit order by unit"
    ).fetchall()
    assert units == [("address", 1), ("record", 3)]
    shares = {
        (layer, unit): (n_read, n_q, share)
        for layer, unit, n_read, n_q, share in con.execute(validate.RAW_QUARANTINE_SQL).fetchall()
    }
    con.close()
    assert shares[("publications", "record")] == (12, 3, 0.25)
    assert shares[("publications", "address")][:2] == (9, 1)


def test_an_unknown_placeholder_in_a_uri_names_the_allowed_one(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`{year}` in a source set's URI used to end the run with a bare KeyError."""
    uri = str(root / "src" / "{year}" / "patents.csv.gz")
    conf = use_sources(root, monkeypatch, "placeholder", uri, str(articles_file(root)))
    message = "KeyError 'year' in its placeholders; the only placeholder allowed is {edition}"
    with pytest.raises(config.ConfigError) as err:
        tasks.pull(conf)
    assert str(err.value).startswith(f"patents_uri '{uri}': {message}")
    run = subprocess.run(
        [sys.executable, "-m", "stclusters", "run", "--conf", json.dumps(conf)],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1 and f"ConfigError: patents_uri '{uri}': {message}" in run.stderr


def test_s3_sources_are_pulled_with_size_and_etag_checked(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """s3:// dumps from a real S3-compatible server on 127.0.0.1 (moto's server mode), reached as
    a deployment reaches MinIO: AWS_ENDPOINT_URL and the credentials in the environment."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    s3fs = pytest.importorskip("s3fs")
    # moto keeps its buckets in the process, whichever server serves them: a bucket of its own,
    # removed at the end, so that tests/unit/test_sources_s3.py finds none of it
    BUCKET = "stc-e2e-input-faults"
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    bucket = None
    try:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server._server.server_port}",
        }.items():
            monkeypatch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()
        bucket = boto3.client("s3")
        bucket.create_bucket(Bucket=BUCKET)
        body = gzip.compress(text(30, PATENT, PATENT_COLUMNS), mtime=0)
        bucket.put_object(Bucket=BUCKET, Key="2023/patents.csv.gz", Body=body)
        bucket.put_object(
            Bucket=BUCKET, Key="2023/publications.csv.gz", Body=articles_file(root).read_bytes()
        )
        uris = (f"s3://{BUCKET}/2023/patents.csv.gz", f"s3://{BUCKET}/2023/publications.csv.gz")
        conf = use_sources(root, monkeypatch, "s3", *uris)
        tasks.pull(conf)
        [landed] = landed_record(conf)["layers"]["patents"]["files"]
        assert (landed["size"], landed["sha256"]) == (len(body), sha256(body).hexdigest())
        assert hashlib.md5(body).hexdigest() in Path(landed["path"] + ".source.json").read_text()  # ETag
        tasks.pull(conf)
        assert landed_record(conf)["layers"]["patents"]["files"][0]["reused"] is True  # same ETag
        osaka = gzip.compress(text(30, PATENT.replace("Tokyo", "Osaka"), PATENT_COLUMNS), mtime=0)
        bucket.put_object(Bucket=BUCKET, Key="2023/patents.csv.gz", Body=osaka)
        tasks.pull(conf)
        [landed] = landed_record(conf)["layers"]["patents"]["files"]
        assert (landed["sha256"], landed["reused"]) == (sha256(osaka).hexdigest(), False)
        assert tasks.load(conf)["rows_loaded"] == 70
        declared = {"uri": uris[0], "files": {"patents.csv.gz": {"sha256": sha256(body).hexdigest()}}}
        conf = use_source_set(root, monkeypatch, "s3-declared", declared, {"uri": uris[1]})
        with pytest.raises(SourceError, match=rf"sha256 mismatch: got {sha256(osaka).hexdigest()}"):
            tasks.pull(conf)
    finally:
        if bucket is not None:
            for key in bucket.list_objects_v2(Bucket=BUCKET).get("Contents", []):
                bucket.delete_object(Bucket=BUCKET, Key=key["Key"])
            bucket.delete_bucket(Bucket=BUCKET)
        server.stop()
        s3fs.S3FileSystem.clear_instance_cache()
