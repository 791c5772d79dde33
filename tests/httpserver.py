"""A real HTTP server on 127.0.0.1 (ephemeral port) with fault modes, for tests that pull dumps.

Use it as a context manager; it also stops itself after ``max_lifetime_s`` so a failing test
cannot leave it running::

    with LoopbackServer({"/dump.csv": Route(b"...", fail_first=2)}) as server:
        pull(server.url("/dump.csv"), tmp_path)
        assert server.count("GET", "/dump.csv") == 3
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    body: bytes
    status: int = 200
    fail_first: int = 0  # answer the first N GETs with fail_status (then serve normally)
    fail_status: int = 500
    retry_after: int | None = None  # Retry-After header sent with the failures
    truncate_first: int = 0  # the first N GETs announce the full length but send half (-1: always)
    delay_s: float = 0.0  # wait before the status line (a slow server)
    chunk_delay_s: float = 0.0  # wait between body chunks (a slow body)
    chunk_size: int = 16384
    etag: str | None = None
    last_modified: str | None = None
    announce_length: int | None = None  # the Content-Length sent instead of the body's (a lying server)
    headers: dict[str, str] | None = None  # extra response headers (e.g. Repr-Digest, Content-MD5)


class LoopbackServer:
    def __init__(self, routes: dict[str, Route] | None = None, max_lifetime_s: float = 30.0) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._watchdog = threading.Timer(max_lifetime_s, self.stop)
        self._watchdog.daemon = True

    # --- lifecycle ---
    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        self._watchdog.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()  # wakes handlers sleeping in a delay
        self._watchdog.cancel()
        if self._thread.is_alive():  # shutdown() would wait forever for a loop that never ran
            self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and p == path)

    # --- request handling ---
    def _record(self, method: str, path: str) -> int:
        """Record a request; return how many of this kind came before it."""
        with self._lock:
            before = sum(1 for m, p in self.requests if m == method and p == path)
            self.requests.append((method, path))
            return before

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a stuck client cannot hold a handler thread for long

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep pytest's output clean

            def do_HEAD(self) -> None:
                server._record("HEAD", self.path)
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                self._headers(route, len(route.body))

            def do_GET(self) -> None:
                before = server._record("GET", self.path)
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                if route.delay_s and server._stopping.wait(route.delay_s):
                    return
                if before < route.fail_first:
                    self.send_response(route.fail_status)
                    if route.retry_after is not None:
                        self.send_header("Retry-After", str(route.retry_after))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._headers(
                    route, len(route.body) if route.announce_length is None else route.announce_length
                )
                truncate = route.truncate_first < 0 or before < route.truncate_first
                body = route.body[: len(route.body) // 2] if truncate else route.body
                for i in range(0, len(body), route.chunk_size):
                    if i and route.chunk_delay_s and server._stopping.wait(route.chunk_delay_s):
                        return
                    try:
                        self.wfile.write(body[i : i + route.chunk_size])
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return
                self.close_connection = True

            def _headers(self, route: Route, length: int) -> None:
                self.send_response(route.status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length))
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.last_modified:
                    self.send_header("Last-Modified", route.last_modified)
                for name, value in (route.headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()

        return Handler
