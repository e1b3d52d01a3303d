"""WooCommerce (REST API v3): customers and orders into journey events.

How each WooCommerce record becomes store records (docs/connectors.md, "WooCommerce: what becomes what"):

| WooCommerce record | journey record |
| --- | --- |
| customer (role `customer`) | a customer (its user id, e.g. `17`): name from first and last name, email, first seen = `date_created_gmt` |
| order: completed or processing (or refunded, once paid) | `order` event `order:<id>` at `date_created_gmt`, for `total` |
| a refund of an order (`refunds[]`) | `refund` event `order:<order id>:refund:<id>` at the refund's `date_created_gmt`, for its amount |
| order: cancelled | `cancellation` event `order:<id>:cancellation` at `date_modified_gmt`, no amount |

Orders of guests (`customer_id` 0) belong to a customer `guest:<billing email>`;
a guest order without an email is skipped. Orders in other statuses (pending,
on-hold, failed, draft, trash) make nothing. Amounts are in the currency's
smallest unit (`total` "12.50" in EUR is 1250), like Stripe's.

What takes records away (the store stays equal to the shop): every order read
says which events it implies now (`Records.families`, prefix `order:<id>`), so
an order moved back from completed or processing to pending, on-hold or failed
loses its `order` event, a refund deleted loses its `refund` event, and an
order moved to the trash loses all of them: trashed orders are read too
(`status=trash`, which `status=any` leaves out). A guest customer with no
events left is removed. Refunds were keyed `refund:<id>` before; reading their
order again replaces those ids.

Incremental reads.

- Orders are listed oldest-modified first (`orderby=modified&order=asc`),
  filtered with `modified_after` (`dates_are_gmt=true`; WordPress treats it as
  strictly after, so journey asks for one second earlier to get "at or after").
  Page numbers are not trusted across a pass: an order modified while the pass
  runs jumps to the end and would push an unread one into an already-read page.
  So after every page the next request starts again at page 1 from the highest
  `date_modified_gmt` read so far, skipping the ids already read at exactly that
  second; the page number only steps through a run of orders sharing one
  second. The pass ends on the last page (`X-WP-TotalPages`, or a short page),
  and the next sync starts 5 minutes below the watermark.
- Customers cannot be filtered or sorted by modification time (the endpoint
  sorts by id, name or registration date only, and ignores `modified_after`).
  They are read by id ascending, so new customers come at the end: a sync
  starts again at the last page it read (one request when nothing is new),
  stepping back a page when deletions moved the list. Changes to existing
  customers (a new name or email) arrive with a full re-read once a week.

Credentials: a REST API key's consumer key and secret (WooCommerce > Settings >
Advanced > REST API, Read permission), stored as one secret `ck_...:cs_...` and
sent with HTTP Basic auth, which WooCommerce accepts over HTTPS only. The store's
address is the `url` setting.

Errors: `{"code": "woocommerce_rest_...", "message": ..., "data": {"status": 401}}`.
A 401 `woocommerce_rest_authentication_error` says the key is wrong or revoked
("Consumer key is invalid.") or lacks Read permission ("The API key provided
does not have read permissions."); `woocommerce_rest_cannot_view` is what an
anonymous request gets: the key never arrived (a host stripping the
Authorization header) or its user lost access. All of them pause the source. WooCommerce documents no rate limit, but hosts and firewalls answer
429 (with `Retry-After` on some): retried like 5xx, timeouts and broken bodies.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from journey.errors import JourneyError
from journey.ingest import CustomerRecord, EventFamily, EventRecord
from journey.matching import MAX_PHONE
from journey.models.types import from_epoch
from journey.sources.base import Connector, Page, Raw, Records, Resource, Watermark
from journey.sources.http import (
    AuthError,
    BadRequest,
    HttpClient,
    HttpOptions,
    ScopeError,
    Unreachable,
)
from journey.sources.values import iso_epoch, minor_units

log = logging.getLogger(__name__)

API = "/wp-json/wc/v3"
PAGE_SIZE = 100  # WooCommerce's maximum
CUSTOMER_REFRESH = timedelta(days=7)  # full re-read of customers, for edits to old ones
MAX_NAME, MAX_EMAIL, MAX_CHANNEL = 300, 320, 100
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_CODE = re.compile(r"[a-z0-9_]{1,80}")


class WooCommerceConnector(Connector):
    kind: ClassVar[str] = "woocommerce"
    service: ClassVar[str] = "WooCommerce"
    default_base_url: ClassVar[str] = ""  # every store has its own: the `url` setting
    secret_prompt: ClassVar[str] = "WooCommerce consumer key and secret, as ck_...:cs_..."
    settings: ClassVar[tuple[str, ...]] = ("url",)
    resources: ClassVar[tuple[Resource, ...]] = (
        Resource("customers", f"{API}/customers", cursor_field="id", paging="page"),
        Resource("orders", f"{API}/orders", cursor_field="date_modified_gmt", paging="page"),
        Resource(
            "trashed_orders",
            f"{API}/orders",
            cursor_field="date_modified_gmt",
            paging="page",
            params={"status": "trash"},
        ),
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
        self.base_url = store_url(base_url or self.config.get("url") or "")
        key, sep, secret_part = secret.strip().partition(":")
        if not sep or not key or not secret_part:
            raise JourneyError(
                "A WooCommerce key is the consumer key and the consumer secret joined by a "
                "colon: ck_...:cs_... (WooCommerce > Settings > Advanced > REST API)."
            )
        self.page_size = page_size
        self.clock = clock
        self.http = HttpClient(
            self.service,
            self.base_url,
            auth=(key, secret_part),
            options=self.http_options,
            interpret=interpret,
        )

    def close(self) -> None:
        self.http.close()

    def check(self) -> None:
        self.http.get_json(f"{API}/orders", {"per_page": 1})

    # --- reading ---

    def fetch(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        if resource.name == "customers":
            return self._customers(resource, cursor)
        return self._orders(resource, cursor)

    def _get_list(self, path: str, params: list[tuple[str, Any]]) -> tuple[list[Raw], int | None]:
        """One page of a list and its X-WP-TotalPages (None when a proxy dropped the header)."""
        body, headers = self.http.get_json_and_headers(path, params)
        if not isinstance(body, list):
            raise Unreachable(
                f"WooCommerce answered {path} with something that is not a list (is the store "
                "address right, with the REST API on?); try again later.",
                service=self.service,
            )
        pages = _int_header(headers.get("X-WP-TotalPages"))
        return [r for r in body if isinstance(r, dict) and _id(r) is not None], pages

    def _is_last(self, rows: Sequence[Raw], page: int, total_pages: int | None) -> bool:
        if len(rows) < self.page_size:
            return True
        return total_pages is not None and page >= total_pages

    def _customers(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        state = json.loads(cursor) if cursor else {}
        now = int(self.clock())
        page = int(state.get("page") or 1)
        last_id: int | None = state.get("last_id")
        full_at: int | None = state.get("full_at")
        started: int | None = state.get("started")  # when the full re-read in progress began
        probing = False
        if not state.get("in_pass"):
            if full_at is None or now - full_at > CUSTOMER_REFRESH.total_seconds():
                page, started = 1, now  # a full re-read: edits to old customers come in
            else:
                started = None
                probing = page > 1 and last_id is not None
        while True:
            params = [
                ("page", page),
                ("per_page", self.page_size),
                ("orderby", "id"),
                ("order", "asc"),
                ("role", "customer"),
            ]
            rows, total_pages = self._get_list(resource.path, params)
            ids = [_id(r) or 0 for r in rows]
            if probing and last_id is not None and (not rows or min(ids) > last_id):
                # Customers were deleted and the list moved back: new ones may sit on
                # the page before. Step back and read on from there.
                page -= 1
                probing = page > 1
                continue
            probing = False
            if ids:
                last_id = max(ids) if last_id is None else max(last_id, *ids)
            if self._is_last(rows, page, total_pages):
                if started is not None:
                    full_at = started
                # Stay on this page: new customers fill it up first.
                yield Page(rows, _state(page, last_id, full_at, None, in_pass=False))
                return
            page += 1
            yield Page(rows, _state(page, last_id, full_at, started, in_pass=True))

    def _orders(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        mark = Watermark.load(cursor)
        mark.begin(resource.overlap)
        while True:
            pos = json.loads(mark.position) if mark.position else {"lo": mark.floor}
            lo: int | None = pos.get("lo")
            page = int(pos.get("page") or 1)
            seen = set(pos.get("seen") or [])  # ids already read at exactly `lo`
            params: list[tuple[str, Any]] = [
                ("page", page),
                ("per_page", self.page_size),
                ("orderby", "modified"),
                ("order", "asc"),
                ("status", resource.params.get("status", "any")),
            ]
            if lo is not None:  # "after" is strict: a second earlier means "at or after"
                params += [("modified_after", _iso(lo - 1)), ("dates_are_gmt", "true")]
            try:
                rows, total_pages = self._get_list(resource.path, params)
            except BadRequest as exc:
                if exc.code != "rest_post_invalid_page_number" or page == 1:
                    raise
                rows, total_pages = [], page  # the run of ties shrank meanwhile: done
            fresh = [r for r in rows if _id(r) not in seen]
            mark.saw([_epoch(r.get("date_modified_gmt")) for r in fresh])
            self._add_refunds(fresh)
            keys = [k for k in (_epoch(r.get("date_modified_gmt")) for r in rows) if k is not None]
            if not keys or self._is_last(rows, page, total_pages):
                yield Page(fresh, mark.end(int(self.clock())))
                return
            top = max(keys)
            at_top = {_id(r) for r in rows if _epoch(r.get("date_modified_gmt")) == top}
            if lo is not None and top <= lo:
                # A whole page within one second, all of it read now: step through the
                # run of ties by page number.
                nxt = {"lo": lo, "page": page + 1, "seen": sorted(seen | at_top)}
            else:
                nxt = {"lo": top, "page": 1, "seen": sorted(at_top)}
            yield Page(fresh, mark.step(json.dumps(nxt, separators=(",", ":"))))

    def _add_refunds(self, orders: Sequence[Raw]) -> None:
        """The refunds of orders that have any, with their dates (the order only lists
        their ids and totals): `GET /orders/<id>/refunds`."""
        for order in orders:
            if not order.get("refunds") or order.get("status") == "trash":
                continue
            try:
                body = self.http.get_json(f"{API}/orders/{order['id']}/refunds", {"per_page": 100})
            except BadRequest as exc:
                if exc.status == 404:  # deleted since
                    continue
                raise
            order["_refunds"] = (
                [r for r in body if isinstance(r, dict)] if isinstance(body, list) else []
            )

    # --- mapping ---

    def to_records(self, resource: Resource, raw: Sequence[Raw]) -> Records:
        records = Records()
        mapper = customer_records if resource.name == "customers" else order_records
        for obj in raw:
            records.extend(mapper(obj))
        return records


def store_url(url: str) -> str:
    """The store's address, checked: https (basic auth is refused over http), no path
    beyond the site's own (a WordPress in a subfolder keeps it)."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise JourneyError(
            "The WooCommerce store needs its address, e.g. --url https://shop.example "
            f"(got {url or 'nothing'!r})."
        )
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise JourneyError(
            "WooCommerce accepts keys over HTTPS only: use the store's https:// address."
        )
    if parts.path.endswith("/wp-json") or "/wp-json/" in parts.path:
        url = url[: url.index("/wp-json")]
    return url


