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
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine

from bot.blocks.help import error_message
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
LISTENER_FAILED = (
    "Something went wrong on our side (reference `{ref}`). Please try again in a minute; "
    "if it keeps happening, give your admin this reference."
)


def _what(body: dict[str, Any]) -> str:
    """Which listener: the action, callback or command, never a value a person typed."""
    actions = body.get("actions") or [{}]
    view = body.get("view") or {}
    event = body.get("event") or {}
    return str(
        actions[0].get("action_id")
        or view.get("callback_id")
        or body.get("command")
        or event.get("type")
        or "-"
    )


def _where(error: BaseException) -> str:
    """The deepest frame of journey's code as file:line, so the one log line still
    points at the bug (a traceback's other lines and the exception's message may quote
    data)."""
    tb = error.__traceback__
    if tb is None:
        return "?"
    ours = None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if "/bot/" in name or "/journey/" in name:
            ours = tb  # the deepest frame of journey's own code
        last, tb = tb, tb.tb_next
    tb = ours or last
    code = tb.tb_frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno} in {code.co_name}"


async def report_failure(
    error: BaseException, body: dict[str, Any], respond: AsyncRespond | None
) -> str:
    """One log line with a reference; the person the one sentence with it. Returns the
    reference."""
    ref = uuid.uuid4().hex[:8]
    log.error(
        "listener failed (ref %s, %s %s): %s at %s",
        ref,
        body.get("type"),
        _what(body),
        type(error).__name__,
        _where(error),
    )
    if respond is not None:  # Bolt makes one when the request has a response URL
        text = LISTENER_FAILED.format(ref=ref)
        try:
            await respond(
                **error_message(text).payload(),
                response_type="ephemeral",
                replace_original=False,
            )
        except Exception as exc:  # best effort: the log line is there either way
            log.warning(
                "listener failed (ref %s): could not tell the user (%s)", ref, type(exc).__name__
            )
    return ref


_GUARD_ARGS = ("ack", "body", "respond")


def guard_listeners(app: AsyncApp) -> None:
    """Every listener's failure after its ack handled here, not by Bolt.

    Bolt's runner (slack_bolt/listener/asyncio_runner.py, 1.30) hands an exception
    raised after the ack to the error handler and then sets the ack's response to the
    handler's (None once acknowledged): a listener that acks and fails within the 10 ms
    Bolt polls the ack is answered 404, and Slack shows the person its own error on top
    of ours. Caught here, the request keeps its ack and the person gets one sentence.
    Bolt passes a listener only the arguments it names (`arg_names`), so the three this
    needs are added to the names and taken out again before the listener runs."""
    for listener in getattr(app, "_async_listeners", []):
        fn = getattr(listener, "ack_function", None)
        names = getattr(listener, "arg_names", None)
        if fn is None or names is None or getattr(fn, "_journey_guarded", False):
            continue
        extra = [n for n in _GUARD_ARGS if n not in names]

        def guarded(
            fn: Callable[..., Awaitable[Any]] = fn, extra: list[str] = extra
        ) -> Callable[..., Awaitable[Any]]:
            async def run(**kwargs: Any) -> Any:
                ack, body, respond = (kwargs.get(n) for n in _GUARD_ARGS)
                for name in extra:
                    kwargs.pop(name, None)
                try:
                    return await fn(**kwargs)
                except Exception as exc:
                    if ack is None or getattr(ack, "response", None) is None:
                        raise  # not acknowledged yet: Bolt's error handler answers
                    await report_failure(exc, body or {}, respond)
                    return None

            run._journey_guarded = True  # type: ignore[attr-defined]
            return run

        listener.ack_function = guarded()
        listener.arg_names = [*names, *extra]


class _NotTokenSkipped(logging.Filter):
    """Drops Bolt's "As you gave `client` as well, `token` will be unused.": Bolt reads
    SLACK_BOT_TOKEN from the environment itself and warns on every start that it prefers
    the client journey gives it, which holds that same token; a new user read it as a
    misconfiguration."""

    def filter(self, record: logging.LogRecord) -> bool:
        from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped

        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def _quiet_bolt_token_warning() -> None:
    bolt = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _NotTokenSkipped) for f in bolt.filters):
        bolt.addFilter(_NotTokenSkipped())


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
    _quiet_bolt_token_warning()
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

    # After tracking, so a failure is reported inside the tracked run.
    guard_listeners(app)

    @app.error
    async def on_error(
        error: Exception,
        body: dict[str, Any],
        respond: AsyncRespond | None,
        response: BoltResponse | None,
    ) -> BoltResponse | None:
        """What failed before a listener's ack (or in middleware): reported as
        `report_failure` does. Bolt passes `response` None once the request was
        acknowledged and then refuses a returned BoltResponse ("response must be provided
        when returning a BoltResponse"), so one is returned only before the ack: a 200
        acknowledging the request, since the person is told through the response URL
        instead of by Slack's generic failure."""
        await report_failure(error, body, respond)
        if response is None:
            return None
        return BoltResponse(status=200, body="")

    return app
