"""What each Shopify record becomes in the store (docs/connectors.md, "Shopify: what becomes what").

| Shopify record | journey record |
| --- | --- |
| customer | a customer (the number of its gid, e.g. `207119551`): name from first and last name, email = `defaultEmailAddress`, first seen = `createdAt` |
| order's journey (`customerJourneySummary.firstVisit`) of a customer's first order | `first_visit` event `visit:<order>` at the visit's `occurredAt` (awareness); its channel is the customer's channel |
| abandoned checkout with a customer | `abandoned_checkout` event `checkout:<id>` at `createdAt` for its total (decision); `checkout` once completed (recovered) |
| order paid (PAID, PARTIALLY_PAID, PARTIALLY_REFUNDED, REFUNDED) | `order` event `order:<id>` at `processedAt` for `totalPriceSet` (purchase; a later order is retention) |
| refund of an order | `refund` event `order:<order>:refund:<id>` at its `createdAt` for `totalRefundedSet` |
| cancelled order (`cancelledAt`) | `cancellation` event `order:<id>:cancellation` at `cancelledAt` |

A channel is the visit's UTM source, else Shopify's `source` (google, facebook,
direct, email...), lower-cased; "unknown" is no channel. An order's own channel
is its last visit's (the one that converted), else its first visit's. Test
orders make nothing. Orders without a customer (a guest whose customer record
was erased) belong to `guest:<email>`; without an email they are skipped.
Amounts are in the shop currency's smallest unit, like Stripe's.

Customers from the customers list carry name, email and first seen; customers
named by orders carry only their channel, so neither list erases what the
other wrote (`Records.customer_fields`).

What takes records away (the store stays equal to the shop): every order and
checkout read says which events it implies now (`Records.families`:
`order:<id>` with its refunds and cancellation, `visit:<id>`, `checkout:<id>`),
so a re-read one replaces what it implied before: an order voided after it was
paid loses its `order` event, a test order or one whose buyer was erased loses
everything, a checkout that lost its customer loses its event, and a
`guest:<email>` left with no event is removed (`Records.derived`). Refunds were
keyed `refund:<id>` before; reading their order again replaces those ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from journey.ingest import CustomerRecord, EventFamily, EventRecord
from journey.matching import MAX_PHONE
from journey.models.types import from_epoch
from journey.sources.base import Raw, Records
from journey.sources.values import iso_epoch, minor_units

MAX_NAME, MAX_EMAIL, MAX_CHANNEL = 300, 320, 100
PAID = frozenset({"PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED", "REFUNDED"})
CUSTOMER_FIELDS = frozenset({"name", "email", "first_seen", "phone"})
CHANNEL_ONLY = frozenset({"channel"})


def gid_id(gid: Any) -> str | None:
    """`gid://shopify/Order/123` -> "123" (Shopify's own id; a store keys rows on it)."""
    if not isinstance(gid, str) or not gid:
        return None
    tail = gid.rsplit("/", 1)[-1].split("?", 1)[0]
    return tail or None


def epoch(value: Any) -> int | None:
    """An ISO 8601 DateTime ("2026-01-01T10:00:00Z") as epoch seconds."""
    return iso_epoch(value)


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit]


def _money(bag: Any) -> int | None:
    money = bag.get("shopMoney") if isinstance(bag, Mapping) else None
    if not isinstance(money, Mapping):
        return None
    return minor_units(money.get("amount"), money.get("currencyCode"))


def channel(visit: Any) -> str | None:
    if not isinstance(visit, Mapping):
        return None
    utm = visit.get("utmParameters")
    for value in (
        (utm or {}).get("source") if isinstance(utm, Mapping) else None,
        visit.get("source"),
    ):
        text = _text(value, MAX_CHANNEL)
        if text and text.lower() not in {"unknown", "an unknown source"}:
            return text.lower()
    return None


def customer_records(obj: Raw) -> Records:
    cid = gid_id(obj.get("id"))
    if cid is None:
        return Records(customer_fields=CUSTOMER_FIELDS)
    email = obj.get("defaultEmailAddress")
    parts = [
        p
        for p in (_text(obj.get("firstName"), MAX_NAME), _text(obj.get("lastName"), MAX_NAME))
        if p
    ]
    created = epoch(obj.get("createdAt"))
    phone = obj.get("defaultPhoneNumber")
    record = CustomerRecord(
        external_id=cid,
        name=" ".join(parts)[:MAX_NAME] or None,
        email=_text(email.get("emailAddress"), MAX_EMAIL) if isinstance(email, Mapping) else None,
        first_seen=from_epoch(created) if created is not None else None,
        phone=_text(phone.get("phoneNumber"), MAX_PHONE) if isinstance(phone, Mapping) else None,
    )
    return Records(customers=[record], customer_fields=CUSTOMER_FIELDS)


def _buyer(obj: Raw) -> str | None:
    customer = obj.get("customer")
    cid = gid_id(customer.get("id")) if isinstance(customer, Mapping) else None
    if cid is not None:
        return cid
    email = _text(obj.get("email"), MAX_EMAIL)
    return f"guest:{email.lower()}"[:200] if email else None


