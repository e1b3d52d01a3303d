"""Builds the Bolt app: one AsyncApp for Socket Mode and HTTP mode alike.

The Web API client gets `SLACK_API_URL` as its base URL (tests point it at a
local fake Slack) and slack_sdk's retry handlers, so rate limits and passing
server errors are retried by the library, not by hand-made loops (each retry
logged as one line: bot/retries.py). Bolt copies
this client into every listener's `client`.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import Any, Literal

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine

from bot.commands.service import ReportService
from bot.config import MISSING_SIGNING_SECRET, BotSettings
from bot.deps import Deps
from bot.listeners import register_listeners
from bot.retries import (
    AsyncLoggedConnectionErrorRetryHandler,
    AsyncLoggedRateLimitErrorRetryHandler,
    AsyncLoggedServerErrorRetryHandler,
)
from bot.work.inflight import track_listeners
from journey.errors import JourneyError

Transport = Literal["http", "socket"]

log = logging.getLogger("journey.bot")


def web_client(settings: BotSettings, token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(
        token=token,
        base_url=settings.api_url,
        retry_handlers=[
            AsyncLoggedConnectionErrorRetryHandler(max_retry_count=2),
            AsyncLoggedRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncLoggedServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def build_app(
    settings: BotSettings,
    engine: Engine,
    *,
    authorize: Any = None,
    oauth_settings: Any = None,
    deps: Deps | None = None,
    transport: Transport = "http",
) -> AsyncApp:
    """An AsyncApp with every listener registered.

    Single workspace: SLACK_BOT_TOKEN. Multi-workspace: pass `authorize` (tokens
    from the encrypted installation store) and `oauth_settings` (install pages).

    `transport` is how Slack's requests will reach the app, never guessed from
    which tokens are set: "http" needs the signing secret. Bolt's signature check
    stays on either way; Bolt itself skips it for requests that arrived over the
    Socket Mode connection (an authenticated websocket, nothing to sign), and only
    for those.
    """
    if transport == "http" and not settings.signing_secret:
        raise JourneyError(MISSING_SIGNING_SECRET)
    # Bolt ignores `token` when given a client: a single-workspace token goes into the client.
    client = web_client(settings, token=None if authorize is not None else settings.bot_token)
    kwargs: dict[str, Any] = {
        "client": client,
        # Socket Mode without a signing secret: a random one, so that an HTTP
        # request reaching this app by some other route could never verify.
        "signing_secret": settings.signing_secret or secrets.token_hex(32),
        "request_verification_enabled": True,
        "process_before_response": False,
    }
    if authorize is not None:
        kwargs["authorize"] = authorize
        if oauth_settings is not None:
            kwargs["oauth_settings"] = oauth_settings
    app = AsyncApp(**kwargs)
    register_listeners(
        app, deps or Deps(service=ReportService(engine), settings=settings, shared_limits=True)
    )
    # Every listener's run is registered while it works, so a shutdown can wait for it
    # (or tell its user to run the command again): bot/work/inflight.py.
    track_listeners(app)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        ref = uuid.uuid4().hex[:8]
        log.error("listener failed (ref %s, type %s)", ref, body.get("type"), exc_info=error)
        return BoltResponse(status=500, body="")

    return app
