"""HTTP mode: the Bolt app behind a real ASGI server (uvicorn).

Bolt's own `app.start()` is a development server that drops requests under
concurrency; uvicorn serves `/slack/events` (and the OAuth pages) through
Bolt's ASGI adapter, plus `/healthz` for load balancers. Every request but
`/healthz` passes bot/guard first (size and time limits, then Slack's
signature on the raw bytes), and uvicorn runs with bot/guard's limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp

from bot.config import MISSING_SIGNING_SECRET
from bot.guard import guard
from bot.guard.middleware import refuse
from bot.guard.server import raise_open_file_limit, server_options
from bot.work.inflight import INFLIGHT, shutdown_grace
from journey.errors import JourneyError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
log = logging.getLogger("journey.bot")


Background = Callable[[], "asyncio.Task[None] | None"]


async def _lifespan(receive: Receive, send: Send, background: Background | None) -> None:
    """Start the background task (the scheduler) with the server; at shutdown, drain.

    uvicorn sends `lifespan.shutdown` once it has stopped accepting connections and
    answered the open ones, and only returns from `serve()` (then re-raises the
    SIGTERM it caught, which ends the process at once) after this answers: so the
    drain happens here, before that. It waits up to JOURNEY_SHUTDOWN_GRACE for the
    acknowledged work and for the scheduler's current tick to record what it sent,
    and tells the users of what could not finish (bot/work/inflight.py)."""
    task: asyncio.Task[None] | None = None
    grace = 0.0
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            INFLIGHT.reopen()
            DRAINED.clear()
            try:
                grace = shutdown_grace()
                task = background() if background is not None else None
            except Exception as exc:
                log.exception("could not start")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            # One line per server process: with --workers N, each worker says it is up.
            log.info("ready to serve (process %d)", os.getpid())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await INFLIGHT.drain(grace, [task] if task is not None else [])
            DRAINED.set()
            await send({"type": "lifespan.shutdown.complete"})
            return


# Set once this process's server has drained at shutdown; see `serve_http`.
DRAINED = threading.Event()


def _exit_cleanly_after_drain(sig: int, _frame: object) -> None:
    """The SIGTERM handler uvicorn restores once `serve()` returns, and then calls: it
    re-raises the SIGTERM it caught, which with the default handler ends the process
    by the signal (status 143). After a drain the shutdown is complete, so the process
    exits with status 0, which systemd, Docker and Kubernetes all read as a clean stop
    (docs/operations.md). Before the server took over (start-up) it acts as the
    default: the process ends at once, by the signal."""
    if DRAINED.is_set():
        return
    signal.signal(sig, signal.SIG_DFL)
    signal.raise_signal(sig)


def _signing_secret(app: AsyncApp) -> str:
    # Bolt keeps the secret it verifies with but has no public accessor; reading it
    # here means the guard can never check a different secret than Bolt does.
    return str(getattr(app, "_signing_secret", "") or "")


def asgi_app(
    app: AsyncApp, background: Background | None = None, *, signing_secret: str | None = None
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app; `background` starts a task when the server starts (the scheduler).

    Slack's requests are verified with `signing_secret` (default: the app's own)
    before Bolt parses them; without a secret no request can pass.
    """
    secret = signing_secret or _signing_secret(app)
    if not secret:
        raise JourneyError(MISSING_SIGNING_SECRET)
    handler = guard(AsyncSlackRequestHandler(app, path="/slack/events"), secret)

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, background)
            return
        if scope["type"] == "http" and scope.get("path") == "/healthz":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await _answered(handler, scope, receive, send)

    return serve


async def _answered(
    handler: Callable[[Scope, Receive, Send], Awaitable[None]],
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Run `handler`; a request Bolt itself cannot take apart (a signed JSON object of
    shapes Slack never sends, such as `{"team": 5}`) gets a plain 400 and one log line,
    not uvicorn's 500 with a traceback. Listener errors never come here: Bolt hands
    them to the app's error handler (bot/app.py)."""
    started = False

    async def tracked(message: dict[str, Any]) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await handler(scope, receive, tracked)
    except Exception as exc:
        log.error(
            "could not handle %s %s (%s): a request Bolt could not take apart",
            scope.get("method", ""),
            scope.get("path", ""),
            type(exc).__name__,
        )
        if not started:
            await refuse(send, 400)


def serve_http(
    app: Callable[[Scope, Receive, Send], Awaitable[None]], port: int, host: str = "0.0.0.0"
) -> None:
    """Run an ASGI app (from asgi_app) under uvicorn with bot/guard's limits."""
    import uvicorn

    with contextlib.suppress(ValueError):  # not on the main thread (tests): nothing to do
        signal.signal(signal.SIGTERM, _exit_cleanly_after_drain)
    uvicorn.run(app, host=host, port=port, **server_options(open_files=raise_open_file_limit()))


def run_http_workers(port: int, workers: int, host: str = "0.0.0.0") -> None:
    """N uvicorn worker processes, each building its app with `bot.run.asgi_from_env`.

    At SIGTERM uvicorn's parent process sends SIGTERM to each worker, and each drains
    on its own (its lifespan shutdown, above) and logs its own "shutting down" line;
    the parent waits for them all and returns, so the process exits with status 0."""
    import uvicorn

    uvicorn.run(
        "bot.run:asgi_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **server_options(open_files=raise_open_file_limit()),
    )