def order_records(obj: Raw) -> Records:
    """The events an order implies now, with its families: `order:<id>` (the order, its
    cancellation and refunds) and `visit:<id>` (its first visit), so a re-read order
    replaces what it implied before (paid then voided, marked as a test, a refund gone,
    its buyer erased). The visit family is left out while the journey is not ready:
    what the order will imply is not known yet, and the order is asked for again."""
    oid = gid_id(obj.get("id"))
    records = Records(customer_fields=CHANNEL_ONLY)
    if oid is None:
        return records
    # Refunds were keyed `refund:<id>` before they joined the order's family.
    records.retracted.extend(
        f"refund:{rid}"
        for rid in (gid_id(r.get("id")) for r in obj.get("refunds") or [] if isinstance(r, Mapping))
        if rid
    )
    who = _buyer(obj)
    summary = obj.get("customerJourneySummary")
    pending = isinstance(summary, Mapping) and summary.get("ready") is False
    if who is None:
        # No customer left to look under: the order's child events are found by id (rare).
        records.families.append(EventFamily(f"order:{oid}", anywhere=True))
        records.families.append(EventFamily(f"visit:{oid}"))
        return records
    records.families.append(EventFamily(f"order:{oid}", (who,)))
    if obj.get("test") is True:  # a test order implies nothing, its visit included
        records.families.append(EventFamily(f"visit:{oid}"))
    else:
        if not pending:
            records.families.append(EventFamily(f"visit:{oid}"))
        records.extend(_order_events(obj, oid, who))
    first_order = (
        isinstance(summary, Mapping) and not pending and summary.get("customerOrderIndex") == 1
    )
    if first_order and not any(e.kind == "first_visit" for e in records.events):
        # The customer's channel is its first order's first visit's: that order no longer
        # implies one (made a test, or Shopify found no visit), so the channel goes too.
        records.customers.append(CustomerRecord(external_id=who, channel=None))
    if who.startswith("guest:"):
        records.derived.append(who)  # removed once none of its orders implies anything
    return records


def _order_events(obj: Raw, oid: str, who: str) -> Records:
    records = Records()
    journey = obj.get("customerJourneySummary")
    journey = journey if isinstance(journey, Mapping) and journey.get("ready") is not False else {}
    first, last = journey.get("firstVisit"), journey.get("lastVisit")
    first_channel = channel(first)
    if isinstance(first, Mapping) and journey.get("customerOrderIndex") in (None, 1):
        at = epoch(first.get("occurredAt"))
        if at is not None:
            records.events.append(
                EventRecord(f"visit:{oid}", who, "first_visit", from_epoch(at), first_channel)
            )
            if first_channel:
                records.customers.append(CustomerRecord(external_id=who, channel=first_channel))
    placed = epoch(obj.get("processedAt")) or epoch(obj.get("createdAt"))
    if obj.get("displayFinancialStatus") in PAID and placed is not None:
        records.events.append(
            EventRecord(
                f"order:{oid}",
                who,
                "order",
                from_epoch(placed),
                channel(last) or first_channel,
                _money(obj.get("totalPriceSet")),
            )
        )
    for refund in obj.get("refunds") or []:
        rid = gid_id(refund.get("id")) if isinstance(refund, Mapping) else None
        at = epoch(refund.get("createdAt")) if rid else None
        if rid is None or at is None:
            continue
        records.events.append(
            EventRecord(
                f"order:{oid}:refund:{rid}",
                who,
                "refund",
                from_epoch(at),
                None,
                _money(refund.get("totalRefundedSet")),
            )
        )
    cancelled = epoch(obj.get("cancelledAt"))
    if cancelled is not None:
        records.events.append(
            EventRecord(f"order:{oid}:cancellation", who, "cancellation", from_epoch(cancelled))
        )
    return records


def checkout_records(obj: Raw) -> Records:
    """An abandoned checkout's one event, with its family `checkout:<id>`: one that lost
    its customer (or its date) takes its event away."""
    xid = gid_id(obj.get("id"))
    records = Records(customer_fields=CHANNEL_ONLY)
    if xid is None:
        return records
    records.families.append(EventFamily(f"checkout:{xid}"))
    customer = obj.get("customer")
    who = gid_id(customer.get("id")) if isinstance(customer, Mapping) else None
    at = epoch(obj.get("createdAt"))
    if who is None or at is None:
        return records
    kind = "checkout" if obj.get("completedAt") else "abandoned_checkout"
    records.events.append(
        EventRecord(
            f"checkout:{xid}", who, kind, from_epoch(at), None, _money(obj.get("totalPriceSet"))
        )
    )
    return records


MAPPERS = {
    "customers": customer_records,
    "orders": order_records,
    "abandoned_checkouts": checkout_records,
    "late_attribution": order_records,  # orders asked again once their journey is ready
}


def attribution_pending(obj: Raw) -> bool:
    """An order whose journey Shopify has not attributed yet (`ready: false`)."""
    journey = obj.get("customerJourneySummary")
    return isinstance(journey, Mapping) and journey.get("ready") is False