# --- HTTP answers ------------------------------------------------------------------


def interpret(response: httpx.Response) -> Exception | None:
    """WooCommerce's rules for an error answer, before the generic ones."""
    status = response.status_code
    if status < 400 or status == 429 or status >= 500 or status == 408:
        return None  # success, or retried by the generic rules
    error = _error_body(response)
    code = str(error.get("code") or "")
    code = code if _CODE.fullmatch(code) else ""  # a short word, or not shown at all
    text = str(error.get("message") or "")
    if status in (401, 403) and "read permission" in text.lower():
        return ScopeError(
            "The WooCommerce key may not read: give it Read permission (WooCommerce > "
            "Settings > Advanced > REST API), or make a new key with it.",
            scope="read",
            service="WooCommerce",
        )
    if status in (401, 403) and code == "woocommerce_rest_cannot_view":
        # Answered as if nobody had logged in: the key did not arrive (some hosts strip
        # the Authorization header) or its user may no longer read the shop.
        return AuthError(
            f"WooCommerce did not accept the key (HTTP {status}, {code}): the key's user may "
            "not read the shop any more, or the host strips the Authorization header before "
            "WordPress sees it. Check the key under WooCommerce > Settings > Advanced > "
            "REST API.",
            service="WooCommerce",
            status=status,
        )
    if status in (401, 403):
        return AuthError(
            f"WooCommerce refused the key (HTTP {status}{', ' + code if code else ''}): it is "
            "wrong or was revoked (WooCommerce > Settings > Advanced > REST API).",
            service="WooCommerce",
            status=status,
        )
    # The answer's own words are not repeated: the address may have been typed in Slack,
    # and an error that quotes what a server said turns journey into a way to read
    # servers the person could not reach themselves. The code is a short word.
    shown = f", {code}" if code else ""
    return BadRequest(
        f"WooCommerce rejected a request (HTTP {status}{shown}). Check the store's address "
        "and that its REST API is on.",
        status=status,
        code=code or None,
        param=None,
        service="WooCommerce",
    )


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _state(
    page: int, last_id: int | None, full_at: int | None, started: int | None, *, in_pass: bool
) -> str:
    state = {
        "page": page,
        "last_id": last_id,
        "full_at": full_at,
        "started": started,
        "in_pass": in_pass,
    }
    return json.dumps(state, sort_keys=True, separators=(",", ":"))


