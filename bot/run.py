"""Starts journey in the mode the environment asks for.

    no Slack tokens        -> the local console on the demo store (the embedded default)
    SLACK_APP_TOKEN        -> Socket Mode (no public URL needed)
    SLACK_BOT_TOKEN/OAuth  -> HTTP mode on PORT (default 3000), Slack's endpoint at /slack/events

`journey bot` and `journey serve` call `run` (bot/cli_plugin.py registers them through
the `journey.plugins` entry point), so the journey package itself never imports Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine

from bot.app import Transport
from bot.config import BotSettings, load_bot_settings, unused_app_token_warning
from bot.work.inflight import INFLIGHT, shutdown_grace
from bot.work.pool import limits_from_env
from journey import logs
from journey.config import load_settings
from journey.db import ensure_schema, make_engine
from journey.errors import JourneyError
from journey.secret_rows import bind_legacy_if_keyed

log = logging.getLogger("journey.bot")

ASGIApp = Callable[..., Awaitable[None]]


def _engine() -> Engine:
    engine = make_engine(load_settings().database_url)
    ensure_schema(engine)
    # Secrets stored before they were bound to their rows are rebound at start.
    bind_legacy_if_keyed(engine)
    return engine


def http_app_from_env() -> ASGIApp:
    """`journey serve` as configured by the environment (each uvicorn worker builds one)."""
    return http_app(load_bot_settings(), _engine())


def asgi_from_env() -> ASGIApp:
    """uvicorn factory: each worker process builds its own app from the environment."""
    from journey import logs

    # A fresh worker process: the parent's logging set-up did not come with it.
    logs.configure(logging.INFO)
    return http_app_from_env()


def scheduler_starter(
    settings: BotSettings | None = None, engine: Engine | None = None
) -> Callable[[], asyncio.Task[None] | None]:
    """What starts the digests-and-alerts loop once the event loop runs (bot/posting/loop.py)."""

    def start() -> asyncio.Task[None] | None:
        from bot.posting.loop import start_scheduler

        s = settings or load_bot_settings()
        return start_scheduler(s, engine or _engine())

    return start


def _app(settings: BotSettings, engine: Engine, transport: Transport) -> AsyncApp:
    """The app for how requests arrive: `transport`, never the tokens, decides whether
    they are verified (bot/app.py)."""
    from bot.app import build_app

    if settings.client_id:
        from bot.install.oauth import oauth_app

        return oauth_app(settings, engine, transport=transport)
    return build_app(settings, engine, transport=transport)


def http_app(settings: BotSettings, engine: Engine) -> ASGIApp:
    """What `journey serve` serves: the verified app behind bot/guard, with the scheduler."""
    from bot.server import asgi_app

    settings.check("http")
    return asgi_app(
        _app(settings, engine, "http"),
        scheduler_starter(settings, engine),
        signing_secret=settings.signing_secret,
    )


def run(mode: str | None = None, port: int | None = None, workers: int = 1) -> None:
    settings = load_bot_settings()
    chosen = mode or settings.mode
    if chosen != "console":
        settings.check(chosen)
    engine = _engine()
    if chosen == "console":
        from bot.console import run_console

        run_console(engine, load_settings().workspace)
        return
    logs.configure(logging.INFO)
    limits = limits_from_env()
    log.info(
        "report pool: %d threads, at most %d waiting (%d per workspace) for %.0fs; "
        "shutdown grace %.0fs",
        limits.threads,
        limits.max_queue,
        limits.max_queue_per_workspace,
        limits.max_wait,
        shutdown_grace(),
    )
    warning = unused_app_token_warning(settings, chosen)
    if warning is not None:
        log.warning("%s", warning)
    if chosen == "http" and workers > 1:
        from bot.server import run_http_workers

        log.info("journey bot serving on port %s with %s workers", port or settings.port, workers)
        run_http_workers(port or settings.port, workers)
        return
    if chosen == "socket":
        log.info("journey bot connecting to Slack in Socket Mode")
        asyncio.run(serve_socket_mode(_app(settings, engine, "socket"), settings, engine))
        return
    from bot.server import serve_http

    log.info(
        "journey bot serving Slack's requests on port %s at /slack/events", port or settings.port
    )
    serve_http(http_app(settings, engine), port or settings.port)


async def serve_socket_mode(
    app: AsyncApp, settings: BotSettings, engine: Engine, stop: asyncio.Event | None = None
) -> None:
    """Connect to Slack over Socket Mode and serve until `stop` is set (forever without one).

    Bolt's handler acknowledges envelopes, answers Slack's `disconnect` by
    reconnecting with a fresh URL, and pings to notice a dead link; the
    scheduler loop runs beside it on the same event loop. A `disconnect` whose
    reason is `link_disabled` (Socket Mode switched off in the app's settings)
    stops the bot with what to do instead: reconnecting cannot help
    (`watch_disconnects`).
    """
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.app import web_client

    client = web_client(settings)
    # The handler retries a refused token forever, logging a traceback each time: ask
    # once first, so a wrong or revoked token stops the start with what to do.
    try:
        await client.apps_connections_open(app_token=settings.app_token)
    except SlackApiError as exc:
        raise JourneyError(
            f"Slack refused SLACK_APP_TOKEN ({exc.response.get('error', 'error')}): make an "
            "app-level token with the connections:write scope (your app's settings, Basic "
            "Information > App-Level Tokens), put it in .env and start again."
        ) from None
    except Exception as exc:
        # No network, no DNS, nothing listening at SLACK_API_URL: say it is Slack that is
        # out of reach (the generic words named only a host, "Cannot reach 127.0.0.1").
        from urllib.parse import urlparse

        from journey.outage import network_words

        if network_words(exc) is None:
            raise
        host = urlparse(settings.api_url).hostname or "slack.com"
        raise JourneyError(
            "Cannot reach Slack (check the connection, and any proxy): this machine could "
            f"not connect to {host}. Run the command again once it can."
        ) from None
    handler = AsyncSocketModeHandler(app, settings.app_token, web_client=client)
    if stop is None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
    disabled = watch_disconnects(handler.client, stop)
    grace = shutdown_grace()
    INFLIGHT.reopen()
    task = scheduler_starter(settings, engine)()
    try:
        await handler.connect_async()
        await stop.wait()
        # Stop taking envelopes first (Slack redelivers unacknowledged ones to another
        # connection), then let acknowledged work finish: bot/work/inflight.py.
        await handler.disconnect_async()
        await INFLIGHT.drain(grace, [task] if task is not None else [])
    finally:
        if task is not None and not task.done():
            task.cancel()
        await handler.close_async()
    if disabled.is_set():
        raise JourneyError(LINK_DISABLED)


LINK_DISABLED = (
    "Socket Mode was switched off in the app's settings: turn it on (your app's settings, "
    "Socket Mode), or run `journey serve` in HTTP mode."
)
# What Slack's `disconnect` reasons mean for us (https://docs.slack.dev/apis/events-api/
# using-socket-mode, "Disconnects"): `warning` (the connection will close soon) and
# `refresh_requested` (Slack rotates connections every few hours) mean connect again,
# which slack_sdk does; `link_disabled` means Socket Mode was turned off for the app, and
# connecting again would only be refused.
RECONNECT_REASONS = frozenset({"warning", "refresh_requested"})


def watch_disconnects(client: Any, stop: asyncio.Event) -> asyncio.Event:
    """Look at each `disconnect` frame before slack_sdk does.

    slack_sdk's SocketModeClient reconnects on every `disconnect`, whatever its reason.
    For `link_disabled` this stops reconnecting, sets `stop` and returns an event that is
    set, so `serve_socket_mode` ends with what to do; other reasons are logged and
    handled by slack_sdk as before (a new connection with a fresh URL).
    """
    disabled = asyncio.Event()
    original = client.run_message_listeners

    async def run_message_listeners(message: dict[str, Any], raw_message: str) -> None:
        if message.get("type") == "disconnect":
            reason = str(message.get("reason") or "")
            if reason == "link_disabled":
                log.error(LINK_DISABLED)
                client.auto_reconnect_enabled = False
                disabled.set()
                stop.set()
                return
            log.info("Slack asked to reconnect (%s); reconnecting", reason or "no reason given")
        await original(message, raw_message)

    client.run_message_listeners = run_message_listeners
    return disabled


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM (a deploy, `docker stop`) and Ctrl-C set `stop`: a graceful shutdown."""
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Not on the main thread (tests) or on Windows: then only `stop` ends it.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
