"""The generic layout: journey's own customers, orders and events columns.

The header is mapped onto canonical fields through aliases, the file kind is
detected from which required fields are present, and each row becomes records.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from journey.errors import JourneyError
from journey.imports.common import (
    FILE_KINDS,
    MAX_CHANNEL,
    MAX_EMAIL,
    MAX_ID,
    MAX_KIND,
    MAX_NAME,
    MAX_ORDER_ID,
    FileKind,
    RowCells,
)
from journey.imports.dates import DateReader
from journey.imports.money import Currency, MoneyReader
from journey.imports.values import parse_cents, parse_time
from journey.ingest import CustomerRecord
from journey.matching import MAX_PHONE

# Header aliases per file kind, after normalising a header name (lowercase, any
# run of other characters -> "_"): "Order ID" -> order_id, "Created at" ->
# created_at, "Total ($)" -> total. When several aliases of one field are
# present, the first in this order wins and the others are ignored.
COLUMNS: dict[FileKind, dict[str, tuple[str, ...]]] = {
    "customers": {
        "id": ("id", "customer_id", "customer", "external_id"),
        "email": ("email", "email_address", "e_mail", "customer_email"),
        "name": ("name", "full_name", "customer_name"),
        "first_name": ("first_name", "firstname", "given_name"),
        "last_name": ("last_name", "lastname", "surname", "family_name"),
        "first_seen": (
            "first_seen",
            "first_seen_at",
            "created_at",
            "created",
            "signup_date",
            "signed_up_at",
            "date",
        ),
        "channel": ("channel", "source", "utm_source", "acquisition_channel"),
        "phone": ("phone", "phone_number", "telephone", "mobile", "mobile_phone"),
    },
    "orders": {
        "order_id": ("order_id", "order", "order_number", "order_no"),
        "customer_id": ("customer_id", "customer", "customer_no"),
        "customer_email": ("customer_email", "email", "email_address"),
        "ordered_at": (
            "ordered_at",
            "order_date",
            "created_at",
            "created",
            "placed_at",
            "date",
        ),
        "amount": ("amount", "total", "total_amount", "order_total", "total_price"),
        "status": ("status", "financial_status", "order_status", "payment_status"),
        "refunded_at": ("refunded_at", "refund_date", "refunded_on"),
        "cancelled_at": ("cancelled_at", "canceled_at", "cancel_date", "cancellation_date"),
        "refund_amount": ("refund_amount", "refunded_amount", "amount_refunded", "refund"),
        "channel": ("channel", "source", "utm_source"),
        "phone": ("phone", "phone_number", "telephone", "customer_phone"),
    },
    "events": {
        "event_id": ("event_id", "event_uuid"),
        "customer_id": ("customer_id", "customer", "user_id"),
        "customer_email": ("customer_email", "email", "email_address"),
        "kind": ("kind", "stage", "event", "event_type", "event_name"),
        "occurred_at": (
            "occurred_at",
            "timestamp",
            "time",
            "event_time",
            "created_at",
            "date",
        ),
        "channel": ("channel", "source", "utm_source"),
        "amount": ("amount", "value", "revenue", "total"),
    },
}

# Each group is satisfied by any one of its fields. A header that satisfies both
# orders and events is ambiguous and needs `kind`; customers (whose one
# requirement is weak) is chosen only when neither fits.
REQUIRED: dict[FileKind, tuple[tuple[str, ...], ...]] = {
    "orders": (("order_id",), ("customer_id", "customer_email"), ("ordered_at",), ("amount",)),
    "events": (("customer_id", "customer_email"), ("kind",), ("occurred_at",)),
    "customers": (("id", "email"),),
}
EXPECTED: dict[FileKind, str] = {
    "customers": "id (or email); optional name (or first_name, last_name), email, "
    "first_seen, channel, phone",
    "orders": "order_id, customer_id (or email), ordered_at, amount; optional status, "
    "refunded_at, cancelled_at, refund_amount, channel",
    "events": "customer_id (or email), kind (or stage), occurred_at; optional event_id, "
    "channel, amount",
}

# Order statuses (normalised: lowercase, spaces and dashes -> "_") and what they mean.
STATUSES: dict[str, str] = {
    "paid": "paid",
    "complete": "paid",
    "completed": "paid",
    "fulfilled": "paid",
    "refunded": "refunded",
    "partially_refunded": "partially_refunded",
    "partial_refund": "partially_refunded",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "voided": "cancelled",
}
ORDER_KIND = "order"
REFUND_KIND = {"refunded": "refund", "partially_refunded": "refund", "cancelled": "cancellation"}

_NON_WORD = re.compile(r"[^a-z0-9]+")
_KIND_SEP = re.compile(r"[\s\-]+")


@dataclass(frozen=True)
class _Header:
    kind: FileKind
    width: int
    index: dict[str, int]  # canonical field -> column position
    label: dict[str, str]  # canonical field -> the column's name in the file
    ignored: list[str]


def _normalise(name: str) -> str:
    return _NON_WORD.sub("_", name.strip().lower()).strip("_")


def _map_header(names: Sequence[str], kind: FileKind) -> _Header:
    positions: dict[str, int] = {}
    for i, name in enumerate(names):
        positions.setdefault(_normalise(name), i)
    index: dict[str, int] = {}
    for canonical, aliases in COLUMNS[kind].items():
        for alias in aliases:
            if alias in positions:
                index[canonical] = positions[alias]
                break
    used = set(index.values())
    return _Header(
        kind=kind,
        width=len(names),
        index=index,
        label={f: names[i].strip() for f, i in index.items()},
        ignored=[n.strip() for i, n in enumerate(names) if i not in used and n.strip()],
    )


def _missing(header: _Header) -> list[str]:
    return [
        " or ".join(group)
        for group in REQUIRED[header.kind]
        if not any(f in header.index for f in group)
    ]


def _detect(file: str, names: Sequence[str], kind: FileKind | None) -> _Header:
    """Which kind of file this is, from its header (or the forced `kind`)."""
    if kind is not None:
        header = _map_header(names, kind)
        missing = _missing(header)
        if missing:
            raise JourneyError(
                f"{file}: {'an' if kind != 'customers' else 'a'} {kind} file needs the columns {EXPECTED[kind]}; "
                f"missing: {', '.join(missing)}. Found: {', '.join(names)}."
            )
        return header
    fits = [k for k in ("orders", "events") if not _missing(_map_header(names, k))]
    if len(fits) > 1:
        raise JourneyError(
            f"{file}: the header fits both an orders and an events file; "
            "say which it is with --kind orders or --kind events."
        )
    if not fits and not _missing(_map_header(names, "customers")):
        fits = ["customers"]
    if fits:
        return _map_header(names, fits[0])
    expected = "\n".join(f"  {k}: {EXPECTED[k]}" for k in FILE_KINDS)
    raise JourneyError(
        f"{file}: the header does not look like customers, orders or events "
        f"(found: {', '.join(n.strip() for n in names) or 'nothing'}). Expected columns:\n"
        f"{expected}\nCommon aliases such as created_at, date, total and email are accepted; "
        "use --kind to say which kind the file is."
    )


@dataclass(frozen=True)
class _Ref:
    """How a row names its customer: by id, or by email when it has no id."""

    value: str
    by_email: bool = False
    # The customer's phone number when the row gives one (a booking export): stored on
    # the customer the ref resolves to, so people may join on it (journey/matching.py).
    phone: str | None = None


@dataclass(frozen=True)
class _Event:
    """An event before its customer reference is resolved to an external id."""

    external_id: str
    customer: _Ref
    kind: str
    occurred_at: datetime
    channel: str | None
    amount_cents: int | None


@dataclass
class ValueReading:
    """How one file's dates, amounts and currencies are read (journey.imports.dates, .money)."""

    dates: DateReader
    money: MoneyReader
    currency: Currency


