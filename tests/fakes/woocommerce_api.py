"""A fake WooCommerce REST API (v3) over real HTTP on 127.0.0.1, for the connector tests.

It answers the way WooCommerce's own controllers do (wc/v3 customers and
orders, WordPress's REST paging):

- `GET /wp-json/wc/v3/customers`: `page` (from 1), `per_page` (1-100, else 400
  `rest_invalid_param`), `orderby` id | include | name | registered_date (default
  name), `order` asc | desc (default asc), `role` (default `customer`, `all`).
  Like the real endpoint it has no modification-time filter: `modified_after`
  is ignored. A page past the end is an empty list.
- `GET /wp-json/wc/v3/orders`: `page`, `per_page`, `orderby` date | id | include |
  title | slug | modified (default date), `order` (default desc), `status`
  (default any; a comma list), `after` / `before` / `modified_after` /
  `modified_before` (strict, as WordPress's date_query), compared with the GMT
  dates when `dates_are_gmt=true`, else with the site's local time
  (`site_offset_hours`). A page past the last is 400 `rest_post_invalid_page_number`.
  Ties in the sort order fall back to the id.
- `GET /wp-json/wc/v3/orders/<id>` and `/orders/<id>/refunds`.
- Every list answer carries `X-WP-Total`, `X-WP-TotalPages` and a `Link` header.
- Auth: HTTP Basic with a consumer key and secret (or `consumer_key` /
  `consumer_secret` query parameters). No credential gets 401
  `woocommerce_rest_cannot_view` "Sorry, you cannot list resources."; an unknown
  or revoked key 401 `woocommerce_rest_authentication_error` "Consumer key is
  invalid."; a wrong secret "Consumer secret is invalid."; a write-only key
  "The API key provided does not have read permissions.".

Dates are WooCommerce's: `date_created` (site time) and `date_created_gmt`,
"YYYY-MM-DDTHH:MM:SS" without a zone. Money is a decimal string.

Fault injection as in the fake Stripe: `fail(kind, path=..., times=...)` and
`fail_each_request_once(kinds)`. Kinds: "429" (a host's rate limit, with
Retry-After when given), "500", "slow", "drop" (closes the connection without
answering), "truncate" (a 200 whose JSON is cut in half). `between_pages` is
called after each list page is served, to change records while a sync pages.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from tests.fakes.http_fake import FakeHandler, FakeHttpServer, Fault, FaultQueue, json_bytes

API = "/wp-json/wc/v3"
KEY = "ck_0123456789abcdef0123456789abcdef01234567"
SECRET = "cs_89abcdef0123456789abcdef0123456789abcdef"
FAULTS = ("429", "500", "slow", "drop", "truncate", "huge", "drip")
RIDE_OUT = ("429", "500", "slow", "drop", "truncate")  # the faults a sync retries through
STATUSES = (
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "checkout-draft",
    "trash",
)
ORDER_ORDERBY = ("date", "id", "include", "title", "slug", "modified")
CUSTOMER_ORDERBY = ("id", "include", "name", "registered_date")


@dataclass
class Call:
    method: str
    path: str
    params: list[tuple[str, str]]
    status: int
    fault: str | None = None

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)


def gmt(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse(value: str) -> int:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def error(code: str, message: str, status: int, **data: Any) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": message, "data": {"status": status, **data}}


@dataclass
class FakeWoo(FakeHttpServer):
    keys: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {KEY: (SECRET, "read")}
    )  # consumer key -> (secret, permissions: read | write | read_write)
    slow_seconds: float = 0.4
    huge_bytes: int = 8 * 1024 * 1024  # the "huge" fault's answer
    drip_seconds: float = 0.5  # the "drip" fault's pace: one byte each
    site_offset_hours: int = 2  # the site's timezone, for the local dates
    clock: Callable[[], float] = time.time
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[int, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    between_pages: Callable[[FakeWoo, str, Call], None] | None = None

    def __post_init__(self) -> None:
        self.revoked: set[str] = set()
        self._ids = itertools.count(1)  # WordPress ids: users and posts share nothing, fine
        self.lock = threading.RLock()
        self._faults = FaultQueue(FAULTS, self.lock, each_retry_after={"429": "0"})

    # --- faults ---

    def fail(
        self, kind: str, *, path: str | None = None, times: int = 1, retry_after: str | None = None
    ) -> None:
        self._faults.add(kind, path, times, retry_after)

    def fail_each_request_once(self, kinds: tuple[str, ...] = RIDE_OUT) -> None:
        self._faults.each_request_once(kinds)

    def _fault_for(self, path: str, raw_query: str) -> Fault | None:
        return self._faults.next_for(path, f"{path}?{raw_query}")

    # --- data ---

    def _now(self) -> int:
        return int(self.clock())

    def _dates(self, obj: dict[str, Any], name: str, epoch: int | None) -> None:
        local = None if epoch is None else gmt(epoch + self.site_offset_hours * 3600)
        obj[name] = local
        obj[f"{name}_gmt"] = None if epoch is None else gmt(epoch)

    def add_customer(
        self,
        created: int,
        *,
        email: str,
        first_name: str = "",
        last_name: str = "",
        role: str = "customer",
    ) -> dict[str, Any]:
        with self.lock:
            cid = next(self._ids)
            obj: dict[str, Any] = {
                "id": cid,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "role": role,
                "username": email.split("@")[0],
                "billing": {
                    "first_name": first_name,
                    "last_name": last_name,
                    "company": "",
                    "address_1": "",
                    "address_2": "",
                    "city": "",
                    "state": "",
                    "postcode": "",
                    "country": "",
                    "email": email,
                    "phone": "",
                },
                "shipping": {},
                "is_paying_customer": False,
                "avatar_url": "",
                "meta_data": [],
            }
            self._dates(obj, "date_created", created)
            self._dates(obj, "date_modified", created)
            self.customers[cid] = obj
            return obj

    def update_customer(self, cid: int, **fields: Any) -> dict[str, Any]:
        with self.lock:
            obj = self.customers[cid]
            obj.update(fields)
            self._dates(obj, "date_modified", self._now())
            return obj

    def delete_customer(self, cid: int) -> None:
        with self.lock:
            del self.customers[cid]

    def add_order(
        self,
        created: int,
        total: str,
        *,
        customer_id: int = 0,
        email: str | None = None,
        first_name: str = "",
        last_name: str = "",
        status: str = "completed",
        currency: str = "EUR",
        modified: int | None = None,
        utm_source: str | None = None,
    ) -> dict[str, Any]:
        assert status in STATUSES, status
        with self.lock:
            if customer_id and email is None:
                email = self.customers[customer_id]["email"]
            oid = next(self._ids)
            paid = status in {"processing", "completed", "refunded"}
            obj: dict[str, Any] = {
                "id": oid,
                "parent_id": 0,
                "number": str(oid),
                "order_key": f"wc_order_{oid:08x}",
                "created_via": "checkout",
                "status": status,
                "currency": currency,
                "total": total,
                "total_tax": "0.00",
                "customer_id": customer_id,
                "billing": {"first_name": first_name, "last_name": last_name, "email": email or ""},
                "shipping": {"first_name": first_name, "last_name": last_name},
                "payment_method": "stripe",
                "line_items": [{"id": oid * 10, "name": "Thing", "quantity": 1, "total": total}],
                "refunds": [],
                "meta_data": (
                    [{"id": oid, "key": "_wc_order_attribution_utm_source", "value": utm_source}]
                    if utm_source
                    else []
                ),
            }
            self._dates(obj, "date_created", created)
            self._dates(obj, "date_modified", modified or created)
            self._dates(obj, "date_paid", created if paid else None)
            self._dates(obj, "date_completed", created if status == "completed" else None)
            self.orders[oid] = obj
            return obj

    def set_status(self, oid: int, status: str, at: int | None = None) -> dict[str, Any]:
        with self.lock:
            obj = self.orders[oid]
            obj["status"] = status
            self._dates(obj, "date_modified", at or self._now())
            if status in {"processing", "completed"} and obj["date_paid_gmt"] is None:
                self._dates(obj, "date_paid", at or self._now())
            return obj

    def touch(self, oid: int, at: int | None = None) -> None:
        """An edit that changes nothing journey reads (a note, an address)."""
        with self.lock:
            self._dates(self.orders[oid], "date_modified", at or self._now())

    def refund(self, oid: int, amount: str, at: int, *, reason: str = "") -> dict[str, Any]:
        with self.lock:
            order = self.orders[oid]
            rid = next(self._ids)
            refund = {"id": rid, "order_id": oid, "amount": amount, "reason": reason}
            self._dates(refund, "date_created", at)
            self.refunds[rid] = refund
            order["refunds"].append({"id": rid, "reason": reason, "total": f"-{amount}"})
            refunded = sum(float(self.refunds[r["id"]]["amount"]) for r in order["refunds"])
            if refunded >= float(order["total"]):
                order["status"] = "refunded"
            self._dates(order, "date_modified", at)
            return refund

    def trash_order(self, oid: int, at: int | None = None) -> None:
        """DELETE /orders/<id> without `force`: the order moves to the trash (modified now)."""
        self.set_status(oid, "trash", at)

    def delete_refund(self, rid: int, at: int | None = None) -> None:
        """DELETE /orders/<id>/refunds/<rid>: the refund is gone and the order is saved again
        (modified now); a fully refunded order goes back to completed."""
        with self.lock:
            refund = self.refunds.pop(rid)
            order = self.orders[refund["order_id"]]
            order["refunds"] = [r for r in order["refunds"] if r["id"] != rid]
            if order["status"] == "refunded":
                order["status"] = "completed"
            self._dates(order, "date_modified", at or self._now())

    # --- HTTP semantics ---

    def auth(self, header: str | None, params: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
        key = secret = None
        if header and header.startswith("Basic "):
            try:
                key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                key = secret = None
        elif "consumer_key" in params:
            key, secret = params.get("consumer_key"), params.get("consumer_secret", "")
        if key is None:
            return error("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.", 401)
        known = self.keys.get(key)
        if known is None or key in self.revoked:
            return error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        if secret != known[0]:
            return error(
                "woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401
            )
        if known[1] not in {"read", "read_write"}:
            return error(
                "woocommerce_rest_authentication_error",
                "The API key provided does not have read permissions.",
                401,
            )
        return None

    def _paging(
        self, one: dict[str, str], orderby_allowed: tuple[str, ...], default_orderby: str
    ) -> tuple[int, int, str, str] | tuple[int, dict[str, Any]]:
        try:
            page = int(one.get("page", "1"))
            per_page = int(one.get("per_page", "10"))
        except ValueError:
            return error("rest_invalid_param", "Invalid parameter(s): page", 400)
        if page < 1:
            return error(
                "rest_invalid_param",
                "Invalid parameter(s): page",
                400,
                params={"page": "page must be greater than or equal to 1"},
            )
        if not 1 <= per_page <= 100:
            return error(
                "rest_invalid_param",
                "Invalid parameter(s): per_page",
                400,
                params={"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"},
            )
        orderby = one.get("orderby", default_orderby)
        if orderby not in orderby_allowed:
            return error(
                "rest_invalid_param",
                "Invalid parameter(s): orderby",
                400,
                params={"orderby": f"orderby is not one of {', '.join(orderby_allowed)}."},
            )
        order = one.get("order", "asc" if orderby_allowed is CUSTOMER_ORDERBY else "desc")
        if order not in {"asc", "desc"}:
            return error("rest_invalid_param", "Invalid parameter(s): order", 400)
        return page, per_page, orderby, order

    def list_customers(self, params: list[tuple[str, str]]) -> tuple[int, Any, dict[str, str]]:
        one = dict(params)
        paging = self._paging(one, CUSTOMER_ORDERBY, "name")
        if len(paging) == 2:
            return *paging, {}  # type: ignore[return-value]
        page, per_page, orderby, order = paging  # type: ignore[misc]
        with self.lock:
            items = list(self.customers.values())
            role = one.get("role", "customer")
            if role != "all":
                items = [c for c in items if c["role"] == role]
            key = {
                "id": lambda c: (c["id"],),
                "include": lambda c: (c["id"],),
                "name": lambda c: (f"{c['first_name']} {c['last_name']}", c["id"]),
                "registered_date": lambda c: (c["date_created_gmt"], c["id"]),
            }[orderby]
            items.sort(key=key, reverse=order == "desc")
            return self._page(API + "/customers", params, items, page, per_page, empty_ok=True)

    def list_orders(self, params: list[tuple[str, str]]) -> tuple[int, Any, dict[str, str]]:
        one = dict(params)
        paging = self._paging(one, ORDER_ORDERBY, "date")
        if len(paging) == 2:
            return *paging, {}  # type: ignore[return-value]
        page, per_page, orderby, order = paging  # type: ignore[misc]
        use_gmt = one.get("dates_are_gmt", "false").lower() in {"1", "true"}
        with self.lock:
            items = list(self.orders.values())
            status = one.get("status", "any")
            wanted = set(status.split(","))
            if "any" not in wanted:
                items = [o for o in items if o["status"] in wanted]
            else:
                items = [o for o in items if o["status"] not in {"trash", "checkout-draft"}]
            for param, column, op in (
                ("after", "date_created", "gt"),
                ("before", "date_created", "lt"),
                ("modified_after", "date_modified", "gt"),
                ("modified_before", "date_modified", "lt"),
            ):
                if param not in one:
                    continue
                try:
                    bound = parse(one[param])
                except ValueError:
                    return (
                        *error(
                            "rest_invalid_param",
                            f"Invalid parameter(s): {param}",
                            400,
                            params={param: "Invalid date."},
                        ),
                        {},
                    )
                name = f"{column}_gmt" if use_gmt else column
                items = [
                    o
                    for o in items
                    if (parse(o[name]) > bound if op == "gt" else parse(o[name]) < bound)
                ]
            key = {
                "date": lambda o: (o["date_created_gmt"], o["id"]),
                "id": lambda o: (o["id"],),
                "include": lambda o: (o["id"],),
                "title": lambda o: (o["id"],),
                "slug": lambda o: (o["id"],),
                "modified": lambda o: (o["date_modified_gmt"], o["id"]),
            }[orderby]
            items.sort(key=key, reverse=order == "desc")
            return self._page(API + "/orders", params, items, page, per_page, empty_ok=False)

    def _page(
        self,
        path: str,
        params: list[tuple[str, str]],
        items: list[dict[str, Any]],
        page: int,
        per_page: int,
        *,
        empty_ok: bool,
    ) -> tuple[int, Any, dict[str, str]]:
        total = len(items)
        pages = -(-total // per_page)
        if not empty_ok and page > max(1, pages):
            return (
                *error(
                    "rest_post_invalid_page_number",
                    "The page number requested is larger than the number of pages available.",
                    400,
                ),
                {},
            )
        chunk = items[(page - 1) * per_page : page * per_page]
        base = [(k, v) for k, v in params if k not in {"page", "consumer_key", "consumer_secret"}]
        links = []
        if page > 1:
            links.append(f'<{path}?{urlencode([*base, ("page", page - 1)])}>; rel="prev"')
        if page < pages:
            links.append(f'<{path}?{urlencode([*base, ("page", page + 1)])}>; rel="next"')
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        if links:
            headers["Link"] = ", ".join(links)
        return 200, [json.loads(json.dumps(o)) for o in chunk], headers

    def get(self, segments: list[str], params: list[tuple[str, str]]) -> tuple[int, Any, dict]:
        resource = segments[0]
        if resource == "customers" and len(segments) == 1:
            return self.list_customers(params)
        if resource == "orders" and len(segments) == 1:
            return self.list_orders(params)
        if resource == "orders" and len(segments) in (2, 3):
            with self.lock:
                order = self.orders.get(int(segments[1])) if segments[1].isdigit() else None
                if order is None:
                    return *error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404), {}
                if len(segments) == 2:
                    return 200, json.loads(json.dumps(order)), {}
                if segments[2] == "refunds":
                    refunds = [self.refunds[r["id"]] for r in order["refunds"]]
                    refunds.sort(key=lambda r: r["id"], reverse=True)
                    return self._page(
                        f"{API}/orders/{order['id']}/refunds",
                        params,
                        refunds,
                        1,
                        100,
                        empty_ok=True,
                    )
        return (
            *error("rest_no_route", "No route was found matching the URL and request method.", 404),
            {},
        )

    # --- what a test compares with ---

    def list_calls(self, resource: str) -> list[Call]:
        return [c for c in self.calls if c.path == f"{API}/{resource}" and c.status == 200]


class _Handler(FakeHandler):
    fake: FakeWoo

    def do_GET(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        params = parse_qsl(parts.query, keep_blank_values=True)
        if not parts.path.startswith(API + "/"):
            self._send(*error("rest_no_route", "No route was found.", 404))
            return
        segments = [s for s in parts.path.removeprefix(API).split("/") if s]
        call = Call("GET", parts.path, params, 0)
        with fake.lock:
            fake.calls.append(call)
        denied = fake.auth(self.headers.get("Authorization"), dict(params))
        if denied is not None:
            call.status = denied[0]
            self._send(*denied)
            return
        fault = fake._fault_for(parts.path, parts.query)
        if fault is not None:
            call.fault = fault.kind
            if self._fault(fault, call):
                return
        status, body, headers = fake.get(segments, params)
        call.status = status
        truncate = fault is not None and fault.kind == "truncate"
        self._send(status, body, headers=headers, truncate=truncate)
        if status == 200 and len(segments) == 1 and fake.between_pages is not None:
            fake.between_pages(fake, segments[0], call)

    def _fault(self, fault: Fault, call: Call) -> bool:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        if fault.kind == "429":
            call.status = 429
            self._send(
                429,
                {
                    "code": "too_many_requests",
                    "message": "Too Many Requests",
                    "data": {"status": 429},
                },
                headers=headers,
            )
        elif fault.kind == "500":
            call.status = 500
            self._send(
                500,
                {
                    "code": "internal_server_error",
                    "message": "There has been a critical error on this website.",
                    "data": {"status": 500},
                },
                headers=headers,
            )
        else:  # drop, slow, truncate
            return self.transport_fault(fault, call)
        return True

    def _send(
        self,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        extra = [("X-Robots-Tag", "noindex"), *(headers or {}).items()]
        ctype = "application/json; charset=UTF-8"
        self.write_answer(status, json_bytes(body, truncate), ctype, extra)


FakeWoo.handler = _Handler


# --- a store to sync ---------------------------------------------------------------------

DAY = 86400


def populate(fake: FakeWoo, *, seed: int = 7, customers: int = 30, start: int = 1767225600) -> None:
    """A small, varied store: registered customers with orders in every status, repeat
    buyers, partial and full refunds, cancellations, guest orders (one without an
    email), an administrator (not a customer) and runs of orders modified in the same
    second. Deterministic per seed. `start` is 2026-01-01."""
    rng = random.Random(seed)
    statuses = (
        ["completed"] * 6 + ["processing"] * 2 + ["cancelled", "pending", "failed", "on-hold"]
    )
    for n in range(customers):
        created = start + n * DAY // 2 + rng.randrange(3600)
        cus = fake.add_customer(
            created,
            email=f"person{n}@example.com",
            first_name=f"Person{n}",
            last_name="Example" if n % 3 else "",
        )
        for k in range(rng.randrange(0, 5)):
            at = created + (k + 1) * DAY * rng.randrange(2, 30)
            status = rng.choice(statuses)
            order = fake.add_order(
                at,
                f"{rng.randrange(5, 300)}.{rng.randrange(100):02d}",
                customer_id=cus["id"],
                status=status,
                modified=at + rng.randrange(0, 3) * DAY,
                utm_source=rng.choice([None, "google", "Newsletter"]),
            )
            if status == "completed" and rng.random() < 0.25:
                part = order["total"] if rng.random() < 0.4 else "5.00"
                fake.refund(order["id"], part, at + 2 * DAY)
    fake.add_customer(start + 5, email="admin@example.com", first_name="Shop", role="administrator")
    for g in range(6):  # guest checkouts; the last has no email
        at = start + g * 5 * DAY
        fake.add_order(
            at,
            f"{20 + g}.50",
            email=f"Guest{g}@Example.com" if g < 5 else None,
            first_name=f"Guest{g}",
            status="completed" if g % 2 == 0 else "processing",
        )
    fake.add_order(  # a repeat guest
        start + 9 * DAY, "15.00", email="Guest1@Example.com", first_name="Guest1"
    )
    tie = start + 120 * DAY  # a bulk edit: many orders modified in one second
    for oid in sorted(fake.orders)[:15]:
        fake.touch(oid, tie)
    fake.add_order(start + 3 * DAY, "9000", currency="JPY", email="yen@example.com")


@pytest.fixture
def fake_woo() -> Iterator[FakeWoo]:
    with FakeWoo() as fake:
        yield fake


# --- what the store should hold (the README's mapping, derived independently) ---------------


def cents(amount: str, currency: str) -> int:
    return round(float(amount) * (1 if currency == "JPY" else 100))


def expected_store(fake: FakeWoo) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(customers, events) journey should hold for this store.

    customers: external id -> (name, email, first_seen epoch, channel)
    events: external id -> (customer external id, kind, occurred_at epoch, amount)
    """
    customers: dict[str, tuple] = {}
    for c in fake.customers.values():
        if c["role"] != "customer":
            continue
        name = " ".join(p for p in (c["first_name"], c["last_name"]) if p) or None
        customers[str(c["id"])] = (name, c["email"], parse(c["date_created_gmt"]), None)
    events: dict[str, tuple] = {}
    for o in fake.orders.values():
        status, cur = o["status"], o["currency"]
        mine: dict[str, tuple] = {}
        if o["customer_id"]:
            who = str(o["customer_id"])
        elif o["billing"]["email"]:
            who = f"guest:{o['billing']['email'].lower()}"
        else:
            continue
        if status == "trash":
            continue  # a trashed order implies nothing
        paid = status in {"completed", "processing"} or (
            status == "refunded" and o["date_paid_gmt"]
        )
        if paid:
            mine[f"order:{o['id']}"] = (
                who,
                "order",
                parse(o["date_created_gmt"]),
                cents(o["total"], cur),
            )
        for r in o["refunds"]:
            refund = fake.refunds[r["id"]]
            mine[f"order:{o['id']}:refund:{r['id']}"] = (
                who,
                "refund",
                parse(refund["date_created_gmt"]),
                cents(refund["amount"], cur),
            )
        if status == "cancelled":
            mine[f"order:{o['id']}:cancellation"] = (
                who,
                "cancellation",
                parse(o["date_modified_gmt"]),
                None,
            )
        if mine and who.startswith("guest:"):
            b = o["billing"]
            name = " ".join(p for p in (b["first_name"], b["last_name"]) if p) or None
            customers[who] = (name, b["email"], None, None)
        events.update(mine)
    return customers, events


def channels(fake: FakeWoo) -> dict[str, str | None]:
    """order event id -> its channel (the order attribution's UTM source, lowercased)."""
    out: dict[str, str | None] = {}
    for o in fake.orders.values():
        utm = next(
            (m["value"] for m in o["meta_data"] if m["key"] == "_wc_order_attribution_utm_source"),
            None,
        )
        out[f"order:{o['id']}"] = utm.lower() if utm else None
    return out
