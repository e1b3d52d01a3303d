"""The numbers that bound what one HTTP request may cost before it is trusted.

Slack's requests are small (a slash command is well under 4 KiB; a modal
submission with its whole view rarely reaches 100 KiB), arrive in one go, and
must be acknowledged within 3 seconds. So anything much larger or much
slower is not Slack, and is refused before it costs memory or a slot.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    #: Largest request body read (413 beyond it, without reading the rest).
    max_body_bytes: int = MIB
    #: Seconds from the request's headers to the end of its body (408 after it).
    body_seconds: float = 10.0
    #: Seconds a new connection has to send its first request's headers.
    header_seconds: float = 10.0
    #: Seconds an idle keep-alive connection stays open (uvicorn's timeout_keep_alive).
    keep_alive_seconds: int = 5
    #: Requests past the guard (anything but /healthz) handled at once per process;
    #: more get 503 at once, unread. /healthz is not counted, so it keeps answering
    #: 200 while a flood of half-sent requests waits out its deadlines.
    max_in_flight: int = 100
    #: Connections plus running requests per process before uvicorn answers 503 to
    #: everything, /healthz included (uvicorn's limit_concurrency): a backstop well
    #: above what the guard lets in, lowered to fit the process's open-file limit
    #: (which `journey serve` raises to its hard limit first: bot/guard/server.py).
    max_connections: int = 4000
    #: Largest request line plus headers (uvicorn's h11_max_incomplete_event_size).
    max_header_bytes: int = 16 * 1024
    #: Seconds given to running requests at shutdown before they are cut.
    graceful_shutdown_seconds: int = 10
    #: Seconds a worker process (`--workers N`) may take to answer the supervisor's
    #: health check before it is killed and restarted. uvicorn's 5 s is shorter than
    #: a worker's start (imports, migrations check) on a busy small machine: measured
    #: at 17 s here with two cores shared, which made the workers restart forever.
    worker_healthcheck_seconds: int = 60


DEFAULT_LIMITS = Limits()
