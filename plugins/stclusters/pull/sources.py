"""Pull an edition's dumps into its landing folder: local paths, file://, http(s)://, s3:// (and
any other fsspec protocol), globs and lists of those.

Every file is streamed to a temporary name in the landing folder, hashed on the way, checked
against its size (the source's Content-Length or object size: a body shorter *or longer* than
announced is a failed download), the checksum the source gives (HTTP ``Repr-Digest``/``Digest``
sha-256, ``Content-MD5``, an object store's single-part MD5 ETag) and the expected size and sha256
given in config/sources.yml, and only then renamed to its final name: nothing partial is ever
visible under a final name. Transient failures (connection errors, timeouts, HTTP 5xx, 408 and
429, a body of the wrong length) are retried with exponential backoff; the rest fail at once with
:class:`SourceError`. Each file's download has a total deadline besides the per-read timeout.

Source rule: only files named as data (``.csv``, ``.tsv``, ``.txt``, ``.json``, ``.jsonl``,
``.ndjson``, each optionally ``.gz``, and OpenAlex's ``part_NNN.gz`` and ``manifest``) are read;
anything else is
refused before a byte of it is read, and its content is never logged.

Reuse rule (documented in docs/data-formats.md): a landed file is kept, without copying the
source's body again, when its sidecars exist and agree with the landed bytes (re-hashed), it came
from the same location, and its content is known to be the same: the expected sha256 equals the
recorded one; or the source's own checksum (HTTP digest header) does; or the object store / HTTP
server reports the same strong ETag; or, for a local file, the source file hashes to the recorded
sha256. Name, size and modification time alone never decide.
"""

from __future__ import annotations

import base64
import binascii
import glob
import hashlib
import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stclusters.config import REPO_ROOT
from stclusters.handover import sha256_file, write_text_atomic

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # 1 MiB: constant memory whatever the file size
PROGRESS_EVERY_S = 10.0
MAX_BACKOFF_S = 60.0
USER_AGENT = "stclusters-pull/1"
_GLOB_CHARS = set("*?[")
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
DEFAULT_DEADLINE_S = 6 * 3600.0  # one file's whole download, all attempts included
# What may be read as a source: the data formats the adapters read, plain or gzip.
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson")
_OPENALEX_PART = re.compile(r"^part_\d+\.gz$")
OPENALEX_MANIFEST = "manifest"  # an OpenAlex snapshot's (Redshift) manifest, JSON without a suffix


