"""Pull an edition's dumps into its landing folder: local paths, file://, http(s)://, s3:// (and
any other fsspec protocol), globs and lists of those.

Every file is streamed to a temporary name in the landing folder, hashed on the way, checked
against the expected size and sha256, and only then renamed to its final name: nothing partial
is ever visible under a final name. Transient failures (connection errors, timeouts, HTTP 5xx,
408 and 429, a body cut short) are retried with exponential backoff; the rest fail at once with
:class:`SourceError`.

Reuse rule (documented in docs/data-formats.md): a landed file is kept, without reading the
source's body again, when its sidecar ``<file>.sha256`` exists, its size matches what the
sidecar ``<file>.source.json`` recorded, and either

* an expected sha256 is given and equals the recorded one, or
* the source still looks the same: same ETag (HTTP HEAD / object store), else same size and
  Last-Modified (HTTP) or same size and modification time (local files, object stores).
"""

from __future__ import annotations

import email.utils
import glob
import hashlib
import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from stclusters.config import REPO_ROOT

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # 1 MiB: constant memory whatever the file size
PROGRESS_EVERY_S = 10.0
MAX_BACKOFF_S = 60.0
USER_AGENT = "stclusters-pull/1"
_GLOB_CHARS = set("*?[")
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


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


# --- pulling -----------------------------------------------------------------------------------
def pull(
    uri: str | Sequence[str],
    landing_dir: Path,
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    timeout_s: float = 60,
    retries: int = 4,
    backoff_s: float = 1.0,
) -> list[LandedFile]:
    """Land every file ``uri`` names in ``landing_dir``; see the module docstring for the rules.

    ``timeout_s`` bounds each network wait (connecting, each read), not the whole download;
    ``retries`` is the number of attempts after the first one.
    """
    remotes = resolve(uri)
    shown = uri if isinstance(uri, str) else ", ".join(map(str, uri))
    if (expected_sha256 or expected_size is not None) and len(remotes) != 1:
        raise SourceError(shown, f"expected sha256/size given, but the URI names {len(remotes)} files")
    names = [r.name for r in remotes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourceError(shown, f"several sources would land under the same name: {duplicates}")
    landing_dir = Path(landing_dir)
    landing_dir.mkdir(parents=True, exist_ok=True)
    want_sha = expected_sha256.lower() if expected_sha256 else None
    return [
        _pull_one(r, landing_dir, want_sha, expected_size, timeout_s, retries, backoff_s) for r in remotes
    ]


def _pull_one(
    remote: Remote,
    landing_dir: Path,
    expected_sha256: str | None,
    expected_size: int | None,
    timeout_s: float,
    retries: int,
    backoff_s: float,
) -> LandedFile:
    final = landing_dir / remote.name
    reused = _reusable(remote, final, expected_sha256, expected_size, timeout_s)
    if reused is not None:
        log.info("%s: already landed as %s (sha256 %s), not fetched again", remote.uri, final, reused.sha256)
        return reused
    tmp = landing_dir / f".{remote.name}.{uuid.uuid4().hex[:8]}.part"
    try:
        size, digest, fingerprint = _with_retries(
            remote, lambda: _fetch(remote, tmp, timeout_s), retries, backoff_s
        )
        if expected_size is not None and size != expected_size:
            raise SourceError(remote.uri, f"size mismatch: got {size} bytes, expected {expected_size}")
        if expected_sha256 and digest != expected_sha256:
            raise SourceError(remote.uri, f"sha256 mismatch: got {digest}, expected {expected_sha256}")
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
    remote: Remote, attempt: Callable[[], tuple[int, str, Fingerprint]], retries: int, backoff_s: float
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
            log.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.1fs", remote.uri, n + 1, retries + 1, exc, delay
            )
            time.sleep(delay)
    raise SourceError(remote.uri, f"failed after {retries + 1} attempts: {last}")


def _fetch(remote: Remote, tmp: Path, timeout_s: float) -> tuple[int, str, Fingerprint]:
    if remote.kind == "http":
        return _fetch_http(remote, tmp, timeout_s)
    if remote.kind == "fsspec":
        return _fetch_fsspec(remote, tmp)
    return _fetch_local(remote, tmp)


def _fetch_local(remote: Remote, tmp: Path) -> tuple[int, str, Fingerprint]:
    try:
        with open(remote.location, "rb") as src:
            size, digest = _copy(remote.uri, src, tmp, os.fstat(src.fileno()).st_size)
    except OSError as exc:
        raise SourceError(remote.uri, f"cannot read {remote.location}: {exc}") from exc
    return size, digest, _local_fingerprint(remote.location)


def _local_fingerprint(path: str) -> Fingerprint:
    st = os.stat(path)
    return Fingerprint(size=st.st_size, modified=str(st.st_mtime_ns))


