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
from stclusters.config import REPO_ROOT
from stclusters.pull import sources
from stclusters.pull.sources import SourceError, pull

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
    with LoopbackServer({"/f.csv": Route(BODY, fail_first=2)}) as server:
        [landed] = pull(server.url("/f.csv"), tmp_path, **FAST)
        assert server.count("GET", "/f.csv") == 3
    assert landed.sha256 == SHA


def test_http_429_honours_retry_after_then_succeeds(tmp_path: Path) -> None:
    with LoopbackServer({"/f.csv": Route(BODY, fail_first=1, fail_status=429, retry_after=1)}) as server:
        started = time.monotonic()
        pull(server.url("/f.csv"), tmp_path, **FAST)
        assert time.monotonic() - started >= 0.9  # waited for Retry-After, not the 0.01 s backoff
        assert server.count("GET", "/f.csv") == 2


def test_http_persistent_500_fails_after_all_attempts(tmp_path: Path) -> None:
    with LoopbackServer({"/f.csv": Route(BODY, fail_first=100)}) as server:
        with pytest.raises(SourceError, match=r"failed after 3 attempts: HTTP 500") as err:
            pull(server.url("/f.csv"), tmp_path, retries=2, backoff_s=0.01)
        assert server.count("GET", "/f.csv") == 3
    assert err.value.uri.endswith("/f.csv")
    assert_nothing_landed(tmp_path, "f.csv")


def test_http_404_is_not_retried(tmp_path: Path) -> None:
    with LoopbackServer({}) as server:
        with pytest.raises(SourceError, match="HTTP 404"):
            pull(server.url("/missing.csv"), tmp_path, **FAST)
        assert server.count("GET", "/missing.csv") == 1
    assert_nothing_landed(tmp_path, "missing.csv")


def test_body_cut_short_once_is_retried(tmp_path: Path) -> None:
    with LoopbackServer({"/f.csv": Route(BODY, truncate_first=1)}) as server:
        [landed] = pull(server.url("/f.csv"), tmp_path, **FAST)
        assert server.count("GET", "/f.csv") == 2
    assert landed.path.read_bytes() == BODY


def test_body_always_cut_short_fails_and_lands_nothing(tmp_path: Path) -> None:
    with LoopbackServer({"/f.csv": Route(BODY, truncate_first=-1)}) as server:
        with pytest.raises(SourceError, match=r"body cut short: 150000 of 300000 bytes"):
            pull(server.url("/f.csv"), tmp_path, retries=2, backoff_s=0.01)
        assert server.count("GET", "/f.csv") == 3
    assert_nothing_landed(tmp_path, "f.csv")


def test_checksum_mismatch_fails_and_lands_nothing(tmp_path: Path) -> None:
    with LoopbackServer({"/f.csv": Route(BODY)}) as server:
        with pytest.raises(SourceError, match="sha256 mismatch"):
            pull(server.url("/f.csv"), tmp_path, expected_sha256="0" * 64, **FAST)
        assert server.count("GET", "/f.csv") == 1  # a wrong checksum is not transient
    assert_nothing_landed(tmp_path, "f.csv")


def test_size_mismatch_fails(tmp_path: Path) -> None:
    with LoopbackServer({"/f.csv": Route(BODY)}) as server, pytest.raises(SourceError, match="size mismatch"):
        pull(server.url("/f.csv"), tmp_path, expected_size=len(BODY) + 1, **FAST)
    assert_nothing_landed(tmp_path, "f.csv")


def test_checksum_match_passes(tmp_path: Path) -> None:
    with LoopbackServer({"/f.csv": Route(BODY)}) as server:
        [landed] = pull(
            server.url("/f.csv"), tmp_path, expected_sha256=SHA.upper(), expected_size=len(BODY), **FAST
        )
    assert landed.sha256 == SHA


def test_slow_server_within_timeout_succeeds(tmp_path: Path) -> None:
    route = Route(BODY, delay_s=0.3, chunk_delay_s=0.02, chunk_size=50_000)
    with LoopbackServer({"/f.csv": route}) as server:
        [landed] = pull(server.url("/f.csv"), tmp_path, timeout_s=2, retries=0)
    assert landed.sha256 == SHA


