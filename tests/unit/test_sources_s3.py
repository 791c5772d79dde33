"""s3:// sources against a real S3-compatible server on 127.0.0.1 (moto's server mode, started
by the tests), through s3fs as in production: listing, globbing, size and ETag checks, reuse."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

moto_server = pytest.importorskip("moto.server")
fsspec = pytest.importorskip("fsspec")
pytest.importorskip("s3fs")

from stclusters.pull.sources import SourceError, pull  # noqa: E402

BUCKET = "stc-dumps"
BODY = os.urandom(200_000)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server._server.server_port  # port 0: the OS picked a free one
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    import s3fs

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3_endpoint})
    s3fs.S3FileSystem.clear_instance_cache()
    fs = fsspec.filesystem("s3")
    if fs.exists(BUCKET):  # moto keeps buckets per process: a failed test may have left it
        fs.rm(BUCKET, recursive=True)
    fs.mkdir(BUCKET)
    yield fs
    fs.rm(BUCKET, recursive=True)
    s3fs.S3FileSystem.clear_instance_cache()


def test_s3_glob_lands_every_object_with_size_and_etag_checked(s3, tmp_path: Path) -> None:
    s3.pipe(
        {f"{BUCKET}/2023/a.csv.gz": BODY, f"{BUCKET}/2023/b.csv.gz": b"b\n", f"{BUCKET}/2023/c.conf": b"x"}
    )
    landed = pull(f"s3://{BUCKET}/2023/*.csv.gz", tmp_path)
    assert [(f.path.name, f.size) for f in landed] == [("a.csv.gz", len(BODY)), ("b.csv.gz", 2)]
    assert landed[0].sha256 == hashlib.sha256(BODY).hexdigest()
    assert landed[0].path.read_bytes() == BODY
    meta = (tmp_path / "a.csv.gz.source.json").read_text()
    assert hashlib.md5(BODY).hexdigest() in meta  # the object's ETag, checked against the bytes
    with pytest.raises(SourceError, match="not a data file"):
        pull(f"s3://{BUCKET}/2023/*", tmp_path)
    with pytest.raises(SourceError, match="no such object"):
        pull(f"s3://{BUCKET}/2023/missing.csv.gz", tmp_path)


def test_s3_same_etag_is_reused_and_a_changed_object_of_same_size_is_fetched(s3, tmp_path: Path) -> None:
    key = f"{BUCKET}/p/patents.csv"
    s3.pipe({key: BODY})
    [first] = pull(f"s3://{key}", tmp_path)
    [again] = pull(f"s3://{key}", tmp_path)
    assert again.reused and again.sha256 == first.sha256
    s3.pipe({key: BODY[::-1]})  # same size, new content (and ETag)
    [changed] = pull(f"s3://{key}", tmp_path)
    assert not changed.reused
    assert changed.sha256 == hashlib.sha256(BODY[::-1]).hexdigest()
    assert changed.path.read_bytes() == BODY[::-1]


def test_s3_expected_sha256_from_the_source_set_is_checked(s3, tmp_path: Path) -> None:
    key = f"{BUCKET}/p/publications.csv"
    s3.pipe({key: BODY})
    with pytest.raises(SourceError, match="sha256 mismatch"):
        pull(f"s3://{key}", tmp_path, expected_sha256="0" * 64)
    assert not (tmp_path / "publications.csv").exists()
    [landed] = pull(f"s3://{key}", tmp_path, expected_sha256=hashlib.sha256(BODY).hexdigest())
    assert landed.size == len(BODY)
