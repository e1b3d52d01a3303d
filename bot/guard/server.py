"""uvicorn's settings for `journey serve`, and a header deadline uvicorn lacks.

uvicorn bounds an idle keep-alive connection (`timeout_keep_alive`), the size
of a request's headers (`h11_max_incomplete_event_size`) and the number of
connections and running requests (`limit_concurrency`, answered with 503), but
not the time a client may take to send its request line and headers: any byte
received cancels the keep-alive timer, so a header line a second holds a socket
for ever, and a thousand such clients hold a thousand. The protocol below is
uvicorn's h11 protocol with a header deadline: armed when the connection opens
and after each response, cancelled when a complete request has been parsed;
when it fires before that, the connection is closed.

The h11 implementation is pure Python and slower than httptools, which does
not matter at Slack's request rates (one request per command or click).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from bot.guard.limits import DEFAULT_LIMITS, Limits

#: How uvicorn finds the protocol class (also in worker processes).
PROTOCOL = "bot.guard.server:HeaderDeadlineProtocol"


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol; every request's line and headers must arrive in time."""

    header_seconds: float = DEFAULT_LIMITS.header_seconds
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm_header_deadline()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a complete request line and headers were parsed
            self._cancel_header_deadline()

    def on_response_complete(self) -> None:
        # Armed first: the parent may parse a pipelined request at once (and cancel it).
        self._arm_header_deadline()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self._header_timer = self.loop.call_later(self.header_seconds, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served: its body has the guard's own deadline
        with contextlib.suppress(h11.LocalProtocolError):
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()


#: Open files kept for the process itself (database, logs, Slack and store clients).
RESERVED_FILES = 100


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (workers inherit
    it) and return the soft limit now in force. A connection is a file: at the common
    default of 1,024, a thousand idle sockets made the server refuse connections."""
    try:
        import resource
    except ImportError:  # not on Unix
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return 65536 if soft == resource.RLIM_INFINITY else soft


def server_options(
    limits: Limits = DEFAULT_LIMITS, open_files: int | None = None
) -> dict[str, Any]:
    """Keyword arguments for uvicorn.run / uvicorn.Config that bound what clients may hold.

    `open_files` is the process's limit on open files (raise_open_file_limit()); the
    connection backstop stays under it, so uvicorn answers 503 rather than failing to
    accept."""
    connections = limits.max_connections
    if open_files is not None:
        connections = max(limits.max_in_flight + 10, min(connections, open_files - RESERVED_FILES))
    return {
        "http": PROTOCOL,
        "limit_concurrency": connections,
        "timeout_keep_alive": limits.keep_alive_seconds,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "timeout_graceful_shutdown": limits.graceful_shutdown_seconds,
        "timeout_worker_healthcheck": limits.worker_healthcheck_seconds,
        "log_level": "warning",
        "access_log": False,
    }