class SourceError(RuntimeError):
    """A source could not be pulled; the message names the URI and the reason."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"{uri}: {reason}")
        self.uri = uri
        self.reason = reason


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class LandedFile:
    uri: str
    path: Path
    size: int
    sha256: str
    fetched_at: str  # ISO-8601 UTC, when the content was fetched (the first time, if reused)
    reused: bool


@dataclass(frozen=True)
class Fingerprint:
    """What a source says about its content without sending it."""

    size: int | None = None
    etag: str | None = None
    modified: str | None = None  # Last-Modified (HTTP) or mtime (local, object store)
    sha256: str | None = None  # the content's sha256 as the source states it (HTTP digest header)
    md5: str | None = None  # Content-MD5, or a single-part object's ETag


@dataclass(frozen=True)
class Remote:
    uri: str
    kind: str  # "local", "http" or "fsspec"
    location: str  # local path, URL, or fsspec path with protocol
    name: str


# --- resolving URIs --------------------------------------------------------------------------
def resolve(uri: str | Sequence[str]) -> list[Remote]:
    """The files a URI (or a list of URIs) names; a glob that matches nothing is an error."""
    uris = [uri] if isinstance(uri, str) else list(uri)
    if not uris:
        raise SourceError("(empty)", "no URI given")
    remotes: list[Remote] = []
    for u in uris:
        remotes.extend(_resolve_one(str(u).strip()))
    return remotes


def _resolve_one(uri: str) -> list[Remote]:
    if not uri:
        raise SourceError(uri, "empty URI")
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        name = Path(urllib.parse.unquote(parsed.path)).name or "download"
        return [Remote(uri, "http", uri, name)]
    if scheme == "file":
        return _resolve_local(uri, urllib.parse.unquote(parsed.path))
    if len(scheme) > 1:  # s3://, gs://, memory:// ... (one letter would be a Windows drive)
        return _resolve_fsspec(uri)
    path = Path(uri)
    return _resolve_local(uri, str(path if path.is_absolute() else REPO_ROOT / path))


def _resolve_local(uri: str, path: str) -> list[Remote]:
    if _GLOB_CHARS & set(path):
        matches = sorted(p for p in glob.glob(path, recursive=True) if Path(p).is_file())
        if not matches:
            raise SourceError(uri, "glob matches no file")
        return [Remote(uri, "local", p, Path(p).name) for p in matches]
    if not Path(path).is_file():
        raise SourceError(uri, f"no such file: {path}")
    return [Remote(uri, "local", path, Path(path).name)]


def _fs(uri: str) -> Any:
    import fsspec  # imported here: pulling local or HTTP sources needs no fsspec backend

    protocol = urllib.parse.urlparse(uri).scheme
    try:
        return fsspec.filesystem(protocol)
    except (ImportError, ValueError) as exc:
        raise SourceError(uri, f"no fsspec filesystem for {protocol}://: {exc}") from exc


def _resolve_fsspec(uri: str) -> list[Remote]:
    fs = _fs(uri)
    try:
        if _GLOB_CHARS & set(uri.split("://", 1)[1]):
            paths = sorted(fs.glob(uri))
            if not paths:
                raise SourceError(uri, "glob matches no object")
        else:
            if not fs.isfile(uri):
                raise SourceError(uri, "no such object")
            paths = [uri]
    except (OSError, TimeoutError) as exc:
        raise SourceError(uri, f"cannot list: {exc}") from exc
    return [Remote(uri, "fsspec", p if "://" in p else fs.unstrip_protocol(p), Path(p).name) for p in paths]


# --- the source rule ---------------------------------------------------------------------------
def is_data_name(name: str) -> bool:
    """Whether a file name is one the pipeline reads as data (see DATA_SUFFIXES)."""
    lower = name.lower()
    base = lower[:-3] if lower.endswith(".gz") else lower
    return base.endswith(DATA_SUFFIXES) or bool(_OPENALEX_PART.match(lower)) or name == OPENALEX_MANIFEST


def check_data_names(remotes: list[Remote]) -> None:
    """Refuse, before anything is read, every source whose name is not a data file's."""
    refused = [r for r in remotes if not is_data_name(r.name)]
    if refused:
        names = ", ".join(repr(r.location) for r in refused[:5])
        raise SourceError(
            refused[0].uri,
            f"not a data file: {names}. Only {', '.join(DATA_SUFFIXES)} (optionally .gz) and OpenAlex "
            "part_NNN.gz and manifest files may be read as sources (docs/data-formats.md, 'Source rule'); "
            "nothing was read from it",
        )


# --- pulling -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expected:
    """What the source set says a file must be (config/sources.yml); None: not declared."""

    sha256: str | None = None
    size: int | None = None