def test_server_slower_than_timeout_fails(tmp_path: Path) -> None:
    with LoopbackServer({"/f.csv": Route(BODY, delay_s=3)}) as server:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"(?i)timed out"):
            pull(server.url("/f.csv"), tmp_path, timeout_s=0.3, retries=1, backoff_s=0.01)
        assert time.monotonic() - started < 2.5
        assert server.count("GET", "/f.csv") == 2
    assert_nothing_landed(tmp_path, "f.csv")


def test_body_stalling_beyond_timeout_fails(tmp_path: Path) -> None:
    route = Route(BODY, chunk_delay_s=2, chunk_size=100_000)
    with LoopbackServer({"/f.csv": route}) as server, pytest.raises(SourceError, match=r"(?i)timed out"):
        pull(server.url("/f.csv"), tmp_path, timeout_s=0.3, retries=0)
    assert_nothing_landed(tmp_path, "f.csv")


def test_connection_refused_is_retried_then_fails(tmp_path: Path) -> None:
    server = LoopbackServer({})
    url = server.url("/f.csv")  # bound, never started, then closed: the port refuses connections
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
    with LoopbackServer({"/f.csv": Route(BODY, etag='"v1"')}) as server:
        pull(server.url("/f.csv"), tmp_path, **FAST)
        server.routes["/f.csv"] = Route(b"new content", etag='"v2"')
        [landed] = pull(server.url("/f.csv"), tmp_path, **FAST)
        assert server.count("GET", "/f.csv") == 2
    assert not landed.reused and landed.path.read_bytes() == b"new content"
    assert (tmp_path / "f.csv.sha256").read_text().startswith(hashlib.sha256(b"new content").hexdigest())


def test_without_etag_or_digest_the_body_is_fetched_again(tmp_path: Path) -> None:
    """Size and Last-Modified say nothing about content: without a strong ETag or a digest the
    body is fetched (and hashed) again."""
    stamp = "Wed, 01 Nov 2023 10:00:00 GMT"
    with LoopbackServer({"/f.csv": Route(BODY, last_modified=stamp)}) as server:
        pull(server.url("/f.csv"), tmp_path, **FAST)
        server.routes["/f.csv"] = Route(BODY[::-1], last_modified=stamp)  # same size and date
        [again] = pull(server.url("/f.csv"), tmp_path, **FAST)
        assert server.count("GET", "/f.csv") == 2
    assert not again.reused and again.sha256 == hashlib.sha256(BODY[::-1]).hexdigest()
    assert again.path.read_bytes() == BODY[::-1]


def test_weak_etag_does_not_make_a_landed_file_reusable(tmp_path: Path) -> None:
    with LoopbackServer({"/f.csv": Route(BODY, etag='W/"v1"')}) as server:
        pull(server.url("/f.csv"), tmp_path, **FAST)
        assert not pull(server.url("/f.csv"), tmp_path, **FAST)[0].reused
        assert server.count("GET", "/f.csv") == 2


def test_file_without_sidecar_or_tampered_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_bytes(b"partial junk")  # e.g. left by a tool that is not pull()
    with LoopbackServer({"/f.csv": Route(BODY, etag='"v1"')}) as server:
        assert not pull(server.url("/f.csv"), tmp_path, **FAST)[0].reused
        with open(tmp_path / "f.csv", "ab") as fh:
            fh.write(b"x")  # size no longer matches the sidecar
        assert not pull(server.url("/f.csv"), tmp_path, **FAST)[0].reused
        assert server.count("GET", "/f.csv") == 2
    assert (tmp_path / "f.csv").read_bytes() == BODY


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
    [landed] = pull("tests/fixtures/canonical/patents.csv", tmp_path)
    assert landed.sha256 == sources.sha256_file(
        REPO_ROOT / "tests" / "fixtures" / "canonical" / "patents.csv"
    )


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
        # memory:// gives no ETag and no checksum: nothing says the content is the same
        assert not any(f.reused for f in pull("memory://stc-test/2023/*.csv.gz", tmp_path))
        with pytest.raises(SourceError, match="no such object"):
            pull("memory://stc-test/2023/missing.csv.gz", tmp_path)
    finally:
        fs.rm("/stc-test", recursive=True)