class _Cells(RowCells):
    """One row's values by canonical field, collecting every problem of the row."""

    header: _Header

    def __init__(
        self,
        header: _Header,
        values: list[str],
        reading: ValueReading | None = None,
        line: int = 0,
    ) -> None:
        super().__init__(header, values, line)
        self.reading = reading

    def time(self, name: str, *, required: bool = False) -> datetime | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            if self.reading is not None:
                return self.reading.dates.read(value)
            return parse_time(value)
        except ValueError as exc:
            self.problems.append(f"{self._label(name)}: {exc}")
            return None

    def cents(self, name: str, *, required: bool = False) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            if self.reading is not None:
                cents, code = self.reading.money.read(value, self.line)
                cents = self.reading.currency.convert(cents, code, self.line)
            else:
                cents = parse_cents(value)
        except ValueError as exc:
            self.problems.append(f"{self._label(name)}: {exc}")
            return None
        if cents < 0:
            self.problems.append(
                f"{self._label(name)}: {value!r} is negative (record refunds as positive amounts)"
            )
            return None
        return cents

    def phone(self) -> str | None:
        """The phone column as written (people may join on it: journey/matching.py); one
        too long to be a number is left out rather than stopping the row."""
        phone = self.text("phone")
        return phone if phone is not None and len(phone) <= MAX_PHONE else None

    def customer(self) -> _Ref | None:
        """The customer's id, or failing that their email (lowercased, so the same
        person written twice with different case stays one customer)."""
        before = len(self.problems)
        customer_id = self.text("customer_id", max_len=MAX_ID)
        phone = self.phone()
        if customer_id is not None:
            return _Ref(customer_id, phone=phone)
        email = self.text("customer_email", max_len=MAX_ID)
        if email is not None:
            return _Ref(email.lower(), by_email=True, phone=phone)
        if len(self.problems) == before:
            names = [
                self._label(f) for f in ("customer_id", "customer_email") if f in self.header.index
            ]
            verb = "is" if len(names) == 1 else "are"
            self.problems.append(f"{' and '.join(names)} {verb} empty: the row names no customer")
        return None


# --- one row per kind ----------------------------------------------------------

_Parsed = CustomerRecord | tuple[_Event, ...]