def pull(
    uri: str | Sequence[str],
    landing_dir: Path,
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    expected_files: dict[str, Expected] | None = None,
    timeout_s: float = 60,
    deadline_s: float = DEFAULT_DEADLINE_S,
    retries: int = 4,
    backoff_s: float = 1.0,
) -> list[LandedFile]:
    """Land every file ``uri`` names in ``landing_dir``; see the module docstring for the rules.

    ``timeout_s`` bounds each network wait (connecting, each read); ``deadline_s`` bounds one
    file's whole download, retries included; ``retries`` is the number of attempts after the
    first one. ``expected_files`` maps landed file names to their declared sha256/size.
    """
    remotes = resolve(uri)
    shown = uri if isinstance(uri, str) else ", ".join(map(str, uri))
    check_data_names(remotes)
    if (expected_sha256 or expected_size is not None) and len(remotes) != 1:
        raise SourceError(shown, f"expected sha256/size given, but the URI names {len(remotes)} files")
    names = [r.name for r in remotes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourceError(shown, f"several sources would land under the same name: {duplicates}")
    unknown = sorted(set(expected_files or {}) - set(names))
    if unknown:
        raise SourceError(shown, f"expected values declared for {unknown}, but the URI names {sorted(names)}")
    landing_dir = Path(landing_dir)
    landing_dir.mkdir(parents=True, exist_ok=True)
    landed = []
    for r in remotes:
        declared = (expected_files or {}).get(r.name, Expected())
        sha = (expected_sha256 or declared.sha256 or "").lower() or None
        size = expected_size if expected_size is not None else declared.size
        landed.append(
            _pull_one(r, landing_dir, Expected(sha, size), timeout_s, deadline_s, retries, backoff_s)
        )
    return landed


def _pull_one(
    remote: Remote,
    landing_dir: Path,
    expected: Expected,
    timeout_s: float,
    deadline_s: float,
    retries: int,
    backoff_s: float,
) -> LandedFile:
    final = landing_dir / remote.name
    reused = _reusable(remote, final, expected, timeout_s)
    if reused is not None:
        log.info("%s: already landed as %s (sha256 %s), not fetched again", remote.uri, final, reused.sha256)
        return reused
    tmp = landing_dir / f".{remote.name}.{uuid.uuid4().hex[:8]}.part"
    deadline = time.monotonic() + deadline_s
    try:
        size, digest, fingerprint = _with_retries(
            remote, lambda: _fetch(remote, tmp, timeout_s, deadline), retries, backoff_s, deadline
        )
        which = "" if remote.location == remote.uri else f"{remote.location}: "
        if expected.size is not None and size != expected.size:
            raise SourceError(remote.uri, f"{which}size mismatch: got {size} bytes, expected {expected.size}")
        if expected.sha256 and digest != expected.sha256:
            raise SourceError(remote.uri, f"{which}sha256 mismatch: got {digest}, expected {expected.sha256}")
        fetched_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # Old sidecars go first: a crash before the new ones are written means "fetch again".
        for sidecar in _sidecars(final):
            sidecar.unlink(missing_ok=True)
        os.replace(tmp, final)
        _write_sidecars(final, remote, size, digest, fetched_at, fingerprint)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("%s: landed %s (%d bytes, sha256 %s)", remote.uri, final, size, digest)
    return LandedFile(remote.uri, final, size, digest, fetched_at, reused=False)


def _with_retries(
    remote: Remote,
    attempt: Callable[[], tuple[int, str, Fingerprint]],
    retries: int,
    backoff_s: float,
    deadline: float,
) -> tuple[int, str, Fingerprint]:
    last: _Transient | None = None
    for n in range(retries + 1):
        try:
            return attempt()
        except _Transient as exc:
            last = exc
            if n == retries:
                break
            delay = min(backoff_s * 2**n, MAX_BACKOFF_S)
            if exc.retry_after is not None:
                delay = max(delay, min(exc.retry_after, MAX_BACKOFF_S))
            if time.monotonic() + delay >= deadline:
                raise SourceError(
                    remote.uri, f"attempt {n + 1} failed ({exc}) and no time is left before the deadline"
                ) from exc
            log.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.1fs", remote.uri, n + 1, retries + 1, exc, delay
            )
            time.sleep(delay)
    raise SourceError(remote.uri, f"failed after {retries + 1} attempts: {last}")


def _fetch(remote: Remote, tmp: Path, timeout_s: float, deadline: float) -> tuple[int, str, Fingerprint]:
    if remote.kind == "http":
        return _fetch_http(remote, tmp, timeout_s, deadline)
    if remote.kind == "fsspec":
        return _fetch_fsspec(remote, tmp, deadline)
    return _fetch_local(remote, tmp, deadline)


def _fetch_local(remote: Remote, tmp: Path, deadline: float) -> tuple[int, str, Fingerprint]:
    try:
        with open(remote.location, "rb") as src:
            copied = _copy(remote.uri, src, tmp, os.fstat(src.fileno()).st_size, deadline)
    except OSError as exc:
        raise SourceError(remote.uri, f"cannot read {remote.location}: {exc}") from exc
    return copied.size, copied.sha256, _local_fingerprint(remote.location)


