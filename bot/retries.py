"""slack_sdk's retry handlers, each retry logged as one line.

The library retries connection errors, 429s and 5xx answers silently: an
operator saw nothing of twelve failed attempts over eight minutes. These
subclasses log which Web API method, why and which attempt, then let the
library do exactly what it did before (same counts, same waits). The request's
path is logged, never its headers or body (the token travels in both).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

log = logging.getLogger("journey.bot.slack")


def _log_retry(
    max_count: int,
    state: RetryState,
    request: HttpRequest,
    response: HttpResponse | None,
    error: Exception | None,
) -> None:
    method = urlsplit(request.url).path.rsplit("/", 1)[-1] or "a call"
    if response is not None:
        why = f"HTTP {response.status_code}"
        wait = next(
            (v[0] for k, v in response.headers.items() if k.lower() == "retry-after" and v), None
        )
        if wait:
            why += f", Retry-After {wait}s"
    else:
        why = type(error).__name__ if error is not None else "no answer"
    log.warning(
        "Slack %s failed (%s): retry %d of %d", method, why, state.current_attempt + 1, max_count
    )


class LoggedConnectionErrorRetryHandler(ConnectionErrorRetryHandler):
    def prepare_for_next_attempt(self, **kw: Any) -> None:
        _log_retry(
            self.max_retry_count, kw["state"], kw["request"], kw.get("response"), kw.get("error")
        )
        super().prepare_for_next_attempt(**kw)


class LoggedRateLimitErrorRetryHandler(RateLimitErrorRetryHandler):
    """`max_wait`: a Retry-After longer than this is not slept in this thread (the caller
    retries later instead), so one rate-limited channel does not hold up the rest."""

    def __init__(self, max_retry_count: int = 1, max_wait: float | None = None) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(self, **kw: Any) -> bool:
        if not super()._can_retry(**kw):
            return False
        response = kw.get("response")
        if self.max_wait is None or response is None:
            return True
        wait = next(
            (v[0] for k, v in response.headers.items() if k.lower() == "retry-after" and v), None
        )
        try:
            return wait is None or float(wait) <= self.max_wait
        except ValueError:
            return True

    def prepare_for_next_attempt(self, **kw: Any) -> None:
        _log_retry(
            self.max_retry_count, kw["state"], kw["request"], kw.get("response"), kw.get("error")
        )
        super().prepare_for_next_attempt(**kw)


class LoggedServerErrorRetryHandler(ServerErrorRetryHandler):
    def prepare_for_next_attempt(self, **kw: Any) -> None:
        _log_retry(
            self.max_retry_count, kw["state"], kw["request"], kw.get("response"), kw.get("error")
        )
        super().prepare_for_next_attempt(**kw)


class AsyncLoggedConnectionErrorRetryHandler(AsyncConnectionErrorRetryHandler):
    async def prepare_for_next_attempt_async(self, **kw: Any) -> None:
        _log_retry(
            self.max_retry_count, kw["state"], kw["request"], kw.get("response"), kw.get("error")
        )
        await super().prepare_for_next_attempt_async(**kw)


class AsyncLoggedRateLimitErrorRetryHandler(AsyncRateLimitErrorRetryHandler):
    async def prepare_for_next_attempt_async(self, **kw: Any) -> None:
        _log_retry(
            self.max_retry_count, kw["state"], kw["request"], kw.get("response"), kw.get("error")
        )
        await super().prepare_for_next_attempt_async(**kw)


class AsyncLoggedServerErrorRetryHandler(AsyncServerErrorRetryHandler):
    async def prepare_for_next_attempt_async(self, **kw: Any) -> None:
        _log_retry(
            self.max_retry_count, kw["state"], kw["request"], kw.get("response"), kw.get("error")
        )
        await super().prepare_for_next_attempt_async(**kw)