def _customer_row(cells: _Cells) -> tuple[str, CustomerRecord] | None:
    before = len(cells.problems)
    customer_id = cells.text("id", max_len=MAX_ID)
    email = cells.text("email", max_len=MAX_EMAIL)
    name = cells.text("name", max_len=MAX_NAME)
    if name is None and "name" not in cells.header.index:
        joined = " ".join(p for p in (cells.text("first_name"), cells.text("last_name")) if p)
        if len(joined) > MAX_NAME:
            cells.problems.append(f"the name is longer than {MAX_NAME} characters")
        name = joined or None
    first_seen = cells.time("first_seen")
    channel = cells.text("channel", max_len=MAX_CHANNEL)
    phone = cells.phone()
    key = customer_id
    if key is None and email is not None:
        if len(email) > MAX_ID:
            cells.problems.append(f"{cells._label('email')} is too long to serve as the id")
        key = email.lower()
    if key is None and len(cells.problems) == before:
        cells.problems.append("the row has neither an id nor an email")
    if cells.problems or key is None:
        return None
    return key, CustomerRecord(key, name, email, first_seen, channel, phone)


def _order_row(cells: _Cells) -> tuple[str, tuple[_Event, ...]] | None:
    order_id = cells.text("order_id", required=True, max_len=MAX_ORDER_ID)
    customer = cells.customer()
    ordered_at = cells.time("ordered_at", required=True)
    amount = cells.cents("amount", required=True)
    channel = cells.text("channel", max_len=MAX_CHANNEL)
    refunded_at = cells.time("refunded_at")
    cancelled_at = cells.time("cancelled_at")
    refund = cells.cents("refund_amount")
    raw_status = cells.text("status")
    status = None
    if raw_status is not None:
        status = STATUSES.get(_KIND_SEP.sub("_", raw_status.lower()))
        if status is None:
            cells.problems.append(
                f"{cells._label('status')} {raw_status!r} is not one of paid, refunded, "
                "partially_refunded, cancelled (leave unpaid orders out of the file)"
            )
    elif cancelled_at is not None:
        status = "cancelled"
    elif (refund is not None and refund > 0) or refunded_at is not None:
        status = "refunded" if refund is None or refund == amount else "partially_refunded"
    else:
        status = "paid"
    if cells.problems or order_id is None or customer is None:
        return None
    assert ordered_at is not None and amount is not None and status is not None

    events = [_Event(f"order:{order_id}", customer, ORDER_KIND, ordered_at, channel, amount)]
    if status == "paid":
        if refund or refunded_at or cancelled_at:
            cells.problems.append(
                f"the order is {raw_status!r} but has a refund or cancellation; "
                "set the status to refunded, partially_refunded or cancelled"
            )
            return None
        return order_id, tuple(events)
    if status == "partially_refunded" and not refund:
        cells.problems.append(
            f"a partially refunded order needs {cells._label('refund_amount')} above 0"
            if "refund_amount" in cells.header.index
            else "a partially refunded order needs a refund_amount column"
        )
    refund_cents = amount if refund is None else refund
    if refund_cents > amount:
        cells.problems.append(f"the refund ({refund_cents / 100:.2f}) is more than the order")
    if status == "cancelled":
        refund_time = cancelled_at or refunded_at or ordered_at
    else:
        refund_time = refunded_at or ordered_at
    if refund_time < ordered_at:
        cells.problems.append("the refund or cancellation is dated before the order")
    if cells.problems:
        return None
    kind = REFUND_KIND[status]
    events.append(
        _Event(f"order:{order_id}:{kind}", customer, kind, refund_time, channel, refund_cents)
    )
    return order_id, tuple(events)


def _derived_event_id(customer: _Ref, kind: str, occurred_at: datetime) -> str:
    """A stable id for an event row without one, so re-imports stay upserts."""
    ref = ("email:" if customer.by_email else "id:") + customer.value
    digest = hashlib.sha1(f"{ref}|{kind}|{occurred_at.isoformat()}".encode()).hexdigest()
    return f"row:{digest[:32]}"


def _event_row(cells: _Cells, known_kinds: frozenset[str]) -> tuple[str, tuple[_Event]] | None:
    event_id = cells.text("event_id", max_len=MAX_ID)
    customer = cells.customer()
    raw_kind = cells.text("kind", required=True)
    occurred_at = cells.time("occurred_at", required=True)
    channel = cells.text("channel", max_len=MAX_CHANNEL)
    amount = cells.cents("amount")
    kind = None
    if raw_kind is not None:
        kind = _KIND_SEP.sub("_", raw_kind.lower())
        if kind not in known_kinds or len(kind) > MAX_KIND:
            cells.problems.append(
                f"{cells._label('kind')} {raw_kind!r} is not a known event kind "
                f"(known: {', '.join(sorted(known_kinds))})"
            )
    if cells.problems or customer is None or kind is None or occurred_at is None:
        return None
    if event_id is None:
        event_id = _derived_event_id(customer, kind, occurred_at)
    return event_id, (_Event(event_id, customer, kind, occurred_at, channel, amount),)