def _local_fingerprint(path: str) -> Fingerprint:
    st = os.stat(path)
    return Fingerprint(size=st.st_size, modified=str(st.st_mtime_ns))


def _fetch_fsspec(remote: Remote, tmp: Path, deadline: float) -> tuple[int, str, Fingerprint]:
    fs = _fs(remote.location)
    try:
        fingerprint = _fsspec_fingerprint(fs, remote.location)
        with fs.open(remote.location, "rb") as src:
            copied = _copy(remote.uri, src, tmp, fingerprint.size, deadline)
    except FileNotFoundError as exc:
        raise SourceError(remote.uri, f"no such object: {exc}") from exc
    except PermissionError as exc:
        raise SourceError(remote.uri, f"access denied: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc
    if fingerprint.size is not None and copied.size != fingerprint.size:
        raise _Transient(f"body of {copied.size} bytes, but the object store lists {fingerprint.size}")
    _check_source_checksums(remote, copied, fingerprint)
    return copied.size, copied.sha256, fingerprint


def _fsspec_fingerprint(fs: Any, location: str) -> Fingerprint:
    info = fs.info(location)
    etag = info.get("ETag") or info.get("etag")
    modified = info.get("LastModified") or info.get("mtime") or info.get("created")
    size = info.get("size")
    etag_text = str(etag) if etag else None
    # A single-part S3 object's ETag is the MD5 of its bytes; a multipart one ends in -<parts>.
    md5 = (
        etag_text.strip('"').lower()
        if etag_text and re.fullmatch(r'"?[0-9a-fA-F]{32}"?', etag_text)
        else None
    )
    sha = info.get("ChecksumSHA256")
    return Fingerprint(
        size=int(size) if size is not None else None,
        etag=etag_text,
        modified=str(modified) if modified is not None else None,
        sha256=_b64_to_hex(sha) if isinstance(sha, str) else None,
        md5=md5,
    )


def _b64_to_hex(value: str) -> str | None:
    try:
        return base64.b64decode(value.strip().strip(":"), validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def _check_source_checksums(remote: Remote, copied: _Copied, fingerprint: Fingerprint) -> None:
    """The checksum the source states must be the received bytes' (not transient: the source is
    wrong or the bytes were altered on the way; either way an operator must look)."""
    if fingerprint.sha256 and fingerprint.sha256 != copied.sha256:
        raise SourceError(
            remote.uri, f"sha256 mismatch: the source states {fingerprint.sha256}, received {copied.sha256}"
        )
    if fingerprint.md5 and fingerprint.md5 != copied.md5:
        raise SourceError(
            remote.uri, f"MD5 mismatch: the source states {fingerprint.md5}, received {copied.md5}"
        )


def _fetch_http(remote: Remote, tmp: Path, timeout_s: float, deadline: float) -> tuple[int, str, Fingerprint]:
    request = urllib.request.Request(
        remote.location, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    )
    try:
        with urllib.request.urlopen(request, timeout=min(timeout_s, _left(deadline, remote))) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            copied = _copy(remote.uri, _HttpBody(response, expected, timeout_s), tmp, expected, deadline)
            fingerprint = _http_fingerprint(response.headers, copied.size)
    except urllib.error.HTTPError as exc:
        if exc.code in _RETRY_STATUS:
            raise _Transient(f"HTTP {exc.code} {exc.reason}", _retry_after(exc.headers)) from exc
        raise SourceError(remote.uri, f"HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, OSError):  # refused, reset, DNS, timeout while connecting
            raise _Transient(f"connection failed: {exc.reason}") from exc
        raise SourceError(remote.uri, f"bad URL: {exc.reason}") from exc
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc
    # http.client does not complain when the server closes early: compare with Content-Length.
    if expected is not None and copied.size < expected:
        raise _Transient(f"body cut short: {copied.size} of {expected} bytes")
    if expected is not None and copied.size > expected:
        raise _Transient(
            f"body longer than announced: more than the {expected} bytes of its Content-Length "
            f"(at least {copied.size})"
        )
    _check_source_checksums(remote, copied, fingerprint)
    return copied.size, copied.sha256, fingerprint


class _HttpBody:
    """A response body read in what arrives (never waiting to fill a buffer, so the deadline is
    checked at every arrival), with bytes past Content-Length counted instead of ignored.

    http.client stops at Content-Length and drops whatever follows; a server that announces
    half of what it sends would then pass for complete. The body is therefore read from the
    connection itself; urllib asks the server to close it after the response ("Connection:
    close"), so more bytes after Content-Length mean the announced length was wrong. A server
    that keeps the connection open anyway gets a short wait (PROBE_S) for stray bytes.
    """

    PROBE_S = 1.0

    def __init__(self, response: Any, expected: int | None, timeout_s: float) -> None:
        self.response = response
        self.expected = expected
        self.timeout_s = timeout_s
        self.got = 0
        self.raw = getattr(response, "fp", None)
        self.direct = (
            expected is not None and not getattr(response, "chunked", False) and self.raw is not None
        )

    def read(self, n: int) -> bytes:
        if not self.direct:
            return self.response.read1(n) if hasattr(self.response, "read1") else self.response.read(n)
        if self.expected is not None and self.got >= self.expected and not self.response.will_close:
            return self._probe(n)
        chunk = self.raw.read1(n)
        self.got += len(chunk)
        return chunk

    def _probe(self, n: int) -> bytes:
        sock = getattr(getattr(self.raw, "raw", None), "_sock", None)
        if sock is None:
            return b""
        sock.settimeout(self.PROBE_S)
        try:
            chunk = self.raw.read1(n)
        except TimeoutError:
            return b""
        finally:
            sock.settimeout(self.timeout_s)
        self.got += len(chunk)
        return chunk


def _left(deadline: float, remote: Remote) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise SourceError(remote.uri, "download deadline reached")
    return left


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers else None
    return float(value) if value and value.strip().isdigit() else None


def _http_fingerprint(headers: Any, size: int | None) -> Fingerprint:
    length = headers.get("Content-Length")
    return Fingerprint(
        size=int(length) if length and length.isdigit() else size,
        etag=headers.get("ETag"),
        modified=headers.get("Last-Modified"),
        sha256=_digest_header(headers, "sha-256"),
        md5=_b64_to_hex(headers["Content-MD5"]) if headers.get("Content-MD5") else None,
    )


def _digest_header(headers: Any, algorithm: str) -> str | None:
    """The hex digest from ``Repr-Digest: sha-256=:<b64>:`` (RFC 9530) or ``Digest: SHA-256=<b64>``
    (RFC 3230), if the server sends one."""
    for name in ("Repr-Digest", "Digest"):
        for part in (headers.get(name) or "").split(","):
            key, _, value = part.strip().partition("=")
            if key.strip().lower() == algorithm and value:
                return _b64_to_hex(value)
    return None


def _http_head(url: str, timeout_s: float) -> Fingerprint | None:
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return _http_fingerprint(response.headers, None)
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        log.info("%s: HEAD failed (%s): fetching the body to compare", url, exc)
        return None


@dataclass(frozen=True)
class _Copied:
    size: int
    sha256: str
    md5: str


def _copy(uri: str, src: Any, tmp: Path, total: int | None, deadline: float) -> _Copied:
    """Stream ``src`` into ``tmp`` (truncated first), hashing on the way; past ``deadline``
    (time.monotonic) the download fails."""
    digest = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    started = last_report = time.monotonic()
    with open(tmp, "wb") as out:
        for chunk in _chunks(src):
            out.write(chunk)
            digest.update(chunk)
            md5.update(chunk)
            size += len(chunk)
            now = time.monotonic()
            if now > deadline:
                raise SourceError(
                    uri, f"download deadline reached after {now - started:.0f} s ({size} bytes received)"
                )
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                rate = size / max(now - started, 1e-9) / 1e6
                of = f" of {total / 1e6:.1f} MB" if total else ""
                log.info("%s: %.1f MB%s (%.1f MB/s)", uri, size / 1e6, of, rate)
        out.flush()
        os.fsync(out.fileno())
    return _Copied(size, digest.hexdigest(), md5.hexdigest())


def _chunks(src: Any) -> Iterator[bytes]:
    read = src.read1 if hasattr(src, "read1") and not isinstance(src, _HttpBody) else src.read
    while chunk := read(CHUNK):
        yield chunk


# --- landed files and their sidecars -----------------------------------------------------------
def _sidecars(final: Path) -> tuple[Path, Path]:
    return final.with_name(final.name + ".sha256"), final.with_name(final.name + ".source.json")


def sidecars(final: Path) -> tuple[Path, Path]:
    """The two sidecar files of a landed file (``.sha256``, ``.source.json``)."""
    return _sidecars(final)


def _write_sidecars(
    final: Path, remote: Remote, size: int, digest: str, fetched_at: str, fingerprint: Fingerprint
) -> None:
    sha_path, meta_path = _sidecars(final)
    meta = {
        "uri": remote.uri,
        "location": remote.location,
        "size": size,
        "sha256": digest,
        "fetched_at": fetched_at,
        "etag": fingerprint.etag,
        "modified": fingerprint.modified,
    }
    write_text_atomic(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    # sha256sum's format, so `sha256sum -c <file>.sha256` checks a landed file by hand.
    write_text_atomic(sha_path, f"{digest}  {final.name}\n")


def _recorded(final: Path) -> dict[str, Any] | None:
    """The landed file's record, when both sidecars agree with each other and with the bytes
    (the file is re-hashed: a landed file edited in place is never reused)."""
    sha_path, meta_path = _sidecars(final)
    try:
        recorded_sha = sha_path.read_text(encoding="utf-8").split()[0].lower()
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not final.is_file() or final.stat().st_size != meta["size"] or meta["sha256"] != recorded_sha:
            return None
        if sha256_file(final) != recorded_sha:
            log.warning("%s: landed file no longer matches its recorded sha256: fetching again", final)
            return None
        return meta
    except (OSError, ValueError, KeyError, IndexError):
        return None


def _reusable(remote: Remote, final: Path, expected: Expected, timeout_s: float) -> LandedFile | None:
    meta = _recorded(final)
    if meta is None or meta.get("location") != remote.location:
        return None  # nothing landed, or landed from another source under the same name
    if expected.size is not None and meta["size"] != expected.size:
        return None
    same = meta["sha256"] == expected.sha256 if expected.sha256 else _same_content(remote, meta, timeout_s)
    if not same:
        return None
    return LandedFile(remote.uri, final, int(meta["size"]), meta["sha256"], meta["fetched_at"], reused=True)


def _same_content(remote: Remote, meta: dict[str, Any], timeout_s: float) -> bool:
    """Whether the source's content is known to be the landed one: by its hash, a digest the
    source states, or the same strong ETag; never by size and modification time alone."""
    if remote.kind == "local":
        try:
            return sha256_file(Path(remote.location)) == meta["sha256"]
        except OSError:
            return False
    if remote.kind == "http":
        head = _http_head(remote.location, timeout_s)
        if head is None:
            return False
        now = head
    else:
        try:
            fs = _fs(remote.location)
            fs.invalidate_cache()  # a long-lived worker's listing cache must not decide
            now = _fsspec_fingerprint(fs, remote.location)
        except (OSError, TimeoutError):
            return False
    if now.size is not None and now.size != meta["size"]:
        return False
    if now.sha256:
        return now.sha256 == meta["sha256"]
    strong = now.etag and not now.etag.startswith("W/")
    return bool(strong and now.etag == meta.get("etag"))


__all__ = [
    "DATA_SUFFIXES",
    "Expected",
    "LandedFile",
    "SourceError",
    "check_data_names",
    "is_data_name",
    "pull",
    "resolve",
    "sha256_file",
    "sidecars",
]
