"""HTTP mode: the Bolt app behind a real ASGI server (uvicorn).

Bolt's own `app.start()` is a development server that drops requests under
concurrency; uvicorn serves `/slack/events` (and the OAuth pages) through
Bolt's ASGI adapter, plus `/healthz` for load balancers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
log = logging.getLogger("journey.bot")


def asgi_app(app: AsyncApp) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    handler = AsyncSlackRequestHandler(app, path="/slack/events")

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
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


def run_http(app: AsyncApp, port: int, host: str = "0.0.0.0") -> None:
    import uvicorn

    uvicorn.run(asgi_app(app), host=host, port=port, log_level="warning", access_log=False)


def asgi_from_env() -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """uvicorn factory: each worker process builds its own app from the environment."""
    from bot.run import build_from_env

    return asgi_app(build_from_env())


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
