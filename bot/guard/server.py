"""uvicorn's settings for `journey serve`, and a header deadline uvicorn lacks.

uvicorn bounds an idle keep-alive connection (`timeout_keep_alive`), the size
of a request's headers (`h11_max_incomplete_event_size`) and the number of
connections and running requests (`limit_concurrency`, answered with 503), but
a brand-new connection may take forever to send its first request line and
headers: a thousand half-sent requests hold a thousand sockets. The protocol
below is uvicorn's h11 protocol with one addition: the keep-alive timer, which
uvicorn already cancels when a complete request has been parsed, is armed when
the connection opens, so the first request gets `header_seconds` to arrive.
Later requests on the connection are bounded by uvicorn's own keep-alive timer,
which h11 (unlike httptools) only cancels once a whole request has arrived.

The h11 implementation is pure Python and slower than httptools, which does
not matter at Slack's request rates (one request per command or click).
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from bot.guard.limits import DEFAULT_LIMITS, Limits

#: How uvicorn finds the protocol class (also in worker processes).
PROTOCOL = "bot.guard.server:HeaderDeadlineProtocol"


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol; a new connection must send its headers in time."""

    header_seconds: float = DEFAULT_LIMITS.header_seconds

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        # The same timer uvicorn arms between keep-alive requests: it closes the
        # connection unless a complete request (line and headers) is parsed first.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.header_seconds, self.timeout_keep_alive_handler
        )


def server_options(limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Keyword arguments for uvicorn.run / uvicorn.Config that bound what clients may hold."""
    return {
        "http": PROTOCOL,
        "limit_concurrency": limits.max_connections,
        "timeout_keep_alive": limits.keep_alive_seconds,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "timeout_graceful_shutdown": limits.graceful_shutdown_seconds,
        "log_level": "warning",
        "access_log": False,
    }
