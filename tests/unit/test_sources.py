"""sources.pull against real files, a real loopback HTTP server with faults, and fsspec memory://."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import fsspec
import pytest

from httpserver import LoopbackServer, Route  # tests/ is on pytest's pythonpath (pyproject.toml)
from stclusters import sources
from stclusters.config import REPO_ROOT
from stclusters.sources import SourceError, pull

BODY = os.urandom(300_000)  # several chunks, not a multiple of the chunk size
SHA = hashlib.sha256(BODY).hexdigest()
FAST = {"retries": 3, "backoff_s": 0.01, "timeout_s": 5}


def landed_names(landing: Path) -> list[str]:
    return sorted(p.name for p in landing.iterdir()) if landing.exists() else []


def assert_nothing_landed(landing: Path, name: str) -> None:
    names = landed_names(landing)
    assert name not in names
    assert not [n for n in names if n.endswith(".part")], names


def test_http_success_streams_hashes_and_records_sidecars(tmp_path: Path) -> None:
    with LoopbackServer({"/d/patents.csv.gz": Route(BODY)}) as server:
        [landed] = pull(server.url("/d/patents.csv.gz"), tmp_path, **FAST)
    assert landed.path == tmp_path / "patents.csv.gz"
    assert landed.path.read_bytes() == BODY
    assert (landed.size, landed.sha256, landed.reused) == (len(BODY), SHA, False)
    assert landed.fetched_at.endswith("Z") and landed.fetched_at[:4].isdigit()
    assert (tmp_path / "patents.csv.gz.sha256").read_text() == f"{SHA}  patents.csv.gz\n"
    meta = json.loads((tmp_path / "patents.csv.gz.source.json").read_text())
    assert meta["size"] == len(BODY) and meta["uri"] == landed.uri
    assert landed_names(tmp_path) == ["patents.csv.gz", "patents.csv.gz.sha256", "patents.csv.gz.source.json"]


def test_http_500_then_success_is_retried(tmp_path: Path) -> None:
    with LoopbackServer({"/f": Route(BODY, fail_first=2)}) as server:
        [landed] = pull(server.url("/f"), tmp_path, **FAST)
        assert server.count("GET", "/f") == 3
    assert landed.sha256 == SHA


def test_http_429_honours_retry_after_then_succeeds(tmp_path: Path) -> None:
    with LoopbackServer({"/f": Route(BODY, fail_first=1, fail_status=429, retry_after=1)}) as server:
        started = time.monotonic()
        pull(server.url("/f"), tmp_path, **FAST)
        assert time.monotonic() - started >= 0.9  # waited for Retry-After, not the 0.01 s backoff
        assert server.count("GET", "/f") == 2


def test_http_persistent_500_fails_after_all_attempts(tmp_path: Path) -> None:
    with LoopbackServer({"/f": Route(BODY, fail_first=100)}) as server:
        with pytest.raises(SourceError, match=r"failed after 3 attempts: HTTP 500") as err:
            pull(server.url("/f"), tmp_path, retries=2, backoff_s=0.01)
        assert server.count("GET", "/f") == 3
    assert err.value.uri.endswith("/f")
    assert_nothing_landed(tmp_path, "f")


def test_http_404_is_not_retried(tmp_path: Path) -> None:
    with LoopbackServer({}) as server:
        with pytest.raises(SourceError, match="HTTP 404"):
            pull(server.url("/missing.csv"), tmp_path, **FAST)
        assert server.count("GET", "/missing.csv") == 1
    assert_nothing_landed(tmp_path, "missing.csv")


def test_body_cut_short_once_is_retried(tmp_path: Path) -> None:
    with LoopbackServer({"/f": Route(BODY, truncate_first=1)}) as server:
        [landed] = pull(server.url("/f"), tmp_path, **FAST)
        assert server.count("GET", "/f") == 2
    assert landed.path.read_bytes() == BODY


def test_body_always_cut_short_fails_and_lands_nothing(tmp_path: Path) -> None:
    with LoopbackServer({"/f": Route(BODY, truncate_first=-1)}) as server:
        with pytest.raises(SourceError, match=r"body cut short: 150000 of 300000 bytes"):
            pull(server.url("/f"), tmp_path, retries=2, backoff_s=0.01)
        assert server.count("GET", "/f") == 3
    assert_nothing_landed(tmp_path, "f")


def test_checksum_mismatch_fails_and_lands_nothing(tmp_path: Path) -> None:
    with LoopbackServer({"/f": Route(BODY)}) as server:
        with pytest.raises(SourceError, match="sha256 mismatch"):
            pull(server.url("/f"), tmp_path, expected_sha256="0" * 64, **FAST)
        assert server.count("GET", "/f") == 1  # a wrong checksum is not transient
    assert_nothing_landed(tmp_path, "f")


def test_size_mismatch_fails(tmp_path: Path) -> None:
    with LoopbackServer({"/f": Route(BODY)}) as server, pytest.raises(SourceError, match="size mismatch"):
        pull(server.url("/f"), tmp_path, expected_size=len(BODY) + 1, **FAST)
    assert_nothing_landed(tmp_path, "f")


def test_checksum_match_passes(tmp_path: Path) -> None:
    with LoopbackServer({"/f": Route(BODY)}) as server:
        [landed] = pull(
            server.url("/f"), tmp_path, expected_sha256=SHA.upper(), expected_size=len(BODY), **FAST
        )
    assert landed.sha256 == SHA


def test_slow_server_within_timeout_succeeds(tmp_path: Path) -> None:
    route = Route(BODY, delay_s=0.3, chunk_delay_s=0.02, chunk_size=50_000)
    with LoopbackServer({"/f": route}) as server:
        [landed] = pull(server.url("/f"), tmp_path, timeout_s=2, retries=0)
    assert landed.sha256 == SHA


def test_server_slower_than_timeout_fails(tmp_path: Path) -> None:
    with LoopbackServer({"/f": Route(BODY, delay_s=3)}) as server:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"(?i)timed out"):
            pull(server.url("/f"), tmp_path, timeout_s=0.3, retries=1, backoff_s=0.01)
        assert time.monotonic() - started < 2.5
        assert server.count("GET", "/f") == 2
    assert_nothing_landed(tmp_path, "f")


def test_body_stalling_beyond_timeout_fails(tmp_path: Path) -> None:
    route = Route(BODY, chunk_delay_s=2, chunk_size=100_000)
    with LoopbackServer({"/f": route}) as server, pytest.raises(SourceError, match=r"(?i)timed out"):
        pull(server.url("/f"), tmp_path, timeout_s=0.3, retries=0)
    assert_nothing_landed(tmp_path, "f")


def test_connection_refused_is_retried_then_fails(tmp_path: Path) -> None:
    server = LoopbackServer({})
    url = server.url("/f")  # bound, never started, then closed: the port refuses connections
    server.stop()
    with pytest.raises(SourceError, match="failed after 2 attempts: connection failed"):
        pull(url, tmp_path, retries=1, backoff_s=0.01, timeout_s=2)


def test_resumed_run_skips_landed_file_without_fetching_body(tmp_path: Path) -> None:
    route = Route(BODY, etag='"v1"')
    with LoopbackServer({"/f.csv": route}) as server:
        [first] = pull(server.url("/f.csv"), tmp_path, **FAST)
        [again] = pull(server.url("/f.csv"), tmp_path, **FAST)
        assert server.count("GET", "/f.csv") == 1  # the second run only asked HEAD
        assert server.count("HEAD", "/f.csv") == 1
        assert again.reused and not first.reused
        assert (again.sha256, again.size, again.fetched_at) == (first.sha256, first.size, first.fetched_at)
        # With the expected checksum known, a resumed run asks the server nothing at all.
        pull(server.url("/f.csv"), tmp_path, expected_sha256=SHA, **FAST)
        assert len(server.requests) == 2


def test_changed_remote_is_fetched_again(tmp_path: Path) -> None:
    with LoopbackServer({"/f": Route(BODY, etag='"v1"')}) as server:
        pull(server.url("/f"), tmp_path, **FAST)
        server.routes["/f"] = Route(b"new content", etag='"v2"')
        [landed] = pull(server.url("/f"), tmp_path, **FAST)
        assert server.count("GET", "/f") == 2
    assert not landed.reused and landed.path.read_bytes() == b"new content"
    assert (tmp_path / "f.sha256").read_text().startswith(hashlib.sha256(b"new content").hexdigest())


def test_without_etag_size_and_last_modified_decide(tmp_path: Path) -> None:
    stamp = "Wed, 01 Nov 2023 10:00:00 GMT"
    with LoopbackServer({"/f": Route(BODY, last_modified=stamp)}) as server:
        pull(server.url("/f"), tmp_path, **FAST)
        assert pull(server.url("/f"), tmp_path, **FAST)[0].reused
        server.routes["/f"] = Route(BODY, last_modified="Thu, 02 Nov 2023 10:00:00 GMT")
        assert not pull(server.url("/f"), tmp_path, **FAST)[0].reused
        assert server.count("GET", "/f") == 2


def test_file_without_sidecar_or_tampered_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"partial junk")  # e.g. left by a tool that is not pull()
    with LoopbackServer({"/f": Route(BODY, etag='"v1"')}) as server:
        assert not pull(server.url("/f"), tmp_path, **FAST)[0].reused
        with open(tmp_path / "f", "ab") as fh:
            fh.write(b"x")  # size no longer matches the sidecar
        assert not pull(server.url("/f"), tmp_path, **FAST)[0].reused
        assert server.count("GET", "/f") == 2
    assert (tmp_path / "f").read_bytes() == BODY


def test_glob_of_local_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("b.csv", "a.csv", "c.txt"):
        (src / name).write_text(name)
    landed = pull(str(src / "*.csv"), tmp_path / "landing")
    assert [f.path.name for f in landed] == ["a.csv", "b.csv"]
    assert [f.path.read_text() for f in landed] == ["a.csv", "b.csv"]
    assert all(f.uri == str(src / "*.csv") for f in landed)
    with pytest.raises(SourceError, match="glob matches no file"):
        pull(str(src / "*.json"), tmp_path / "landing")


def test_local_reuse_follows_size_and_mtime(tmp_path: Path) -> None:
    src = tmp_path / "dump.csv"
    src.write_bytes(b"a,b\n1,2\n")
    assert not pull(str(src), tmp_path / "l")[0].reused
    assert pull(str(src), tmp_path / "l")[0].reused
    src.write_bytes(b"a,b\n1,3\n")  # same size, new mtime
    os.utime(src, ns=(time.time_ns(), time.time_ns() + 10_000_000))
    again = pull(str(src), tmp_path / "l")[0]
    assert not again.reused and again.path.read_bytes() == b"a,b\n1,3\n"


def test_file_uri(tmp_path: Path) -> None:
    src = tmp_path / "with space.csv"
    src.write_bytes(BODY)
    [landed] = pull(src.as_uri(), tmp_path / "landing", expected_sha256=SHA)
    assert landed.path.name == "with space.csv" and landed.sha256 == SHA


def test_relative_path_is_relative_to_repo_root(tmp_path: Path) -> None:
    [landed] = pull("tests/httpserver.py", tmp_path)
    assert landed.sha256 == sources.sha256_file(REPO_ROOT / "tests" / "httpserver.py")


def test_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        pull(str(tmp_path / "nope.csv"), tmp_path / "l")


def test_list_of_uris_mixing_schemes(tmp_path: Path) -> None:
    local = tmp_path / "pubs.csv"
    local.write_text("x")
    with LoopbackServer({"/patents.csv": Route(BODY)}) as server:
        landed = pull([server.url("/patents.csv"), str(local)], tmp_path / "l", **FAST)
    assert [f.path.name for f in landed] == ["patents.csv", "pubs.csv"]


def test_same_name_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.csv").write_text("1")
    (tmp_path / "b" / "x.csv").write_text("2")
    with pytest.raises(SourceError, match="same name"):
        pull([str(tmp_path / "a" / "x.csv"), str(tmp_path / "b" / "x.csv")], tmp_path / "l")


def test_expected_checksum_needs_a_single_file(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text(name)
    with pytest.raises(SourceError, match="names 2 files"):
        pull(str(tmp_path / "*.csv"), tmp_path / "l", expected_sha256=SHA)


def test_fsspec_memory_filesystem_glob_and_reuse(tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe({"/stc-test/2023/a.csv.gz": BODY, "/stc-test/2023/b.csv.gz": b"b", "/stc-test/2023/c.txt": b"c"})
    try:
        landed = pull("memory://stc-test/2023/*.csv.gz", tmp_path)
        assert [(f.path.name, f.size) for f in landed] == [("a.csv.gz", len(BODY)), ("b.csv.gz", 1)]
        assert landed[0].sha256 == SHA
        assert all(f.reused for f in pull("memory://stc-test/2023/*.csv.gz", tmp_path))
        with pytest.raises(SourceError, match="no such object"):
            pull("memory://stc-test/2023/missing.csv.gz", tmp_path)
    finally:
        fs.rm("/stc-test", recursive=True)
