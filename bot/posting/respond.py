"""Posting to a response URL with retries: every acknowledged command gets its answer.

Bolt's `respond` makes one POST (plus one silent retry of a connection error) and
returns a 5xx answer as if it were delivered; a 15-minute soak lost 42 answers that way
when Slack stalled (docs/status.md). Here each post is retried on what is transient
(a timeout, a dropped or refused connection, HTTP 5xx, HTTP 429 with its Retry-After)
with the backoff and jitter every connector uses (journey/sources/http.py's tenacity
wait), and stopped on what is not (any other 4xx: `expired_url`, `used_url`, a refused
payload), which is logged once.

Bounds, from Slack's rule that a response URL takes "up to 5" responses "within 30
minutes" of the command (api.slack.com/interactivity/slash-commands, "Delayed responses
and multiple responses"; the fake Slack answers 404 `used_url` / `expired_url` past them):

- Every POST counts as a use, the failed ones too (Slack may have counted a post whose
  answer timed out), and no response URL is posted to more than 5 times by this process:
  "Working on…" + the final answer + its retries stay within 5.
- The "Working on…" note is tried once (`final=False`): it is a courtesy, and the
  final answer replaces it, so its retries would only spend the answer's uses.
- Waiting stops after `ResponsePolicy.total` seconds (2 minutes, plus one attempt's
  `attempt_timeout`), far inside the URL's 30 minutes.

A POST that timed out may still have arrived. The retry resends the same payload: an
answer that replaces the "Working on…" note (`replace_original`, the usual case for a
slow report) replaces it again, so the user still sees one message. An answer without
`replace_original` may then show twice; we chose not to add `replace_original` to such
retries, because on a button's response URL it would overwrite the message clicked on
(a report and its buttons) whenever the first post had in fact never arrived.

Nothing here logs the URL (it lets anyone post as the app to that user) or the payload.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import tenacity
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.webhook.async_client import AsyncWebhookClient

from journey.sources.http import Retryable, RetryPolicy, RetryWait, parse_retry_after

log = logging.getLogger("journey.bot")

#: Slack's limits on one response URL (see the module docstring for the source).
MAX_USES = 5
LIFETIME = 30 * 60.0


@dataclass(frozen=True)
class ResponsePolicy:
    """How hard one post to a response URL is tried. `attempt_timeout`: seconds one POST
    may take; `total`: seconds after which no further wait starts (a Retry-After longer
    than what is left ends the retries at once)."""

    attempt_timeout: float = 10.0
    total: float = 120.0
    backoff: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(
            attempts=MAX_USES, initial=1.0, maximum=30.0, jitter=1.0, sleep=lambda _s: None
        )
    )


POLICY = ResponsePolicy()


class Permanent(Exception):
    """A post Slack refused for good (4xx other than 429): retrying cannot help."""


class _Uses:
    """How many times this process posted to each response URL, kept for the URL's
    30 minutes and for at most `limit` URLs (oldest forgotten first). Keyed by a hash so
    the secret-bearing URL is not kept around."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    @staticmethod
    def _key(url: str) -> str:
        return hashlib.sha256(url.encode()).hexdigest()

    def left(self, url: str) -> int:
        entry = self._seen.get(self._key(url))
        return MAX_USES - (entry[1] if entry else 0)

    def spend(self, url: str) -> None:
        key, now = self._key(url), time.monotonic()
        first, used = self._seen.pop(key, (now, 0))
        self._seen[key] = (first, used + 1)
        while self._seen:
            oldest_key, (oldest, _) = next(iter(self._seen.items()))
            if len(self._seen) <= self.limit and now - oldest <= LIFETIME:
                break
            del self._seen[oldest_key]


USES = _Uses()


def _slack_error(body: str) -> str:
    """The error word of a refused post (`used_url`, `expired_url`, ...), or the HTTP
    status alone: the body is logged only when it is one short word."""
    try:
        parsed = json.loads(body)
        word = parsed.get("error") if isinstance(parsed, dict) else None
    except ValueError:
        word = body.strip()
    return word if isinstance(word, str) and re.fullmatch(r"[a-z_]{1,40}", word) else ""


async def _post_once(respond: AsyncRespond, payload: dict[str, Any], timeout: float) -> None:
    """One POST; returns when Slack accepted it, raises Retryable or Permanent."""
    url = respond.response_url
    assert url is not None
    # retry_handlers=[]: the retries are ours, so every POST is counted as a use.
    client = AsyncWebhookClient(
        url=url, proxy=respond.proxy, ssl=respond.ssl, timeout=max(1, round(timeout))
    )
    USES.spend(url)
    body = {k: v for k, v in payload.items() if v is not None}
    try:
        answer = await asyncio.wait_for(client.send_dict(body), timeout)
    except TimeoutError:
        raise Retryable("timed out") from None
    except aiohttp.ClientError as exc:  # refused, reset, dropped mid-answer
        raise Retryable(type(exc).__name__) from None
    status = answer.status_code
    if status == 200:
        return
    word = _slack_error(answer.body)
    why = f"HTTP {status}" + (f" {word}" if word else "")
    if status == 429:
        wait = answer.headers.get("Retry-After") or answer.headers.get("retry-after")
        retry_after = parse_retry_after(wait if isinstance(wait, str) else None)
        if retry_after is not None:
            why += f", Retry-After {retry_after:g}s"
        raise Retryable(why, kind="rate_limit", retry_after=retry_after)
    if status >= 500:
        raise Retryable(why)
    raise Permanent(why)


async def post_response(
    respond: AsyncRespond,
    payload: dict[str, Any],
    *,
    final: bool = True,
    policy: ResponsePolicy | None = None,
) -> bool:
    """Post `payload` to `respond`'s response URL, retrying transient failures within
    the URL's uses and `policy.total`. Returns whether Slack accepted it; never raises
    (a listener must not crash on an undeliverable answer) except when cancelled."""
    policy = policy or POLICY
    url = respond.response_url
    if url is None:
        log.warning("could not send a response: the request had no response URL")
        return False
    attempts = min(USES.left(url), policy.backoff.attempts if final else 1)
    if attempts <= 0:
        log.warning(
            "could not send a response: its response URL was already used %d times", MAX_USES
        )
        return False

    def log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "response post failed (%s): retry %d of %d in %.1fs",
            getattr(exc, "reason", type(exc).__name__),
            state.attempt_number,
            attempts - 1,
            state.upcoming_sleep,
        )

    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(attempts) | tenacity.stop_before_delay(policy.total),
        wait=RetryWait(policy.backoff),
        retry=tenacity.retry_if_exception_type(Retryable),
        before_sleep=log_retry,
        sleep=asyncio.sleep,
        reraise=True,
    )
    tried = 0
    try:
        async for attempt in retrying:
            with attempt:
                tried += 1
                await _post_once(respond, payload, policy.attempt_timeout)
        return True
    except Retryable as exc:
        log.warning(
            "could not send a response after %d attempt%s (%s): given up",
            tried,
            "" if tried == 1 else "s",
            exc.reason,
        )
    except Permanent as exc:
        log.warning("could not send a response (%s): not retried", exc)
    except Exception as exc:  # a payload the client cannot send; never a traceback to Slack
        log.warning("could not send a response: %s", type(exc).__name__)
    return False
