"""HTTP mode: the Bolt app behind a real ASGI server (uvicorn).

Bolt's own `app.start()` is a development server that drops requests under
concurrency; uvicorn serves `/slack/events` (and the OAuth pages) through
Bolt's ASGI adapter, plus `/healthz` for load balancers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
log = logging.getLogger("journey.bot")


Background = Callable[[], "asyncio.Task[None] | None"]


async def _lifespan(receive: Receive, send: Send, background: Background | None) -> None:
    """Start the background task (the scheduler) with the server, cancel it at shutdown."""
    task: asyncio.Task[None] | None = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                task = background() if background is not None else None
            except Exception as exc:
                log.exception("could not start the scheduler")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if task is not None:
                task.cancel()
            await send({"type": "lifespan.shutdown.complete"})
            return


def asgi_app(
    app: AsyncApp, background: Background | None = None
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app; `background` starts a task when the server starts (the scheduler)."""
    handler = AsyncSlackRequestHandler(app, path="/slack/events")

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
        try:
            await handler(scope, receive, send)
        except ValueError:
            # Bolt parses the body before it checks the signature; a body that is
            # not Slack's shape (JSON that does not parse) is refused, not a 500.
            log.warning("refused a request whose body could not be parsed")
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": b"bad request"})

    return serve


def run_http(
    app: AsyncApp, port: int, host: str = "0.0.0.0", background: Background | None = None
) -> None:
    import uvicorn

    uvicorn.run(
        asgi_app(app, background), host=host, port=port, log_level="warning", access_log=False
    )


def asgi_from_env() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """uvicorn factory: each worker process builds its own app from the environment."""
    from bot.run import build_from_env, scheduler_starter
    from journey import logs

    # A fresh worker process: the parent's logging set-up did not come with it.
    logs.configure(logging.INFO)
    app, starter = build_from_env(), scheduler_starter()
    return asgi_app(app, starter)


def run_http_workers(port: int, workers: int, host: str = "0.0.0.0") -> None:
    import uvicorn

    uvicorn.run(
        "bot.server:asgi_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