def _fetch_fsspec(remote: Remote, tmp: Path) -> tuple[int, str, Fingerprint]:
    fs = _fs(remote.location)
    try:
        fingerprint = _fsspec_fingerprint(fs, remote.location)
        with fs.open(remote.location, "rb") as src:
            size, digest = _copy(remote.uri, src, tmp, fingerprint.size)
    except FileNotFoundError as exc:
        raise SourceError(remote.uri, f"no such object: {exc}") from exc
    except PermissionError as exc:
        raise SourceError(remote.uri, f"access denied: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc
    if fingerprint.size is not None and size != fingerprint.size:
        raise _Transient(f"body cut short: {size} of {fingerprint.size} bytes")
    return size, digest, fingerprint


def _fsspec_fingerprint(fs: Any, location: str) -> Fingerprint:
    info = fs.info(location)
    etag = info.get("ETag") or info.get("etag")
    modified = info.get("LastModified") or info.get("mtime") or info.get("created")
    size = info.get("size")
    return Fingerprint(
        size=int(size) if size is not None else None,
        etag=str(etag) if etag else None,
        modified=str(modified) if modified is not None else None,
    )


def _fetch_http(remote: Remote, tmp: Path, timeout_s: float) -> tuple[int, str, Fingerprint]:
    request = urllib.request.Request(
        remote.location, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            size, digest = _copy(remote.uri, response, tmp, expected)
            fingerprint = _http_fingerprint(response.headers, size)
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
    if expected is not None and size != expected:
        raise _Transient(f"body cut short: {size} of {expected} bytes")
    return size, digest, fingerprint


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers else None
    return float(value) if value and value.strip().isdigit() else None


def _http_fingerprint(headers: Any, size: int | None) -> Fingerprint:
    length = headers.get("Content-Length")
    return Fingerprint(
        size=int(length) if length and length.isdigit() else size,
        etag=headers.get("ETag"),
        modified=headers.get("Last-Modified"),
    )


def _http_head(url: str, timeout_s: float) -> Fingerprint | None:
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return _http_fingerprint(response.headers, None)
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        log.info("%s: HEAD failed (%s): fetching the body to compare", url, exc)
        return None


def _copy(uri: str, src: IO[bytes], tmp: Path, total: int | None) -> tuple[int, str]:
    """Stream ``src`` into ``tmp`` (truncated first), returning (bytes, sha256 hex)."""
    digest = hashlib.sha256()
    size = 0
    started = last_report = time.monotonic()
    with open(tmp, "wb") as out:
        for chunk in _chunks(src):
            out.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_S:
                last_report = now
                rate = size / max(now - started, 1e-9) / 1e6
                of = f" of {total / 1e6:.1f} MB" if total else ""
                log.info("%s: %.1f MB%s (%.1f MB/s)", uri, size / 1e6, of, rate)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest()


def _chunks(src: IO[bytes]) -> Iterator[bytes]:
    while chunk := src.read(CHUNK):
        yield chunk


# --- landed files and their sidecars -----------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in _chunks(fh):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecars(final: Path) -> tuple[Path, Path]:
    return final.with_name(final.name + ".sha256"), final.with_name(final.name + ".source.json")


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
    _write_text_atomic(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    # sha256sum's format, so `sha256sum -c <file>.sha256` checks a landed file by hand.
    _write_text_atomic(sha_path, f"{digest}  {final.name}\n")


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _recorded(final: Path) -> dict[str, Any] | None:
    sha_path, meta_path = _sidecars(final)
    try:
        recorded_sha = sha_path.read_text(encoding="utf-8").split()[0].lower()
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not final.is_file() or final.stat().st_size != meta["size"] or meta["sha256"] != recorded_sha:
            return None
        return meta
    except (OSError, ValueError, KeyError, IndexError):
        return None


def _reusable(
    remote: Remote, final: Path, expected_sha256: str | None, expected_size: int | None, timeout_s: float
) -> LandedFile | None:
    meta = _recorded(final)
    if meta is None:
        return None
    if expected_size is not None and meta["size"] != expected_size:
        return None
    same = meta["sha256"] == expected_sha256 if expected_sha256 else _same_source(remote, meta, timeout_s)
    if not same:
        return None
    return LandedFile(remote.uri, final, int(meta["size"]), meta["sha256"], meta["fetched_at"], reused=True)


def _same_source(remote: Remote, meta: dict[str, Any], timeout_s: float) -> bool:
    if remote.kind == "local":
        now = _local_fingerprint(remote.location)
    elif remote.kind == "http":
        head = _http_head(remote.location, timeout_s)
        if head is None:
            return False
        now = head
    else:
        try:
            now = _fsspec_fingerprint(_fs(remote.location), remote.location)
        except (OSError, TimeoutError):
            return False
    if now.etag and meta.get("etag"):
        return now.etag == meta["etag"]
    return (
        now.size is not None
        and now.size == meta["size"]
        and now.modified is not None
        and _same_time(now.modified, meta.get("modified"))
    )


def _same_time(a: str, b: str | None) -> bool:
    if b is None:
        return False
    if a == b:
        return True
    try:  # HTTP dates may be re-serialised differently by proxies
        return email.utils.parsedate_to_datetime(a) == email.utils.parsedate_to_datetime(b)
    except (TypeError, ValueError):
        return False


__all__ = ["LandedFile", "SourceError", "pull", "resolve", "sha256_file"]
