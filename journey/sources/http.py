"""One HTTP client for every connector: timeouts, retries, rate limits, plain-word errors.

Every connector talks to its API through `HttpClient`, so paging code never
sleeps, retries or parses error bodies itself:

- Every client takes a base URL (tests point it at a local fake server).
- Timeouts on connect, read, write and pool, and a total deadline per request
  (`HttpOptions.deadline`, retries and their waits included) enforced on every
  socket operation (journey/sources/net.py), so neither a stalled server nor one
  that answers a byte at a time can hang a sync; a sync's own deadline
  (journey/sync.py) bounds every request in it.
- Every answer is read as a stream and refused past `HttpOptions.max_bytes`
  (50 MB unless JOURNEY_HTTP_MAX_MB says otherwise), counted after decompression,
  with `TooLarge` naming the API: one store cannot take the server's memory.
- Retries with exponential backoff and jitter (tenacity) on 429, 5xx, timeouts,
  dropped connections and truncated or broken JSON bodies; a `Retry-After` header
  (seconds or an HTTP date) is honoured, and the number of attempts and the total
  time spent waiting are both bounded.
- Failures a person must fix come out as typed errors with a message in plain
  words: `AuthError` (the credential was refused: revoked or wrong), `ScopeError`
  (the credential lacks a permission, with its name), `RateLimited` (the API
  kept saying "too many requests"), `Unreachable` (no usable answer: down,
  timing out, dropping the connection). `BadRequest` covers other 4xx answers.
- A connector adapts the rules to its API with an `interpret` hook, called with
  every response before the generic rules: it may return an error to raise
  (`Retryable` to retry), or None to fall through. Stripe uses it for
  `Stripe-Should-Retry` and restricted-key permissions; Shopify's GraphQL
  throttling (HTTP 200 with THROTTLED in the body) fits the same hook.

Nothing here logs a header, a query string or a body: only the method and path
are logged (each response at DEBUG, through journey.logs.http_hooks; httpx's own
line with the full URL is silenced by journey.logs). Send credentials in headers
(or `auth=`), never in the query string.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import tenacity

from journey import logs
from journey.errors import JourneyError
from journey.sources import net

log = logging.getLogger(__name__)

Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None


# --- errors a person reads ---------------------------------------------------------


class SourceError(JourneyError):
    """A store or CRM API could not be read. The message is for the person running journey."""

    def __init__(self, message: str, *, service: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.service = service
        self.status = status


class AuthError(SourceError):
    """The API refused the credential (HTTP 401/403): revoked, expired or wrong.

    Retrying cannot help: the sync pauses the source until a person enters a
    new credential, and reports it once.
    """


class ScopeError(AuthError):
    """The credential works but lacks a permission (scope) this sync needs."""

    def __init__(self, message: str, *, scope: str | None, service: str = "") -> None:
        super().__init__(message, service=service, status=403)
        self.scope = scope


class RateLimited(SourceError):
    """The API kept answering "too many requests" after every retry."""

    def __init__(self, message: str, *, retry_after: float | None, service: str = "") -> None:
        super().__init__(message, service=service, status=429)
        self.retry_after = retry_after


class Unreachable(SourceError):
    """No usable answer after every retry: down, timing out, dropping connections, broken replies."""


class AddressBlocked(SourceError):
    """The address (typed in Slack) leads to a local, private or reserved network."""


class TooLarge(SourceError):
    """An answer was larger than journey reads in one go (`HttpOptions.max_bytes`).

    Not retried: the same request would bring the same answer. Nothing of it is kept.
    """


class BadRequest(SourceError):
    """The API rejected the request itself (another 4xx). `code` and `param` come from the body."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        param: str | None = None,
        service: str = "",
    ) -> None:
        super().__init__(message, service=service, status=status)
        self.code = code
        self.param = param


