"""What the fake store and CRM APIs (stripe_api, woocommerce_api, hubspot_api) share.

- `FakeHttpServer`: a base for a fake that serves itself over real HTTP: a stdlib
  `ThreadingHTTPServer` on 127.0.0.1 (a free port) in a daemon thread, with
  `start()` / `stop()` / `url` and use as a context manager. The fake names its
  request handler class (`handler`); each server gets a subclass of it whose
  `fake` is the fake.
- `FakeHandler`: the request handler's common part: HTTP/1.1, TCP_NODELAY, no
  logging, writing an answer, and the transport faults ("drop", "slow",
  "truncate", and two a hostile or broken server gives: "huge", an answer of
  `huge_bytes` streamed without a length; "drip", a whole answer sent one byte
  every `drip_seconds`, status line and headers included).
- `FaultQueue`: queued faults for the next matching requests, and "fail the first
  attempt at every distinct request once", cycling through some kinds.

The vendor's bodies, headers and fault kinds stay in each fake.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self


@dataclass
class Fault:
    kind: str
    path: str | None
    times: int
    retry_after: str | None = None


class FaultQueue:
    """Faults to serve; `lock` is the fake's own, so faults and data change under one lock.

    `each_retry_after` gives, per kind, the Retry-After of the faults that
    `each_request_once` hands out (none by default)."""

    def __init__(
        self,
        kinds: tuple[str, ...],
        lock: threading.RLock,
        each_retry_after: Mapping[str, str] | None = None,
    ) -> None:
        self.kinds = kinds
        self.lock = lock
        self.each_retry_after = dict(each_retry_after or {})
        self.queued: deque[Fault] = deque()
        self.each_kinds: tuple[str, ...] = ()
        self._each_cycle: Iterator[str] | None = None
        self._seen: set[str] = set()

    def add(
        self, kind: str, path: str | None = None, times: int = 1, retry_after: str | None = None
    ) -> None:
        assert kind in self.kinds, kind
        with self.lock:
            self.queued.append(Fault(kind, path, times, retry_after))

    def each_request_once(self, kinds: tuple[str, ...]) -> None:
        with self.lock:
            self.each_kinds = kinds
            self._each_cycle = itertools.cycle(kinds)
            self._seen.clear()

    def next_for(self, path: str, key: str) -> Fault | None:
        """The fault for a request at `path` (queued ones match by prefix), else the
        first time `key` (what makes the request distinct) is seen, the next kind."""
        with self.lock:
            for fault in list(self.queued):
                if fault.path is None or path.startswith(fault.path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.queued.remove(fault)
                    return fault
            if self._each_cycle is not None and key not in self._seen:
                self._seen.add(key)
                kind = next(self._each_cycle)
                return Fault(kind, None, 1, self.each_retry_after.get(kind))
        return None


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: Any

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes: without this, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def write_answer(
        self, status: int, data: bytes, content_type: str, headers: Iterable[tuple[str, str]]
    ) -> None:
        """Status, Content-Type, Content-Length, `headers` in order, then `data`."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def transport_fault(self, fault: Fault, call: Any) -> bool:
        """Serve a fault that is not the vendor's: "drop" closes the connection without
        answering (True: the request is done); "slow" waits `slow_seconds` and
        "truncate" is left to the normal answer (False: answer it)."""
        if fault.kind == "drop":
            call.status = -1
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if fault.kind == "slow":
            time.sleep(self.fake.slow_seconds)
        if fault.kind == "huge":
            call.status = 200
            self.close_connection = True
            self._huge(int(getattr(self.fake, "huge_bytes", 64 * 1024 * 1024)))
            return True
        if fault.kind == "drip":
            call.status = 200
            self.close_connection = True
            self._drip(float(getattr(self.fake, "drip_seconds", 1.0)))
            return True
        return False

    def _huge(self, size: int) -> None:
        """A JSON list of `size` bytes, streamed (never built whole), its end marked by
        closing the connection (no Content-Length), as an HTTP/1.0-style server may."""
        item = json.dumps({"id": 1, "status": "completed", "note": "x" * 900}).encode() + b","
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            self.wfile.write(b"Connection: close\r\n\r\n[")
            sent = 1
            while sent < size:
                self.wfile.write(item * 64)
                sent += len(item) * 64
            self.wfile.write(b"{}]")
        except OSError:
            pass

    def _drip(self, every: float) -> None:
        answer = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            b"X-Padding: " + b"." * 64 + b"\r\n\r\n[]"
        )
        try:
            for i in range(len(answer)):
                self.wfile.write(answer[i : i + 1])
                self.wfile.flush()
                time.sleep(every)
        except OSError:
            pass


def json_bytes(body: Any, truncate: bool = False) -> bytes:
    """`body` as JSON; cut in half when `truncate`."""
    data = json.dumps(body).encode()
    return data[: len(data) // 2] if truncate else data


class FakeHttpServer:
    """Serves the fake over HTTP on 127.0.0.1 with its `handler` class."""

    handler: ClassVar[type[FakeHandler]]
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> Self:
        handler = type("Handler", (self.handler,), {"fake": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
