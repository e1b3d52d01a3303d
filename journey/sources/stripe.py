"""Stripe: customers, charges, refunds, invoices and subscriptions into journey events.

How each Stripe object becomes store records (docs/connectors.md, "Stripe: what becomes what"):

| Stripe object | journey record |
| --- | --- |
| customer | a customer (`cus_...`): name, email, first seen = `created`, channel from metadata `channel`/`utm_source`/`source` |
| charge: succeeded, captured, not part of an invoice | `order` event `charge:<id>` at `created`, for the captured amount |
| refund: succeeded | `refund` event `refund:<id>` at `created`, for its amount (subtracted from revenue) |
| invoice: paid, amount paid > 0 | `renewal` event `invoice:<id>` for a subscription's later cycles (`billing_reason` `subscription_cycle`), else `order`; at `status_transitions.paid_at`, for `amount_paid` |
| subscription (`status=all`) | `subscribe` event `subscription:<id>` at `created` (consideration: a sign-up or trial, not money), and once canceled a `cancellation` event `subscription:<id>:cancellation` at `ended_at` (else `canceled_at`), no amount, so churn is visible |
| dispute: funds withdrawn (`needs_response`, `under_review`, `lost`) | `refund` event `dispute:<id>` at `created`, for its amount (a chargeback takes the money back) |

What takes records away (the store stays equal to the account): every object
read says which events it implies *now*, and its other events go
(`Records.families`). A refund that failed or was canceled loses its `refund`
event; a dispute won by the merchant (funds reinstated) or an inquiry closed
(`won`, `warning_*`, `charge_refunded`) loses its `dispute` event. A deleted
customer (`customer.deleted`; the API then answers `"deleted": true`) loses its
name, email, first-seen time and channel; its charges, invoices and
subscriptions stay in Stripe, so their events stay too (on an empty customer),
and a customer with no events left is removed. Stripe cancels a deleted
customer's subscriptions, which arrive as cancellations.

Money is counted once: the charges that pay invoices carry an `invoice` id and are
left to the invoice (the API version is pinned so those fields exist), and a
subscription's money comes only from its paid invoices. A charge without a
customer (a guest checkout) belongs to a customer `guest:<email>` made from its
billing or receipt email; one with no email at all is skipped. Amounts are in
the currency's smallest unit, as Stripe gives them.

Incremental reads. Stripe lists are newest first, filtered by `created[gte]`, and
paged with `starting_after=<last id>`. That keyset paging is stable while records
are added (new ones appear ahead of the cursor), but the watermark may only move
when a pass ends (see `journey.sources.base.Watermark`). A pass starts 5 minutes
below the watermark; re-read records are upserts and change nothing.

Created-time lists never show a change to an old record (a subscription
canceled today, an invoice paid an hour after it was created, a refund turning
from pending to succeeded). The `events` resource reads `/v1/events` for those
changes and fetches each changed object's current state (the event's own
snapshot may be older than what was already stored, so it is not used). It is a
change feed: the sync reads it before the lists and again after them. On the
first sync it only marks the time. Stripe keeps events for 30 days: when the
last check is older than that, the lists are read again in full instead.

Rate limits. Stripe answers 429 (body `error.code` `rate_limit`, or `error.type`
`rate_limit_error`) and sometimes 400 with code `rate_limit`; both are retried
with exponential backoff and jitter, honouring `Retry-After`. The
`Stripe-Should-Retry` header overrides the status code: `true` retries (e.g. a
409 lock timeout), `false` does not. A 401 means the key is wrong or was rolled
or revoked; a 403 on a restricted key names the missing permission.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import httpx

from journey.ingest import CustomerRecord, EventFamily, EventRecord
from journey.matching import MAX_PHONE
from journey.models.types import from_epoch
from journey.sources.base import Connector, Page, Raw, Records, Resource, Watermark
from journey.sources.http import (
    AuthError,
    BadRequest,
    HttpClient,
    HttpOptions,
    RateLimited,
    Retryable,
    ScopeError,
    Unreachable,
    parse_retry_after,
)

log = logging.getLogger(__name__)

API_VERSION = "2024-06-20"  # charge.invoice, invoice.subscription and billing_reason exist
PAGE_SIZE = 100  # Stripe's maximum
EVENT_RETENTION = timedelta(days=29)  # Stripe keeps 30 days; a day of margin
CHANGE_TYPES = (
    "customer.updated",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "charge.succeeded",
    "charge.captured",
    "charge.refund.updated",
    "customer.deleted",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
)
DISPUTE_WITHDRAWN = frozenset({"needs_response", "under_review", "lost"})
PLURAL = {
    "customer": "customers",
    "charge": "charges",
    "refund": "refunds",
    "invoice": "invoices",
    "subscription": "subscriptions",
    "dispute": "disputes",
}
CHANNEL_KEYS = ("channel", "utm_source", "source", "acquisition_channel")
_PERMISSION = re.compile(r"Having the '([\w.:-]+)' permission")
_KEY = re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9*]+")
MAX_NAME, MAX_EMAIL, MAX_CHANNEL = 300, 320, 100


class StripeConnector(Connector):
    kind: ClassVar[str] = "stripe"
    service: ClassVar[str] = "Stripe"
    default_base_url: ClassVar[str] = "https://api.stripe.com"
    secret_prompt: ClassVar[str] = "Stripe secret or restricted key (sk_... or rk_...)"
    resources: ClassVar[tuple[Resource, ...]] = (
        Resource("events", "/v1/events", changes=True),
        Resource("customers", "/v1/customers"),
        Resource("charges", "/v1/charges"),
        Resource("refunds", "/v1/refunds", params={"expand[]": "data.charge"}),
        Resource("invoices", "/v1/invoices"),
        Resource("subscriptions", "/v1/subscriptions", params={"status": "all"}),
        Resource("disputes", "/v1/disputes", params={"expand[]": "data.charge"}),
    )

    def __init__(
        self,
        secret: str,
        settings: Mapping[str, str] | None = None,
        *,
        base_url: str | None = None,
        http: HttpOptions | None = None,
        page_size: int = PAGE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(secret, settings, base_url=base_url, http=http)
        self.page_size = page_size
        self.clock = clock
        self.http = HttpClient(
            self.service,
            self.base_url,
            headers={"Authorization": f"Bearer {secret}", "Stripe-Version": API_VERSION},
            options=self.http_options,
            interpret=interpret,
        )

    def close(self) -> None:
        self.http.close()

    def check(self) -> None:
        self.http.get_json("/v1/customers", {"limit": 1})

    # --- reading ---

    def fetch(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        if resource.changes:
            return self._changes(resource, cursor)
        return self._list(resource, cursor)

    def _list(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        mark = Watermark.load(cursor)
        mark.begin(resource.overlap)
        restarted = False
        while True:
            params: list[tuple[str, Any]] = [("limit", self.page_size), *resource.params.items()]
            if mark.floor is not None:
                params.append(("created[gte]", mark.floor))
            if mark.position:
                params.append(("starting_after", mark.position))
            try:
                body = self.http.get_json(resource.path, params)
            except BadRequest as exc:
                # The record we stood after was deleted since (a customer, say):
                # start the pass again from its floor; everything read is an upsert.
                if exc.param == "starting_after" and mark.position and not restarted:
                    log.info("Stripe %s: resume point is gone; restarting the pass", resource.name)
                    mark.position, restarted = None, True
                    continue
                raise
            data = _list_data(body, resource.path)
            mark.saw([_int(r.get("created")) for r in data])
            if body.get("has_more") and data:
                yield Page(data, mark.step(str(data[-1]["id"])))
            else:
                yield Page(data, mark.end(int(self.clock())))
                return

    def _changes(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        mark = Watermark.load(cursor)
        now = int(self.clock())
        if not mark.in_pass and mark.checked_at is None:
            # First sync: the lists read everything; changes count from now on.
            mark.high = now
            yield Page([], mark.end(now))
            return
        if not mark.in_pass and mark.checked_at < now - int(EVENT_RETENTION.total_seconds()):
            # Events older than 30 days are gone: changes in the gap cannot be
            # read, so read the lists again in full.
            log.warning("Stripe: last change check is older than Stripe keeps events; full re-read")
            mark.high = now
            lists = tuple(r.name for r in self.resources if not r.changes)
            yield Page([], mark.end(now), reset=lists)
            return
        mark.begin(resource.overlap)
        while True:
            params: list[tuple[str, Any]] = [("limit", self.page_size)]
            params += [("types[]", t) for t in CHANGE_TYPES]
            if mark.floor is not None:
                params.append(("created[gte]", mark.floor))
            if mark.position:
                params.append(("starting_after", mark.position))
            body = self.http.get_json(resource.path, params)
            data = _list_data(body, resource.path)
            mark.saw([_int(e.get("created")) for e in data])
            current = self._current(data)
            if body.get("has_more") and data:
                yield Page(current, mark.step(str(data[-1]["id"])))
            else:
                yield Page(current, mark.end(int(self.clock())))
                return

    def _current(self, events: Sequence[Raw]) -> list[Raw]:
        """The current state of each object the events name (once each)."""
        wanted: dict[tuple[str, str], None] = {}
        for event in events:
            obj = (event.get("data") or {}).get("object") or {}
            kind, oid = obj.get("object"), obj.get("id")
            if kind in PLURAL and isinstance(oid, str):
                wanted[(kind, oid)] = None
        current: list[Raw] = []
        for kind, oid in wanted:
            params = {"expand[]": "charge"} if kind in ("refund", "dispute") else None
            try:
                obj = self.http.get_json(f"/v1/{PLURAL[kind]}/{oid}", params)
            except BadRequest as exc:
                if exc.status == 404:  # deleted since: nothing to update
                    continue
                raise
            if isinstance(obj, dict):
                current.append(obj)  # a deleted customer too: {"deleted": true}
        return current

    # --- mapping ---

    def to_records(self, resource: Resource, raw: Sequence[Raw]) -> Records:
        records = Records()
        for obj in raw:
            mapper = _MAPPERS.get(str(obj.get("object")))
            if mapper is not None:
                records.extend(mapper(obj))
        return records


# --- HTTP answers ------------------------------------------------------------------


def interpret(response: httpx.Response) -> Exception | None:
    """Stripe's rules for an answer, before the generic ones (see the module docstring)."""
    status = response.status_code
    if status < 400:
        return None
    error = _error_body(response)
    code, kind = error.get("code"), error.get("type")
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    should_retry = response.headers.get("Stripe-Should-Retry", "").strip().lower()
    rate_limited = status == 429 or kind == "rate_limit_error" or code == "rate_limit"
    if rate_limited and should_retry != "false":
        return Retryable("said too many requests", kind="rate_limit", retry_after=retry_after)
    if should_retry == "true" or (code == "lock_timeout" and should_retry != "false"):
        reason = (
            "was busy (lock timeout)"
            if code == "lock_timeout"
            else f"asked to retry (HTTP {status})"
        )
        return Retryable(reason, retry_after=retry_after)
    if status == 401:
        return AuthError(
            "Stripe refused the API key: it is wrong, or it was rolled or revoked in the "
            "Dashboard (Developers > API keys).",
            service="Stripe",
            status=401,
        )
    if status == 403:
        message = str(error.get("message") or "")
        permission = _PERMISSION.search(message)
        if permission:
            scope = permission.group(1)
            return ScopeError(
                f"The Stripe key lacks the '{scope}' permission. Give the restricted key read "
                "access to customers, charges, refunds, invoices, subscriptions, disputes and "
                "events "
                "(Developers > API keys), or use a key that has it.",
                scope=scope,
                service="Stripe",
            )
        return AuthError(
            "Stripe refused access for this key (HTTP 403); check the key in the Dashboard.",
            service="Stripe",
            status=403,
        )
    if rate_limited:  # and Stripe-Should-Retry: false
        return RateLimited(
            "Stripe said too many requests and not to retry now; the sync resumes where it "
            "stopped next time.",
            retry_after=retry_after,
            service="Stripe",
        )
    if status >= 500 and should_retry == "false":
        return Unreachable(
            f"Stripe failed the request (HTTP {status}) and said not to retry it.",
            service="Stripe",
            status=status,
        )
    if 400 <= status < 500:
        message = _KEY.sub("[key]", str(error.get("message") or f"HTTP {status}"))
        return BadRequest(
            f"Stripe rejected a request: {message}",
            status=status,
            code=code,
            param=error.get("param"),
            service="Stripe",
        )
    return None  # 5xx: the generic rules retry it


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _list_data(body: Any, path: str) -> list[Raw]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise Unreachable(
            f"Stripe answered {path} with something that is not a list; try again later.",
            service="Stripe",
        )
    return [r for r in body["data"] if isinstance(r, dict) and "id" in r]