class Retryable(Exception):
    """A transient failure: raised inside the retry loop, never seen by callers.

    `kind` says which plain-words error to raise once retries run out:
    "rate_limit" becomes RateLimited, anything else Unreachable.
    """

    def __init__(
        self, reason: str, *, kind: str = "server", retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.retry_after = retry_after


# --- retry policy ------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up.

    Waits grow exponentially from `initial` seconds, doubled each attempt, plus
    up to `jitter` seconds at random, never above `maximum`; a Retry-After
    header replaces the computed wait (but a Retry-After longer than
    `max_retry_after` ends the retries at once: better to say "try later" than
    to hang a sync for an hour). `sleep` is injectable so tests never wait.
    """

    attempts: int = 6
    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 1.0
    total: float = 180.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = time.sleep


NO_WAIT = RetryPolicy(initial=0.0, maximum=0.0, jitter=0.0, sleep=lambda _s: None)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN guard


@dataclass
class _Wait:
    """tenacity wait: Retry-After when the server gave one, else exponential backoff + jitter."""

    policy: RetryPolicy
    rng: random.Random = field(default_factory=random.Random)

    def __call__(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Retryable) and exc.retry_after is not None:
            return exc.retry_after
        p = self.policy
        backoff = p.initial * (2 ** (state.attempt_number - 1))
        return min(p.maximum, backoff + self.rng.uniform(0, p.jitter))


#: The same wait, public for the bot's response-URL retries (bot/posting/respond.py).
RetryWait = _Wait


MB = 1024 * 1024
DEFAULT_MAX_MB = 50
DEFAULT_DEADLINE = 300.0  # seconds one request may take, retries and their waits included


def env_number(name: str, default: float, *, unit: str = "seconds") -> float:
    """A positive number from the environment (None or blank: `default`); a clear error
    naming the variable otherwise."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise JourneyError(f"{name} must be a number of {unit}, got {raw!r}.") from None
    if not value > 0:
        raise JourneyError(f"{name} must be more than 0 {unit}, got {raw!r}.")
    return value


def default_max_bytes() -> int:
    return int(env_number("JOURNEY_HTTP_MAX_MB", DEFAULT_MAX_MB, unit="megabytes") * MB)


def default_deadline() -> float:
    return env_number("JOURNEY_HTTP_DEADLINE", DEFAULT_DEADLINE)


@dataclass(frozen=True)
class HttpOptions:
    """What tests and the CLI may tune on every connector's client.

    `deadline`: seconds one request may take in all (every try, every wait between
    tries, every byte of the answer); None leaves only the deadline around it (a sync's).
    `max_bytes`: the largest answer read (decompressed). `guard`: the base URL was typed
    in Slack, so only public addresses may be reached (journey/sources/net.py).
    `transport` replaces the socket layer (tests): deadlines inside an answer and the
    guard then hold only as far as that transport keeps them.
    """

    timeout: httpx.Timeout = field(
        default_factory=lambda: httpx.Timeout(connect=10.0, read=60.0, write=30.0, pool=10.0)
    )
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: httpx.BaseTransport | None = None
    deadline: float | None = field(default_factory=default_deadline)
    max_bytes: int = field(default_factory=default_max_bytes)
    guard: bool = False

    def make_transport(self) -> httpx.BaseTransport:
        return self.transport or net.transport(guard=self.guard)

    def make_mounts(self) -> dict[str, httpx.BaseTransport | None]:
        """The environment's proxies (none for a given transport or a guarded client)."""
        return {} if self.transport is not None else net.proxy_mounts(guard=self.guard)


Interpret = Callable[[httpx.Response], Exception | None]


class HttpClient:
    """A JSON-over-HTTP client for one API (one base URL, one credential).

    `service` names the API in messages ("Stripe", "Shopify"). `headers` carry
    the credential; they are never logged. Use as a context manager or call
    `close()`.
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        options: HttpOptions | None = None,
        interpret: Interpret | None = None,
    ) -> None:
        self.service = service
        self.options = options or HttpOptions()
        self._interpret = interpret
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Accept": "application/json", "User-Agent": "journey", **(headers or {})},
            auth=auth,
            timeout=self.options.timeout,
            transport=self.options.make_transport(),
            mounts=self.options.make_mounts(),
            follow_redirects=False,
            event_hooks=logs.http_hooks(service),
        )
        self.requests = 0  # attempts sent, retries included (for tests and progress)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the one entry point ---

    def get_json(self, path: str, params: Params = None) -> Any:
        return self.request_json("GET", path, params=params)

    def get_json_and_headers(self, path: str, params: Params = None) -> tuple[Any, httpx.Headers]:
        """Like `get_json`, with the answer's headers (paging counts such as X-WP-TotalPages)."""
        return self._retried("GET", path, params, None)

    def request_json(
        self, method: str, path: str, *, params: Params = None, json: Any = None
    ) -> Any:
        """The decoded JSON answer, retried as the policy says; typed errors otherwise.

        Only idempotent reads should be sent through here without care: a POST
        that timed out may have happened, and it is sent again (GraphQL queries
        and search endpoints are reads, so they are safe).
        """
        return self._retried(method, path, params, json)[0]

    def _retried(
        self, method: str, path: str, params: Params, json: Any
    ) -> tuple[Any, httpx.Headers]:
        policy = self.options.retry
        with net.deadline_scope(self.options.deadline) as ends:
            retrying = tenacity.Retrying(
                stop=tenacity.stop_after_attempt(max(1, policy.attempts))
                | tenacity.stop_after_delay(policy.total)
                | _stop_on_long_retry_after(policy.max_retry_after)
                | _stop_at(ends),
                wait=_Wait(policy),
                retry=tenacity.retry_if_exception_type(Retryable),
                sleep=policy.sleep,
                before_sleep=self._log_retry(method, path),
                reraise=True,
            )
            try:
                for attempt in retrying:
                    with attempt:
                        return self._once(method, path, params, json)
            except Retryable as exc:
                attempts = retrying.statistics.get("attempt_number", 1)
                raise self._gave_up(exc, attempts, out_of_time=_passed(ends)) from None
        raise AssertionError("unreachable")  # pragma: no cover (tenacity returns or raises)

    def _once(self, method: str, path: str, params: Params, body: Any) -> tuple[Any, httpx.Headers]:
        self.requests += 1
        try:
            response = self._read(
                self._client.build_request(method, path, params=params, json=body)
            )
        except net.AddressRefused as exc:
            raise AddressBlocked(str(exc), service=self.service) from None
        except httpx.TimeoutException:
            raise Retryable("did not answer in time", kind="timeout") from None
        except httpx.ConnectError:
            raise Retryable(
                "could not be reached (connection refused or no route)", kind="network"
            ) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError):
            raise Retryable("dropped the connection", kind="network") from None
        if self._interpret is not None:
            verdict = self._interpret(response)
            if verdict is not None:
                raise verdict
        self._check_status(response)
        try:
            return response.json(), response.headers
        except ValueError:
            raise Retryable("sent a broken (truncated or malformed) answer", kind="body") from None

    def _read(self, request: httpx.Request) -> httpx.Response:
        """The answer, read whole but never past `max_bytes` (decompressed) nor past the
        deadline; the stream is closed either way."""
        cap = self.options.max_bytes
        streamed = self._client.send(request, stream=True)
        try:
            declared = streamed.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cap:
                raise self._too_large(request)
            chunks: list[bytes] = []
            size = 0
            for chunk in streamed.iter_bytes():
                size += len(chunk)
                if size > cap:
                    raise self._too_large(request)
                chunks.append(chunk)
                if _passed(net.current_deadline()):
                    raise httpx.ReadTimeout("the deadline passed", request=request)
        finally:
            streamed.close()
        # A fresh response over the decoded bytes: without the encoding headers, so nothing
        # decodes them twice.
        headers = [
            (k, v)
            for k, v in streamed.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            streamed.status_code, headers=headers, content=b"".join(chunks), request=request
        )

    def _too_large(self, request: httpx.Request) -> TooLarge:
        limit = self.options.max_bytes / MB
        shown = f"{limit:.0f} MB" if limit >= 1 else f"{self.options.max_bytes} bytes"
        return TooLarge(
            f"{self.service} sent an answer larger than {shown} to {request.url.path}, the most "
            "journey reads in one answer (JOURNEY_HTTP_MAX_MB); none of it was kept. Check "
            f"that the address points at {self.service}, or ask your journey operator to raise "
            "the limit.",
            service=self.service,
        )

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            raise Retryable("said too many requests", kind="rate_limit", retry_after=retry_after)
        if status >= 500:
            raise Retryable(f"had a server error (HTTP {status})", retry_after=retry_after)
        if status == 408:
            raise Retryable("timed out the request (HTTP 408)", kind="timeout")
        if status == 401:
            raise AuthError(
                f"{self.service} refused the credential (HTTP 401): it is wrong, expired or "
                "was revoked.",
                service=self.service,
                status=status,
            )
        if status == 403:
            raise AuthError(
                f"{self.service} refused access (HTTP 403): the credential was revoked or "
                "lacks a permission.",
                service=self.service,
                status=status,
            )
        raise BadRequest(
            f"{self.service} rejected a request (HTTP {status}).",
            status=status,
            service=self.service,
        )

    def _gave_up(self, exc: Retryable, attempts: int, *, out_of_time: bool = False) -> SourceError:
        tries = f"{attempts} {'try' if attempts == 1 else 'tries'}"
        if out_of_time:
            return Unreachable(
                f"{self.service} {exc.reason} and ran out of the time a request may take "
                f"({tries}). Check the address and {self.service}'s status page; the sync "
                "resumes where it stopped next time.",
                service=self.service,
            )
        if exc.kind == "rate_limit":
            later = (
                f" It asked to wait {exc.retry_after:.0f} s."
                if exc.retry_after and exc.retry_after >= 1
                else ""
            )
            return RateLimited(
                f"{self.service} kept saying too many requests after {tries}.{later} "
                "The sync stopped where it was and resumes from there next time.",
                retry_after=exc.retry_after,
                service=self.service,
            )
        return Unreachable(
            f"{self.service} {exc.reason} after {tries}. Check the network and "
            f"{self.service}'s status page; the sync resumes where it stopped next time.",
            service=self.service,
        )

    def _log_retry(self, method: str, path: str) -> Callable[[tenacity.RetryCallState], None]:
        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.upcoming_sleep
            log.info(
                "%s %s %s %s; retry %d in %.1f s",
                self.service,
                method,
                path.split("?")[0],
                exc.reason if isinstance(exc, Retryable) else "failed",
                state.attempt_number,
                wait,
            )

        return before_sleep


def _passed(ends: float | None) -> bool:
    return ends is not None and time.monotonic() >= ends


def _stop_at(ends: float | None) -> Callable[[tenacity.RetryCallState], bool]:
    """Stop when the wait before the next try would end past the deadline: a try that
    cannot start in time is not worth waiting for."""

    def stop(state: tenacity.RetryCallState) -> bool:
        if ends is None:
            return False
        return time.monotonic() + (state.upcoming_sleep or 0.0) >= ends

    return stop


def _stop_on_long_retry_after(limit: float) -> Callable[[tenacity.RetryCallState], bool]:
    def stop(state: tenacity.RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return (
            isinstance(exc, Retryable) and exc.retry_after is not None and exc.retry_after > limit
        )

    return stop
