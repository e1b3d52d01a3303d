"""Reading Shopify's answers: query cost and throttling, and errors in plain words.

Shopify's Admin GraphQL API limits by *query cost*, not by request count: each
app has a bucket of points per store (`maximumAvailable`, 1,000 on standard
plans) that refills at `restoreRate` points a second (50; more on Plus). Every
answer carries `extensions.cost` with the query's `requestedQueryCost`,
`actualQueryCost` and the bucket's `throttleStatus`. A query costing more than
is available is not run: the answer has no `data` and an error with code
THROTTLED, with HTTP status 200 (sometimes 429; a 5xx from something in between
is not ruled out), so throttling is read from the body whatever the status,
never from the status alone.

`CostBucket` keeps the last throttle status seen and predicts the bucket
between answers, so the connector waits *before* a query that would be
throttled (pacing from throttleStatus: requests run at the restore rate without
being refused). When Shopify throttles anyway (another process using the same app's token on this store
shares the bucket),
`interpret` turns the answer into a retry after exactly
(requestedQueryCost - currentlyAvailable) / restoreRate seconds.

Errors a person must act on come out typed (journey.sources.http): a 401
("Invalid API key or access token") is an AuthError, an ACCESS_DENIED error is a
ScopeError naming the missing scope (read_orders, read_customers...), both of
which pause the source; an unknown shop (404), a frozen (402) or locked (423)
store say so in words.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from journey.sources.http import (
    AuthError,
    BadRequest,
    Retryable,
    ScopeError,
    Unreachable,
)

SERVICE = "Shopify"
REQUIRED_SCOPES = ("read_customers", "read_orders")
HISTORY_SCOPE = "read_all_orders"  # without it Shopify shows only the last 60 days of orders
_SCOPE = re.compile(r"\b(read_[a-z_]+|write_[a-z_]+)\b")
_TOKEN = re.compile(r"\bshp[a-z]{2}_[A-Za-z0-9]+")
CONNECT_HINT = (
    "Make an Admin API access token with the scopes read_customers, read_orders and "
    "read_all_orders (Shopify admin > Settings > Apps and sales channels > Develop apps), "
    "then store it with `journey sources add shopify`."
)


@dataclass
class CostBucket:
    """The store's query-cost bucket as last reported, refilled by the clock in between."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    maximum: float | None = None
    available: float | None = None
    restore_rate: float | None = None
    observed_at: float = 0.0
    waited: float = 0.0  # seconds spent pacing, for tests and the benchmark
    spent: float = 0.0  # actualQueryCost of every answered query
    throttled: int = 0  # answers Shopify refused as THROTTLED

    def observe(self, cost: Mapping[str, Any] | None) -> None:
        if not isinstance(cost, Mapping):
            return
        actual = cost.get("actualQueryCost")
        if isinstance(actual, int | float):
            self.spent += float(actual)
        status = cost.get("throttleStatus")
        if not isinstance(status, Mapping):
            return
        try:
            self.maximum = float(status["maximumAvailable"])
            self.available = float(status["currentlyAvailable"])
            self.restore_rate = float(status["restoreRate"])
        except (KeyError, TypeError, ValueError):
            return
        self.observed_at = self.clock()

    def now(self) -> float | None:
        """Points available now, by the last status and the time since."""
        if self.available is None or self.restore_rate is None or self.maximum is None:
            return None
        refilled = self.available + (self.clock() - self.observed_at) * self.restore_rate
        return min(self.maximum, refilled)

    def wait_for(self, cost: float) -> float:
        """Seconds until `cost` points are available (0 when unknown or already there)."""
        available = self.now()
        if available is None or not self.restore_rate or cost <= available:
            return 0.0
        if self.maximum is not None:
            cost = min(cost, self.maximum)
        return (cost - available) / self.restore_rate

    def pace(self, cost: float) -> None:
        wait = self.wait_for(cost)
        if wait > 0:
            self.waited += wait
            self.sleep(wait)


def throttle_wait(cost: Mapping[str, Any] | None) -> float:
    """(requestedQueryCost - currentlyAvailable) / restoreRate, as Shopify documents it."""
    try:
        assert isinstance(cost, Mapping)
        status = cost["throttleStatus"]
        requested = float(cost["requestedQueryCost"])
        available = float(status["currentlyAvailable"])
        rate = float(status["restoreRate"])
    except (AssertionError, KeyError, TypeError, ValueError):
        return 1.0
    if rate <= 0:
        return 1.0
    return max(0.0, (requested - available) / rate)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _codes(errors: list[Any]) -> list[str]:
    out = []
    for error in errors:
        ext = error.get("extensions") if isinstance(error, dict) else None
        out.append(str(ext.get("code") or "") if isinstance(ext, dict) else "")
    return out