# --- issue 18: completeness, content-keyed landing, source rule, deadline -----------------------
def test_content_length_shorter_than_the_body_is_a_failed_download(tmp_path: Path) -> None:
    """A server announcing half of what it sends: http.client stops at Content-Length, so half a
    dump used to land as complete."""
    with LoopbackServer({"/p.csv": Route(BODY, announce_length=len(BODY) // 2)}) as server:
        with pytest.raises(SourceError, match=r"failed after 3 attempts: body longer than announced"):
            pull(server.url("/p.csv"), tmp_path, retries=2, backoff_s=0.01, timeout_s=5)
        assert server.count("GET", "/p.csv") == 3  # retried
    assert_nothing_landed(tmp_path, "p.csv")


def test_content_length_right_after_a_lying_attempt_lands(tmp_path: Path) -> None:
    with LoopbackServer({"/p.csv": Route(BODY, announce_length=1000)}) as server:
        with pytest.raises(SourceError):
            pull(server.url("/p.csv"), tmp_path, retries=0, timeout_s=5)
        server.routes["/p.csv"] = Route(BODY)
        [landed] = pull(server.url("/p.csv"), tmp_path, retries=0, timeout_s=5)
    assert landed.sha256 == SHA and landed.path.read_bytes() == BODY


def _b64(digest: bytes) -> str:
    import base64

    return base64.b64encode(digest).decode()


def test_digest_header_from_the_server_is_checked(tmp_path: Path) -> None:
    good = {"Repr-Digest": f"sha-256=:{_b64(hashlib.sha256(BODY).digest())}:"}
    bad = {"Digest": f"SHA-256={_b64(hashlib.sha256(b'other').digest())}"}
    bad_md5 = {"Content-MD5": _b64(hashlib.md5(b"other").digest())}
    with LoopbackServer(
        {
            "/g.csv": Route(BODY, headers=good),
            "/b.csv": Route(BODY, headers=bad),
            "/m.csv": Route(BODY, headers=bad_md5),
        }
    ) as server:
        assert pull(server.url("/g.csv"), tmp_path, **FAST)[0].sha256 == SHA
        with pytest.raises(SourceError, match=r"sha256 mismatch: the source states"):
            pull(server.url("/b.csv"), tmp_path, **FAST)
        with pytest.raises(SourceError, match=r"MD5 mismatch: the source states"):
            pull(server.url("/m.csv"), tmp_path, **FAST)
        assert server.count("GET", "/b.csv") == 1  # a wrong checksum is not transient
    assert_nothing_landed(tmp_path, "b.csv")
    assert_nothing_landed(tmp_path, "m.csv")


def test_digest_header_makes_a_landed_file_reusable_and_a_change_refetches(tmp_path: Path) -> None:
    def route(body: bytes) -> Route:
        return Route(body, headers={"Repr-Digest": f"sha-256=:{_b64(hashlib.sha256(body).digest())}:"})

    with LoopbackServer({"/f.csv": route(BODY)}) as server:
        pull(server.url("/f.csv"), tmp_path, **FAST)
        assert pull(server.url("/f.csv"), tmp_path, **FAST)[0].reused
        server.routes["/f.csv"] = route(BODY[::-1])
        assert not pull(server.url("/f.csv"), tmp_path, **FAST)[0].reused
        assert server.count("GET", "/f.csv") == 2


def test_changed_local_file_with_same_name_size_and_mtime_is_landed_again(tmp_path: Path) -> None:
    src = tmp_path / "src" / "patents.csv"
    src.parent.mkdir()
    src.write_bytes(b"a,b\n1,2\n")
    first = pull(str(src), tmp_path / "l")[0]
    st = src.stat()
    src.write_bytes(b"a,b\n9,9\n")
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))  # same name, size and mtime
    again = pull(str(src), tmp_path / "l")[0]
    assert not again.reused
    assert again.path.read_bytes() == b"a,b\n9,9\n"
    assert again.sha256 == hashlib.sha256(b"a,b\n9,9\n").hexdigest() != first.sha256
    meta = json.loads((tmp_path / "l" / "patents.csv.source.json").read_text())
    assert meta["sha256"] == again.sha256


def test_same_name_from_another_location_is_landed_again(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "x.csv", tmp_path / "b" / "x.csv"
    for path in (a, b):
        path.parent.mkdir()
        path.write_bytes(b"same bytes\n")
    pull(str(a), tmp_path / "l")
    again = pull(str(b), tmp_path / "l")[0]
    assert not again.reused  # keyed by location + content, not by name
    assert json.loads((tmp_path / "l" / "x.csv.source.json").read_text())["location"] == str(b)


def test_landed_file_edited_in_place_with_same_size_is_not_reused(tmp_path: Path) -> None:
    with LoopbackServer({"/f.csv": Route(BODY, etag='"v1"')}) as server:
        [first] = pull(server.url("/f.csv"), tmp_path, **FAST)
        first.path.write_bytes(bytes(len(BODY)))  # same size, other bytes, sidecars untouched
        [again] = pull(server.url("/f.csv"), tmp_path, **FAST)
        assert server.count("GET", "/f.csv") == 2
    assert not again.reused and again.path.read_bytes() == BODY


def test_non_data_sources_are_refused_before_anything_is_read(tmp_path: Path, caplog) -> None:
    secret = tmp_path / "etc" / "app.conf"
    secret.parent.mkdir()
    secret.write_text("password=hunter2\n")
    caplog.set_level("DEBUG")
    for uri in (str(secret), str(tmp_path / "etc" / "*.conf"), secret.as_uri(), "/etc/*.conf"):
        if uri == "/etc/*.conf" and not list(Path("/etc").glob("*.conf")):
            continue
        with pytest.raises(SourceError, match=r"not a data file.*nothing was read"):
            pull(uri, tmp_path / "landing")
    assert not (tmp_path / "landing").exists() or not list((tmp_path / "landing").iterdir())
    assert "hunter2" not in caplog.text
    with LoopbackServer({"/api/export": Route(BODY)}) as server:
        with pytest.raises(SourceError, match="not a data file"):
            pull(server.url("/api/export"), tmp_path / "landing", **FAST)
        assert server.requests == []  # not even asked


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("patents.csv.gz", True),
        ("savedrecs.txt", True),
        ("works.jsonl.GZ", True),
        ("part_000.gz", True),
        ("manifest", True),
        ("manifest.conf", False),
        ("g_patent.tsv", True),
        ("passwd", False),
        ("app.conf", False),
        ("shadow.gz", False),
        ("x.csv.exe", False),
    ],
)
def test_source_rule_names(name: str, ok: bool) -> None:
    assert sources.is_data_name(name) is ok