# --- records -----------------------------------------------------------------------


def _id(obj: Raw) -> int | None:
    value = obj.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _epoch(value: Any) -> int | None:
    """A `*_gmt` date ("2026-01-01T10:00:00", no zone: UTC) as epoch seconds."""
    return iso_epoch(value, naive_is_utc=True)


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit]


def _name(first: Any, last: Any) -> str | None:
    parts = [p for p in (_text(first, MAX_NAME), _text(last, MAX_NAME)) if p]
    return " ".join(parts)[:MAX_NAME] or None


def _channel(order: Raw) -> str | None:
    """The order attribution's UTM source (WooCommerce 8.5+), when the store records it."""
    for meta in order.get("meta_data") or []:
        if isinstance(meta, dict) and meta.get("key") == "_wc_order_attribution_utm_source":
            value = _text(meta.get("value"), MAX_CHANNEL)
            if value and value != "(none)":
                return value.lower()
    return None


def customer_records(obj: Raw) -> Records:
    cid = _id(obj)
    created = _epoch(obj.get("date_created_gmt"))
    if cid is None:
        return Records()
    billing = obj.get("billing") or {}
    name = _name(obj.get("first_name"), obj.get("last_name")) or _name(
        billing.get("first_name"), billing.get("last_name")
    )
    email = _text(obj.get("email"), MAX_EMAIL) or _text(billing.get("email"), MAX_EMAIL)
    return Records(
        customers=[
            CustomerRecord(
                external_id=str(cid),
                name=name,
                email=email,
                first_seen=from_epoch(created) if created is not None else None,
                phone=_text(billing.get("phone"), MAX_PHONE),
            )
        ]
    )