def missing_scope(errors: list[Any]) -> str | None:
    for error in errors:
        if not isinstance(error, dict):
            continue
        ext = error.get("extensions") if isinstance(error.get("extensions"), dict) else {}
        for text in (ext.get("requiredAccess"), error.get("message")):
            found = _SCOPE.search(str(text or ""))
            if found:
                return found.group(1)
    return None


def scope_error(scope: str | None) -> ScopeError:
    named = f"the `{scope}` access scope" if scope else "an access scope this sync needs"
    return ScopeError(
        f"The Shopify access token lacks {named}. {CONNECT_HINT}",
        scope=scope,
        service=SERVICE,
    )


def _errors(body: Mapping[str, Any]) -> list[Any]:
    """The body's `errors` as a list: GraphQL's list, REST's string or object, or none."""
    errors = body.get("errors")
    if not errors:
        return []
    if isinstance(errors, str):  # REST-style {"errors": "..."}
        return [{"message": errors}]
    return errors if isinstance(errors, list) else [errors]


def interpret(response: httpx.Response, bucket: CostBucket, shop: str) -> Exception | None:
    """Shopify's rules for an answer, before the generic ones of journey.sources.http.

    The body is read first, whatever the status: Shopify reports THROTTLED with 200 or
    429, and a proxy or an overloaded edge may pass it on with a 5xx. Judged by its status
    alone it would be retried after a blind backoff (a few seconds, when the bucket needs
    (requested - available) / restoreRate) and counted as an outage, not a rate limit.
    """
    status = response.status_code
    body = _json(response)
    cost = None
    errors: list[Any] = []
    if isinstance(body, dict):
        extensions = body.get("extensions")
        cost = extensions.get("cost") if isinstance(extensions, dict) else None
        bucket.observe(cost)
        errors = _errors(body)
    codes = _codes(errors)
    if "THROTTLED" in codes:
        bucket.throttled += 1
        return Retryable(
            "said the query cost limit was reached",
            kind="rate_limit",
            retry_after=throttle_wait(cost),
        )
    if status == 401:
        return AuthError(
            "Shopify refused the access token (HTTP 401, invalid API key or access token): "
            f"it is wrong, or the app was uninstalled or its token revoked. {CONNECT_HINT}",
            service=SERVICE,
            status=401,
        )
    if status == 403:
        found = _SCOPE.search(str(body.get("errors") if isinstance(body, dict) else ""))
        if found:
            return scope_error(found.group(1))
        return AuthError(
            f"Shopify refused access with this token (HTTP 403). {CONNECT_HINT}",
            service=SERVICE,
            status=403,
        )
    if status == 404:
        return BadRequest(
            f"There is no Shopify store at {shop} (HTTP 404): check the shop's "
            "myshopify.com domain (Shopify admin > Settings > Domains).",
            status=404,
            service=SERVICE,
        )
    if status == 402:
        return Unreachable(
            f"The Shopify store {shop} is frozen (HTTP 402: its plan is unpaid); the sync "
            "resumes once the store is active again.",
            service=SERVICE,
        )
    if status == 423:
        return Unreachable(
            f"The Shopify store {shop} is locked (HTTP 423); the sync resumes once Shopify "
            "unlocks it.",
            service=SERVICE,
        )
    if status not in (200, 429):
        return None  # retried (5xx, 408) or a plain error, by the generic rules
    if not isinstance(body, dict):
        return None  # a truncated or broken body: retried by the generic rules
    if not errors:
        return None  # a 429 without a body we know falls to the generic rules
    if "ACCESS_DENIED" in codes:
        return scope_error(missing_scope(errors))
    if "INTERNAL_SERVER_ERROR" in codes:
        return Retryable("had an internal error")
    if status == 429:
        return None
    messages = (
        "; ".join(str(e.get("message") or "") for e in errors if isinstance(e, dict))
        or "no message"
    )
    code = next((c for c in codes if c), None)
    return BadRequest(
        f"Shopify rejected a query: {_TOKEN.sub('[token]', messages)[:500]}",
        status=status,
        code=code or "GRAPHQL",
        service=SERVICE,
    )
