"""A fake Stripe API over real HTTP on 127.0.0.1, for the connector and sync tests.

It answers the way Stripe documents (https://docs.stripe.com/api/pagination,
/api/errors, /rate-limits, /error-low-level):

- `GET /v1/{customers,charges,refunds,invoices,subscriptions,disputes,events}`: lists,
  newest first (`created` descending, ties by creation order), as
  `{"object": "list", "url", "has_more", "data"}`; `limit` 1-100 (default 10,
  else 400), `starting_after` / `ending_before` (object ids; an unknown id is a
  400 `resource_missing` on that param), `created[gte|gt|lte|lt]`.
  Subscriptions leave canceled ones out unless `status=all` (or
  `status=canceled`); events filter on `types[]` / `type`; refunds and
  disputes expand `data.charge`.
- `GET /v1/{resource}/{id}`: one object (404 `resource_missing` if unknown);
  `expand[]=charge` on refunds and disputes. A deleted customer answers
  `{"id", "object": "customer", "deleted": true}`, as Stripe does, and is in no list.
- Auth by `Authorization: Bearer <key>`: a missing, unknown or revoked key gets
  401 with Stripe's error body; a restricted key without a resource's permission
  gets 403 "... Having the 'rak_<x>_read' permission would allow this request to
  continue."
- Changes through the helpers (`cancel_subscription`, `pay_invoice`,
  `update_customer`, `refund`, `update_refund`, `dispute`, `close_dispute`,
  `delete_customer`...) emit the events Stripe would
  (`customer.subscription.deleted`, `invoice.paid`, `customer.updated`,
  `charge.refund.updated`, `charge.dispute.closed`, `customer.deleted`...).
  Deleting a customer cancels its subscriptions at once and keeps its charges
  and invoices, as Stripe does.

Fault injection: `fail(kind, path=..., times=...)` queues faults for the next
matching requests; `fail_each_request_once(kinds)` fails the first attempt at
every distinct URL (cycling through the kinds), so every page of a sync meets
one. Kinds: "429" (Stripe's rate-limit body, optional Retry-After), "429-type"
(the `rate_limit_error` body shape), "500", "409-retry" (lock timeout with
`Stripe-Should-Retry: true`), "slow" (answers after `slow_seconds`), "drop"
(closes the connection without answering), "truncate" (a 200 whose JSON is
cut in half). `between_pages` is called after each list page is served, to
change records while a sync pages through them.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.fakes.http_fake import FakeHandler, FakeHttpServer, Fault, FaultQueue, json_bytes

DEFAULT_KEY = "sk_test_journeyfakekey0001"
RESOURCES = ("customers", "charges", "refunds", "invoices", "subscriptions", "disputes", "events")
PREFIX = {
    "customers": "cus",
    "charges": "ch",
    "refunds": "re",
    "invoices": "in",
    "subscriptions": "sub",
    "disputes": "dp",
    "events": "evt",
}
OBJECT = {
    "customers": "customer",
    "charges": "charge",
    "refunds": "refund",
    "invoices": "invoice",
    "subscriptions": "subscription",
    "disputes": "dispute",
    "events": "event",
}
PERMISSION = {
    "customers": "rak_customer_read",
    "charges": "rak_charge_read",
    "refunds": "rak_refund_read",
    "invoices": "rak_invoice_read",
    "subscriptions": "rak_subscription_read",
    "disputes": "rak_dispute_read",
    "events": "rak_event_read",
}
RATE_LIMIT_BODY = {
    "error": {
        "code": "rate_limit",
        "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
        "message": "Request rate limit exceeded. You can learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        "type": "invalid_request_error",
    }
}
RATE_LIMIT_TYPE_BODY = {
    "error": {"message": "Too many requests hit the API too quickly.", "type": "rate_limit_error"}
}
SERVER_ERROR_BODY = {
    "error": {"message": "Something went wrong on Stripe's end.", "type": "api_error"}
}
LOCK_BODY = {
    "error": {
        "code": "lock_timeout",
        "message": "This object cannot be accessed right now because another API request or "
        "Stripe process is currently accessing it.",
        "type": "invalid_request_error",
    }
}
FAULTS = ("429", "429-type", "500", "409-retry", "slow", "drop", "truncate")


@dataclass
class Call:
    method: str
    path: str
    params: list[tuple[str, str]]
    status: int
    fault: str | None = None

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.params if k == name), None)


@dataclass
class FakeStripe(FakeHttpServer):
    keys: set[str] = field(default_factory=lambda: {DEFAULT_KEY})
    slow_seconds: float = 0.4
    clock: Callable[[], float] = time.time
    objects: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {r: {} for r in RESOURCES}
    )
    calls: list[Call] = field(default_factory=list)
    between_pages: Callable[[FakeStripe, str, Call], None] | None = None
    restricted: dict[str, set[str]] = field(default_factory=dict)  # key -> readable resources

    def __post_init__(self) -> None:
        self.revoked: set[str] = set()
        self.deleted_customers: set[str] = set()
        self._order: dict[str, int] = {}
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self.lock = threading.RLock()
        self._faults = FaultQueue(FAULTS, self.lock)

    # --- faults ---

    def fail(
        self, kind: str, *, path: str | None = None, times: int = 1, retry_after: str | None = None
    ) -> None:
        self._faults.add(kind, path, times, retry_after)

    def fail_each_request_once(self, kinds: tuple[str, ...] = FAULTS) -> None:
        self._faults.each_request_once(kinds)

    def _fault_for(self, path: str, raw_query: str) -> Fault | None:
        return self._faults.next_for(path, f"{path}?{raw_query}")

    # --- data ---

    def _new_id(self, resource: str) -> str:
        return f"{PREFIX[resource]}_{next(self._ids):08d}"

    def _put(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            obj.setdefault("id", self._new_id(resource))
            obj["object"] = OBJECT[resource]
            obj.setdefault("livemode", False)
            obj.setdefault("metadata", {})
            self.objects[resource][obj["id"]] = obj
            self._order.setdefault(obj["id"], next(self._seq))
            return obj

    def _event(self, kind: str, obj: dict[str, Any]) -> None:
        self._put(
            "events",
            {
                "type": kind,
                "created": int(self.clock()),
                "data": {"object": json.loads(json.dumps(obj))},
                "api_version": "2024-06-20",
            },
        )

    def add_customer(
        self,
        created: int,
        *,
        email: str | None = None,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        id: str | None = None,
    ) -> dict[str, Any]:
        obj = {"created": created, "email": email, "name": name, "metadata": metadata or {}}
        if id:
            obj["id"] = id
        return self._put("customers", obj)

    def update_customer(self, cid: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            obj = self.objects["customers"][cid]
            obj.update(fields)
            self._event("customer.updated", obj)
            return obj

    def add_charge(
        self,
        created: int,
        amount: int,
        *,
        customer: str | None = None,
        status: str = "succeeded",
        captured: bool = True,
        invoice: str | None = None,
        email: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        return self._put(
            "charges",
            {
                "created": created,
                "amount": amount,
                "amount_captured": amount if captured and status == "succeeded" else 0,
                "amount_refunded": 0,
                "currency": "usd",
                "customer": customer,
                "status": status,
                "paid": status == "succeeded",
                "captured": captured,
                "refunded": False,
                "invoice": invoice,
                "billing_details": {"email": email, "name": name},
                "receipt_email": email,
            },
        )

    def refund(
        self, charge_id: str, created: int, amount: int | None = None, *, status: str = "succeeded"
    ) -> dict[str, Any]:
        with self.lock:
            charge = self.objects["charges"][charge_id]
            amount = charge["amount"] if amount is None else amount
            refund = self._put(
                "refunds",
                {
                    "created": created,
                    "amount": amount,
                    "charge": charge_id,
                    "currency": "usd",
                    "status": status,
                },
            )
            if status == "succeeded":
                charge["amount_refunded"] += amount
                charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            self._event("charge.refunded", charge)
            return refund

    def update_refund(self, refund_id: str, status: str) -> None:
        """pending -> succeeded, or a refund that fails or is canceled (funds back to the merchant)."""
        with self.lock:
            refund = self.objects["refunds"][refund_id]
            was = refund["status"]
            refund["status"] = status
            charge = self.objects["charges"][refund["charge"]]
            if status == "succeeded" and was != "succeeded":
                charge["amount_refunded"] += refund["amount"]
            elif was == "succeeded" and status != "succeeded":
                charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            self._event("charge.refund.updated", refund)

    def dispute(
        self, charge_id: str, created: int, *, status: str = "needs_response"
    ) -> dict[str, Any]:
        with self.lock:
            charge = self.objects["charges"][charge_id]
            charge["disputed"] = True
            dp = self._put(
                "disputes",
                {
                    "created": created,
                    "amount": charge["amount"],
                    "charge": charge_id,
                    "currency": "usd",
                    "status": status,
                    "reason": "fraudulent",
                    "is_charge_refundable": False,
                },
            )
            self._event("charge.dispute.created", dp)
            return dp

    def close_dispute(self, dispute_id: str, status: str) -> None:
        """`won` reinstates the funds (charge.dispute.funds_reinstated), `lost` keeps them out."""
        with self.lock:
            dp = self.objects["disputes"][dispute_id]
            dp["status"] = status
            self._event("charge.dispute.closed", dp)
            if status == "won":
                self._event("charge.dispute.funds_reinstated", dp)

    def delete_customer(self, cid: str, at: int | None = None) -> None:
        """Stripe's DELETE /v1/customers/:id: cancels its subscriptions at once, keeps its
        charges and invoices; the customer answers `deleted: true` from then on."""
        with self.lock:
            when = int(self.clock()) if at is None else at
            for sub in self.objects["subscriptions"].values():
                if sub["customer"] == cid and sub["status"] != "canceled":
                    self.cancel_subscription(sub["id"], when)
            obj = self.objects["customers"].pop(cid)
            self.deleted_customers.add(cid)
            self._event("customer.deleted", obj)

    def add_subscription(
        self, created: int, customer: str, *, status: str = "active"
    ) -> dict[str, Any]:
        return self._put(
            "subscriptions",
            {
                "created": created,
                "start_date": created,
                "customer": customer,
                "status": status,
                "canceled_at": None,
                "ended_at": None,
                "cancel_at_period_end": False,
                "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            },
        )

    def cancel_subscription(self, sub_id: str, at: int) -> None:
        with self.lock:
            sub = self.objects["subscriptions"][sub_id]
            sub.update(status="canceled", canceled_at=at, ended_at=at)
            sub["cancellation_details"]["reason"] = "cancellation_requested"
            self._event("customer.subscription.deleted", sub)

    def add_invoice(
        self,
        created: int,
        customer: str,
        amount: int,
        *,
        status: str = "paid",
        billing_reason: str = "subscription_create",
        subscription: str | None = None,
        paid_at: int | None = None,
        with_charge: bool = True,
    ) -> dict[str, Any]:
        invoice = self._put(
            "invoices",
            {
                "created": created,
                "customer": customer,
                "subscription": subscription,
                "billing_reason": billing_reason,
                "status": status,
                "currency": "usd",
                "total": amount,
                "amount_due": amount,
                "amount_paid": amount if status == "paid" else 0,
                "status_transitions": {
                    "finalized_at": created,
                    "paid_at": (paid_at or created) if status == "paid" else None,
                    "voided_at": None,
                },
                "charge": None,
            },
        )
        if status == "paid" and with_charge and amount > 0:
            self._charge_invoice(invoice, paid_at or created)
        return invoice

    def _charge_invoice(self, invoice: dict[str, Any], at: int) -> None:
        charge = self.add_charge(at, invoice["total"], customer=invoice["customer"])
        charge["invoice"] = invoice["id"]
        invoice["charge"] = charge["id"]

    def pay_invoice(self, invoice_id: str, at: int) -> None:
        with self.lock:
            invoice = self.objects["invoices"][invoice_id]
            invoice.update(status="paid", amount_paid=invoice["total"])
            invoice["status_transitions"]["paid_at"] = at
            self._charge_invoice(invoice, at)
            self._event("invoice.paid", invoice)

    # --- HTTP semantics ---

    def _key(self, obj_id: str) -> tuple[int, int]:
        resource = next(r for r in RESOURCES if obj_id in self.objects[r])
        return (self.objects[resource][obj_id]["created"], self._order[obj_id])

    def list(self, resource: str, params: list[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
        one = dict(params)
        try:
            limit = int(one.get("limit", "10"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return 400, _invalid("limit", "This value must be between 1 and 100.")
        if "starting_after" in one and "ending_before" in one:
            return 400, _invalid(
                "starting_after", "Received both starting_after and ending_before parameters."
            )
        with self.lock:
            items = list(self.objects[resource].values())
            for op in ("gte", "gt", "lte", "lt"):
                if f"created[{op}]" in one:
                    bound = int(one[f"created[{op}]"])
                    items = [o for o in items if _compare(o["created"], op, bound)]
            if resource == "subscriptions":
                status = one.get("status")
                if status is None:
                    items = [o for o in items if o["status"] not in {"canceled"}]
                elif status != "all":
                    items = [o for o in items if o["status"] == status]
            if resource == "events":
                types = [v for k, v in params if k == "types[]"] or (
                    [one["type"]] if "type" in one else []
                )
                if types:
                    items = [o for o in items if o["type"] in types]
            items.sort(key=lambda o: (o["created"], self._order[o["id"]]), reverse=True)
            for param in ("starting_after", "ending_before"):
                if param in one and one[param] not in self.objects[resource]:
                    noun = OBJECT[resource]
                    return 400, _invalid(
                        param, f"No such {noun}: '{one[param]}'", code="resource_missing"
                    )
            if "starting_after" in one:
                pivot = self._key(one["starting_after"])
                items = [o for o in items if (o["created"], self._order[o["id"]]) < pivot]
                page = items[:limit]
                has_more = len(items) > limit
            elif "ending_before" in one:
                pivot = self._key(one["ending_before"])
                items = [o for o in items if (o["created"], self._order[o["id"]]) > pivot]
                page = items[-limit:]
                has_more = len(items) > limit
            else:
                page = items[:limit]
                has_more = len(items) > limit
            expand = [v for k, v in params if k == "expand[]"]
            data = [self._render(resource, o, expand, prefix="data.") for o in page]
        return 200, {"object": "list", "url": f"/v1/{resource}", "has_more": has_more, "data": data}

    def retrieve(
        self, resource: str, obj_id: str, params: list[tuple[str, str]]
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            obj = self.objects[resource].get(obj_id)
            if resource == "customers" and obj_id in self.deleted_customers:
                return 200, {"id": obj_id, "object": "customer", "deleted": True}
            if obj is None:
                return 404, _invalid(
                    "id", f"No such {OBJECT[resource]}: '{obj_id}'", code="resource_missing"
                )
            expand = [v for k, v in params if k == "expand[]"]
            return 200, self._render(resource, obj, expand, prefix="")

    def _render(
        self, resource: str, obj: dict[str, Any], expand: list[str], prefix: str
    ) -> dict[str, Any]:
        out = json.loads(json.dumps(obj))
        if resource in ("refunds", "disputes") and f"{prefix}charge" in expand:
            out["charge"] = json.loads(json.dumps(self.objects["charges"][obj["charge"]]))
        return out

    def auth(self, header: str | None, resource: str) -> tuple[int, dict[str, Any]] | None:
        if not header or not header.startswith("Bearer "):
            return 401, {
                "error": {
                    "message": "You did not provide an API key. You need to provide your API key "
                    "in the Authorization header, using Bearer auth.",
                    "type": "invalid_request_error",
                }
            }
        key = header.removeprefix("Bearer ").strip()
        if (key not in self.keys and key not in self.restricted) or key in self.revoked:
            masked = f"{key[:8]}{'*' * max(0, len(key) - 12)}{key[-4:]}"
            return 401, {
                "error": {
                    "message": f"Invalid API Key provided: {masked}",
                    "type": "invalid_request_error",
                }
            }
        allowed = self.restricted.get(key)
        if allowed is not None and resource not in allowed:
            masked = f"{key[:8]}***{key[-4:]}"
            return 403, {
                "error": {
                    "message": f"The provided key '{masked}' does not have the required "
                    "permissions for this endpoint on account 'acct_1Fake'. Having the "
                    f"'{PERMISSION[resource]}' permission would allow this request to continue.",
                    "type": "invalid_request_error",
                }
            }
        return None

    # --- what a test compares with ---

    def all(self, resource: str) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(json.dumps(o)) for o in self.objects[resource].values()]

    def list_calls(self, resource: str) -> list[Call]:
        return [
            c for c in self.calls if c.path == f"/v1/{resource}" and c.status == 200 and not c.fault
        ]


def _compare(value: int, op: str, bound: int) -> bool:
    return {
        "gte": value >= bound,
        "gt": value > bound,
        "lte": value <= bound,
        "lt": value < bound,
    }[op]


def _invalid(param: str, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "param": param, "type": "invalid_request_error"}
    if code:
        error["code"] = code
    return {"error": error}


class _Handler(FakeHandler):
    fake: FakeStripe

    def do_GET(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        params = parse_qsl(parts.query, keep_blank_values=True)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) < 2 or segments[0] != "v1" or segments[1] not in RESOURCES:
            self._send(404, _invalid("url", f"Unrecognized request URL (GET: {parts.path})."))
            return
        resource = segments[1]
        call = Call("GET", parts.path, params, 0)
        with fake.lock:
            fake.calls.append(call)
        denied = fake.auth(self.headers.get("Authorization"), resource)
        if denied is not None:
            call.status = denied[0]
            self._send(*denied)
            return
        fault = fake._fault_for(parts.path, parts.query)
        if fault is not None:
            call.fault = fault.kind
            if self._fault(fault, call):
                return
        if len(segments) == 2:
            status, body = fake.list(resource, params)
        else:
            status, body = fake.retrieve(resource, segments[2], params)
        call.status = status
        self._send(status, body, truncate=fault is not None and fault.kind == "truncate")
        if status == 200 and len(segments) == 2 and fake.between_pages is not None:
            fake.between_pages(fake, resource, call)

    def _fault(self, fault: Fault, call: Call) -> bool:
        """Serve the fault; True when the request is answered (or dropped) by it."""
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        if fault.kind == "429":
            call.status = 429
            self._send(429, RATE_LIMIT_BODY, headers=headers)
        elif fault.kind == "429-type":
            call.status = 429
            self._send(429, RATE_LIMIT_TYPE_BODY, headers=headers)
        elif fault.kind == "500":
            call.status = 500
            self._send(500, SERVER_ERROR_BODY, headers=headers)
        elif fault.kind == "409-retry":
            call.status = 409
            self._send(409, LOCK_BODY, headers={"Stripe-Should-Retry": "true", **headers})
        else:  # drop, slow, truncate
            return self.transport_fault(fault, call)
        return True

    def _send(
        self,
        status: int,
        body: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        truncate: bool = False,
    ) -> None:
        request_id = ("Request-Id", f"req_{random.randrange(16**12):012x}")
        extra = [request_id, *(headers or {}).items()]
        self.write_answer(status, json_bytes(body, truncate), "application/json", extra)


FakeStripe.handler = _Handler


# --- a store to sync ---------------------------------------------------------------------

DAY = 86400


def populate(
    fake: FakeStripe, *, seed: int = 7, customers: int = 40, start: int = 1767225600
) -> None:
    """A small, varied Stripe account: customers, one-off and guest charges (some failed,
    uncaptured or refunded, in part or in full), subscriptions with paid first and cycle
    invoices, trials, unpaid and zero invoices, and cancellations. Deterministic per seed.
    `start` is 2026-01-01."""
    rng = random.Random(seed)
    channels = ["google", "referral", "newsletter", None]
    for n in range(customers):
        created = start + n * DAY // 2 + rng.randrange(3600)
        channel = rng.choice(channels)
        cus = fake.add_customer(
            created,
            email=f"person{n}@example.com",
            name=f"Person {n}",
            metadata={"utm_source": channel} if channel else {},
        )
        for k in range(rng.randrange(0, 4)):
            at = created + (k + 1) * DAY * rng.randrange(3, 20)
            status = rng.choice(["succeeded"] * 5 + ["failed"])
            charge = fake.add_charge(
                at,
                rng.randrange(500, 20000),
                customer=cus["id"],
                status=status,
                captured=rng.random() > 0.05,
            )
            if status == "succeeded" and charge["captured"] and rng.random() < 0.2:
                part = charge["amount"] if rng.random() < 0.5 else charge["amount"] // 3
                fake.refund(charge["id"], at + DAY, part)
        if rng.random() < 0.4:
            trial = rng.random() < 0.3
            sub = fake.add_subscription(
                created + DAY, cus["id"], status="trialing" if trial else "active"
            )
            price = rng.choice([900, 2900, 4900])
            if trial:
                fake.add_invoice(created + DAY, cus["id"], 0, subscription=sub["id"])
            else:
                fake.add_invoice(created + DAY, cus["id"], price, subscription=sub["id"])
                for cycle in range(rng.randrange(0, 4)):
                    fake.add_invoice(
                        created + DAY + (cycle + 1) * 30 * DAY,
                        cus["id"],
                        price,
                        subscription=sub["id"],
                        billing_reason="subscription_cycle",
                    )
                if rng.random() < 0.2:
                    fake.add_invoice(
                        created + 200 * DAY,
                        cus["id"],
                        price,
                        subscription=sub["id"],
                        billing_reason="subscription_cycle",
                        status="open",
                    )
            if rng.random() < 0.35:
                fake.cancel_subscription(sub["id"], created + 100 * DAY)
    for g in range(5):  # guest checkouts, one without any email
        at = start + g * 7 * DAY
        fake.add_charge(
            at, 1500 + g, email=f"guest{g}@example.com" if g else None, name=f"Guest {g}"
        )
    fake.add_customer(start + 3, email=None, name=None)  # a customer with nothing filled in
    paid = [
        c
        for c in fake.all("charges")
        if c["status"] == "succeeded" and c["captured"] and not c["invoice"] and c["customer"]
    ]
    for charge, status in zip(
        paid, ("needs_response", "lost", "won", "warning_closed"), strict=False
    ):
        fake.dispute(charge["id"], charge["created"] + 3 * DAY, status=status)
    first = min(fake.all("subscriptions"), key=lambda s: s["created"])
    fake.add_invoice(  # an invoice still open: paid later, or never
        first["created"] + 250 * DAY,
        first["customer"],
        2900,
        subscription=first["id"],
        billing_reason="subscription_cycle",
        status="open",
    )
    with fake.lock:  # events from building the account are history, not news
        fake.objects["events"].clear()


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


# --- what the store should hold after a sync (the README's mapping, derived independently) --


def expected_store(fake: FakeStripe) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(customers, events) journey should hold for this account.

    customers: external id -> (name, email, first_seen epoch, channel)
    events: external id -> (customer external id, kind, occurred_at epoch, amount)
    """
    customers: dict[str, tuple] = {}
    for c in fake.all("customers"):
        channel = (c.get("metadata") or {}).get("utm_source")
        customers[c["id"]] = (c["name"], c["email"], c["created"], channel)
    charges = {c["id"]: c for c in fake.all("charges")}

    def payer(charge: dict[str, Any]) -> str | None:
        if charge["customer"]:
            return charge["customer"]
        email = charge["billing_details"]["email"] or charge["receipt_email"]
        if not email:
            return None
        customers[f"guest:{email.lower()}"] = (charge["billing_details"]["name"], email, None, None)
        return f"guest:{email.lower()}"

    events: dict[str, tuple] = {}
    for ch in charges.values():
        who = payer(ch)
        if ch["status"] == "succeeded" and ch["captured"] and not ch["invoice"] and who:
            events[f"charge:{ch['id']}"] = (who, "order", ch["created"], ch["amount"])
    for r in fake.all("refunds"):
        who = payer(charges[r["charge"]])
        if r["status"] == "succeeded" and who:
            events[f"refund:{r['id']}"] = (who, "refund", r["created"], r["amount"])
    for d in fake.all("disputes"):  # funds withdrawn, not (yet) reinstated
        who = payer(charges[d["charge"]])
        if d["status"] in {"needs_response", "under_review", "lost"} and who:
            events[f"dispute:{d['id']}"] = (who, "refund", d["created"], d["amount"])
    for inv in fake.all("invoices"):
        if inv["status"] == "paid" and inv["amount_paid"] > 0:
            kind = "renewal" if inv["billing_reason"] == "subscription_cycle" else "order"
            at = inv["status_transitions"]["paid_at"]
            events[f"invoice:{inv['id']}"] = (inv["customer"], kind, at, inv["amount_paid"])
    for sub in fake.all("subscriptions"):
        events[f"subscription:{sub['id']}"] = (sub["customer"], "subscribe", sub["created"], None)
        if sub["status"] == "canceled":
            events[f"subscription:{sub['id']}:cancellation"] = (
                sub["customer"],
                "cancellation",
                sub["ended_at"],
                None,
            )
    # A deleted customer whose charges, invoices or subscriptions remain is an empty stub.
    for who, *_ in list(events.values()):
        customers.setdefault(who, (None, None, None, None))
    return customers, events