def test_download_has_a_total_deadline_besides_the_read_timeout(tmp_path: Path) -> None:
    """A server dribbling one small chunk at a time never trips the read timeout."""
    route = Route(BODY, chunk_size=1000, chunk_delay_s=0.1)  # 300 chunks: 30 s in all
    with LoopbackServer({"/f.csv": route}) as server:
        started = time.monotonic()
        with pytest.raises(SourceError, match="deadline"):
            pull(server.url("/f.csv"), tmp_path, timeout_s=2, deadline_s=1.0, retries=3, backoff_s=0.01)
        assert time.monotonic() - started < 4
        assert server.count("GET", "/f.csv") == 1  # a reached deadline is not retried
    assert_nothing_landed(tmp_path, "f.csv")


def test_expected_values_per_file_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.csv").write_bytes(b"a\n")
    (src / "b.csv").write_bytes(b"b\n")
    expected = {"b.csv": sources.Expected(sha256="0" * 64)}
    with pytest.raises(SourceError, match=r"b\.csv: sha256 mismatch"):
        pull(str(src / "*.csv"), tmp_path / "l", expected_files=expected)
    ok = {"a.csv": sources.Expected(sha256=hashlib.sha256(b"a\n").hexdigest(), size=2)}
    assert len(pull(str(src / "*.csv"), tmp_path / "l", expected_files=ok)) == 2
    with pytest.raises(SourceError, match=r"declared for \['c.csv'\]"):
        pull(str(src / "*.csv"), tmp_path / "l", expected_files={"c.csv": sources.Expected(size=1)})