# --- objects to records ------------------------------------------------------------


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit]


def _id_of(value: Any) -> str | None:
    """An id field that may be a plain id or an expanded object."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"]
    return None


def _channel(metadata: Any) -> str | None:
    if not isinstance(metadata, dict):
        return None
    for key in CHANNEL_KEYS:
        value = _text(metadata.get(key), MAX_CHANNEL)
        if value:
            return value.lower()
    return None


def _payer(charge: Raw) -> tuple[str | None, Records]:
    """Who paid a charge: its customer, else a guest customer made from its email."""
    customer = _id_of(charge.get("customer"))
    if customer:
        return customer, Records()
    billing = charge.get("billing_details") or {}
    email = _text(billing.get("email"), MAX_EMAIL) or _text(charge.get("receipt_email"), MAX_EMAIL)
    if not email:
        return None, Records()
    guest = f"guest:{email.lower()}"
    record = CustomerRecord(
        external_id=guest[:200],
        name=_text(billing.get("name"), MAX_NAME),
        email=email,
        phone=_text(billing.get("phone"), MAX_PHONE),
    )
    return guest[:200], Records(customers=[record])


def customer_records(obj: Raw) -> Records:
    if obj.get("deleted"):
        return Records(erased=[str(obj["id"])])
    if _int(obj.get("created")) is None:
        return Records()
    return Records(
        customers=[
            CustomerRecord(
                external_id=obj["id"],
                name=_text(obj.get("name"), MAX_NAME),
                email=_text(obj.get("email"), MAX_EMAIL),
                first_seen=from_epoch(obj["created"]),
                channel=_channel(obj.get("metadata")),
                phone=_text(obj.get("phone"), MAX_PHONE),
            )
        ]
    )


def _family(prefix: str, customer: str | None) -> Records:
    """No events: the object implies none now, so any it implied before go."""
    return Records(families=[EventFamily(prefix, (customer,) if customer else ())])


def charge_records(obj: Raw) -> Records:
    prefix = f"charge:{obj['id']}"
    paid = obj.get("status") == "succeeded" and obj.get("paid", True)
    if not paid or obj.get("captured") is False or _id_of(obj.get("invoice")):
        return _family(prefix, _id_of(obj.get("customer")))
    created = _int(obj.get("created"))
    customer, records = _payer(obj)
    if customer is None or created is None:
        return _family(prefix, customer)
    amount = _int(obj.get("amount_captured")) or _int(obj.get("amount"))
    records.events.append(EventRecord(prefix, customer, "order", from_epoch(created), None, amount))
    records.families.append(EventFamily(prefix, (customer,)))
    return records


def refund_records(obj: Raw) -> Records:
    """A succeeded refund; one pending, failed or canceled implies nothing (any more)."""
    return _money_back(obj, f"refund:{obj['id']}", obj.get("status") == "succeeded")


def dispute_records(obj: Raw) -> Records:
    """A dispute whose funds are withdrawn; won (reinstated) or an inquiry implies nothing."""
    return _money_back(obj, f"dispute:{obj['id']}", obj.get("status") in DISPUTE_WITHDRAWN)


def _money_back(obj: Raw, prefix: str, counts: bool) -> Records:
    charge = obj.get("charge")
    created = _int(obj.get("created"))
    customer, records = _payer(charge) if isinstance(charge, dict) else (None, Records())
    if not counts or customer is None or created is None:
        return _family(prefix, customer)
    records.events.append(
        EventRecord(prefix, customer, "refund", from_epoch(created), None, _int(obj.get("amount")))
    )
    records.families.append(EventFamily(prefix, (customer,)))
    return records


def invoice_records(obj: Raw) -> Records:
    prefix = f"invoice:{obj['id']}"
    customer = _id_of(obj.get("customer"))
    amount = _int(obj.get("amount_paid")) or 0
    if obj.get("status") != "paid" or amount <= 0 or not customer:
        return _family(prefix, customer)
    paid_at = _int((obj.get("status_transitions") or {}).get("paid_at")) or _int(obj.get("created"))
    if paid_at is None:
        return _family(prefix, customer)
    kind = "renewal" if obj.get("billing_reason") == "subscription_cycle" else "order"
    return Records(
        events=[EventRecord(prefix, customer, kind, from_epoch(paid_at), None, amount)],
        families=[EventFamily(prefix, (customer,))],
    )


def subscription_records(obj: Raw) -> Records:
    customer = _id_of(obj.get("customer"))
    created = _int(obj.get("created"))
    sid = obj["id"]
    if not customer or created is None:
        return _family(f"subscription:{sid}", customer)
    events = [EventRecord(f"subscription:{sid}", customer, "subscribe", from_epoch(created))]
    if obj.get("status") == "canceled":
        ended = _int(obj.get("ended_at")) or _int(obj.get("canceled_at")) or created
        events.append(
            EventRecord(
                f"subscription:{sid}:cancellation", customer, "cancellation", from_epoch(ended)
            )
        )
    return Records(events=events, families=[EventFamily(f"subscription:{sid}", (customer,))])


_MAPPERS: dict[str, Callable[[Raw], Records]] = {
    "customer": customer_records,
    "charge": charge_records,
    "refund": refund_records,
    "invoice": invoice_records,
    "subscription": subscription_records,
    "dispute": dispute_records,
}