def _buyer(order: Raw) -> tuple[str | None, Records]:
    """Who placed an order: its registered customer, else a guest made from its billing email."""
    customer = order.get("customer_id")
    if isinstance(customer, int) and not isinstance(customer, bool) and customer > 0:
        return str(customer), Records()
    billing = order.get("billing") or {}
    email = _text(billing.get("email"), MAX_EMAIL)
    if not email:
        return None, Records()
    guest = f"guest:{email.lower()}"[:200]
    record = CustomerRecord(
        external_id=guest,
        name=_name(billing.get("first_name"), billing.get("last_name")),
        email=email,
        phone=_text(billing.get("phone"), MAX_PHONE),
    )
    return guest, Records(customers=[record])


def order_records(obj: Raw) -> Records:
    oid = _id(obj)
    status = obj.get("status")
    if oid is None:
        return Records()
    # Refunds were keyed by their own id before; the order's family now holds them.
    legacy = [f"refund:{r['id']}" for r in obj.get("refunds") or [] if _id(r) is not None]
    customer, records = _buyer(obj)
    if customer is None:
        return Records(families=[EventFamily(f"order:{oid}")], retracted=legacy)
    if status == "trash":  # implies nothing, refunds included
        guest = [customer] if customer.startswith("guest:") else []
        return Records(
            families=[EventFamily(f"order:{oid}", (customer,))], retracted=legacy, derived=guest
        )
    currency = obj.get("currency")
    created = _epoch(obj.get("date_created_gmt"))
    paid = status in {"completed", "processing"} or (
        status == "refunded" and _epoch(obj.get("date_paid_gmt")) is not None
    )
    if paid and created is not None:
        records.events.append(
            EventRecord(
                f"order:{oid}",
                customer,
                "order",
                from_epoch(created),
                _channel(obj),
                minor_units(obj.get("total"), currency),
            )
        )
    for refund in obj.get("_refunds") or []:
        rid = _id(refund)
        at = _epoch(refund.get("date_created_gmt"))
        if rid is None or at is None:
            continue
        records.events.append(
            EventRecord(
                f"order:{oid}:refund:{rid}",
                customer,
                "refund",
                from_epoch(at),
                None,
                minor_units(refund.get("amount"), currency),
            )
        )
    if status == "cancelled":
        at = _epoch(obj.get("date_modified_gmt")) or created
        if at is not None:
            records.events.append(
                EventRecord(f"order:{oid}:cancellation", customer, "cancellation", from_epoch(at))
            )
    family = EventFamily(f"order:{oid}", (customer,))
    guest = [customer] if customer.startswith("guest:") else []
    if not records.events:
        # Nothing happened worth a customer of its own (a pending guest order); what
        # the order implied before goes, and its guest too if nothing else is left.
        return Records(families=[family], retracted=legacy, derived=guest)
    records.families.append(family)
    records.retracted.extend(legacy)
    return records
