"""Reading a vendor's export with its declared format (journey.imports.format).

Recognition is by header signature only: every column of a format's signature
must be in the header, and the format with the longest matching signature wins,
so `journey import FILE` needs no flag. Each row becomes records:

- orders: one `order` event per purchase (a Shopify order's line items grouped
  into it), a `refund` event for refunds (a partial refund for its amount), a
  `cancellation` for a cancelled purchase (for what was refunded: a cancelled
  order whose money was kept still earned it); pending, failed, voided, on-hold,
  authorised-only and test rows are counted by status and written as nothing.
- contacts: the customer (id, email, name, first seen, channel) and one event
  per stage date (HubSpot's `Became a ... Date`, Mailchimp's subscription).

Customers are named by id, else by email, else (for a file that has neither
column, as WooCommerce's report) by name; a guest with none of them is a
customer of that one order, so it is counted as a buyer but never as a repeat.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from journey.errors import JourneyError
from journey.imports.columns import carries_values, unplaced_message
from journey.imports.common import (
    MAX_CHANNEL,
    MAX_EMAIL,
    MAX_ID,
    MAX_NAME,
    MAX_ORDER_ID,
    NeedsOption,
    RowCells,
)
from journey.imports.dates import DateReader, zone
from journey.imports.format import Outcome, VendorFormat, status_key
from journey.imports.generic import _Event, _Ref
from journey.imports.money import Currency, MoneyReader
from journey.ingest import CustomerRecord
from journey.matching import MAX_PHONE
from journey.stages import DEFAULT_STAGES, PURCHASE_KINDS, REFUND_KINDS

ORDER = "order"
REFUND = "refund"
CANCELLATION = "cancellation"
_SPACES = re.compile(r"\s+")


def detect(names: list[str], formats: tuple[VendorFormat, ...]) -> VendorFormat | None:
    """The vendor format whose whole signature is in the header (the longest wins)."""
    header = {n.strip() for n in names}
    fits = [f for f in formats if all(c in header for c in f.signature)]
    if not fits:
        return None
    return max(fits, key=lambda f: len(f.signature))


@dataclass
class VendorHeader:
    fmt: VendorFormat
    width: int
    index: dict[str, int]  # journey field -> position
    label: dict[str, str]  # journey field -> the vendor's column name
    stage_columns: list[tuple[int, str, str]]  # (position, column, event kind)
    stage_labels: dict[str, str]  # stage label (lowercase) -> event kind
    known: list[tuple[str, str]]  # (column, why it is not imported)
    ignored: list[str]
    positions: dict[str, int] = field(default_factory=dict)  # column -> position


def _stage_kind(target: str) -> str | None:
    """A --map target naming a journey stage (or a known stage kind)."""
    value = target.strip().lower()
    return value if value in DEFAULT_STAGES or value.startswith("hubspot_stage:") else None


def vendor_header(
    fmt: VendorFormat, names: list[str], mapping: dict[str, str], file: str
) -> VendorHeader:
    """Place every column of the header, or stop naming the ones that cannot be placed."""
    stripped = [n.strip() for n in names]
    present = set(stripped)
    index: dict[str, int] = {}
    label: dict[str, str] = {}
    for name in fmt.fields:
        column = fmt.column(present, name)
        if column is not None:
            index[name], label[name] = stripped.index(column), column
    labels = dict(fmt.stage_labels)
    for left, target in mapping.items():
        if left not in present:
            kind = _stage_kind(target)
            if kind is None:
                raise JourneyError(
                    f"--map {left}={target}: {left!r} is not a column of {file}, and "
                    f"{target!r} is not a journey stage ({', '.join(DEFAULT_STAGES)})."
                )
            labels[left.strip().lower()] = kind
    used = set(index.values())
    stage_columns: list[tuple[int, str, str]] = []
    known: list[tuple[str, str]] = []
    ignored: list[str] = []
    unplaced: list[str] = []
    for position, column in enumerate(stripped):
        if position in used or not column:
            continue
        if column in mapping:
            target = mapping[column]
            if not target:
                known.append((column, "left out with --map"))
                continue
            kind = _stage_kind(target)
            if kind is not None and fmt.records == "contacts":
                stage_columns.append((position, column, kind))
                continue
            if target in fmt.fields:
                index[target], label[target] = position, column
                continue
            raise JourneyError(
                f"--map {column}={target}: {target!r} is not a field of a {fmt.title} "
                f"(fields: {', '.join(fmt.fields)}; or a journey stage for a stage date column)."
            )
        if column in fmt.stage_dates:
            stage_columns.append((position, column, fmt.stage_dates[column]))
            continue
        if fmt.stage_date_pattern is not None:
            match = fmt.stage_date_pattern.fullmatch(column)
            if match:
                stage = match[1].strip().lower()
                if stage in labels:
                    stage_columns.append((position, column, labels[stage]))
                    continue
                reason = fmt.known_reason(column)
                if reason is not None:
                    known.append((column, reason))
                    continue
                unplaced.append(column)
                continue
        reason = fmt.known_reason(column)
        if reason is not None:
            known.append((column, reason))
        elif carries_values(column):
            unplaced.append(column)
        else:
            ignored.append(column)
    if unplaced:
        fields = ", ".join(fmt.fields)
        choices = list(fmt.fields)
        if fmt.records == "contacts":
            fields += "; or a journey stage: " + ", ".join(DEFAULT_STAGES)
            choices += [s for s in DEFAULT_STAGES if s not in choices]
        raise NeedsOption(
            unplaced_message(file, fmt.title, unplaced, fields),
            "map",
            columns=unplaced,
            fields=choices,
        )
    positions = {c: i for i, c in reversed(list(enumerate(stripped)))}
    return VendorHeader(
        fmt, len(names), index, label, stage_columns, labels, known, ignored, positions
    )


@dataclass
class Tally:
    """What a file holds, counted as it is read: the dry run's summary and the
    import's, for a vendor's export and journey's own layout alike. Buyers are
    counted by customer key (memory: one entry per buyer); purchases and refunds
    are the kinds the store counts as such (journey.stages), so the dry run's
    buyers and revenue are what the reports will count from the file."""

    statuses: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    purchases: Counter[str] = field(default_factory=Counter)  # customer key -> purchases
    customers: set[str] = field(default_factory=set)
    revenue_cents: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    lines: int = 0  # line items grouped into orders

    def saw(self, when: datetime) -> None:
        if self.first_at is None or when < self.first_at:
            self.first_at = when
        if self.last_at is None or when > self.last_at:
            self.last_at = when

    def customer(self, record: CustomerRecord) -> None:
        """A customers file's row: one customer, seen first at its first_seen."""
        self.customers.add(record.external_id)
        if record.first_seen is not None:
            self.saw(record.first_seen)

    def events(self, customer: str, events: tuple[_Event, ...]) -> None:
        self.customers.add(customer)
        for event in events:
            self.kinds[event.kind] += 1
            self.saw(event.occurred_at)
            if event.kind in PURCHASE_KINDS:
                self.purchases[customer] += 1
                self.revenue_cents += event.amount_cents or 0
            elif event.kind in REFUND_KINDS:
                self.revenue_cents -= abs(event.amount_cents or 0)

    @property
    def sales(self) -> bool:
        """Whether the file holds purchases or refunds (so a revenue figure means something)."""
        return any(self.kinds[k] for k in PURCHASE_KINDS | REFUND_KINDS)

    @property
    def buyers(self) -> int:
        return len(self.purchases)

    @property
    def repeat_buyers(self) -> int:
        return sum(1 for n in self.purchases.values() if n > 1)


Parsed = tuple[CustomerRecord | None, tuple[_Event, ...]]


class VendorRow(RowCells):
    """One row's values by journey field, collecting every problem of the row."""

    header: VendorHeader

    def __init__(
        self,
        header: VendorHeader,
        values: list[str],
        line: int,
        dates: DateReader,
        money: MoneyReader,
        currency: Currency,
    ) -> None:
        super().__init__(header, values, line)
        self.dates = dates
        self.money = money
        self.currency = currency

    def first_time(self, name: str) -> datetime | None:
        """The first filled one of the field's candidate columns (Mailchimp: a contact
        with no confirmation time has its opt-in time)."""
        for column in self.header.fmt.fields.get(name, ()):
            position = self.header.positions.get(column)
            if position is None or position >= len(self.values):
                continue
            value = self.values[position].strip()
            if value:
                try:
                    fixed = self.header.fmt.timezone
                    return self.dates.read(value, None, zone(fixed) if fixed else None)
                except ValueError as exc:
                    self.problems.append(f"{column}: {exc}")
                    return None
        return None

    def time(self, name: str, *, required: bool = False) -> datetime | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        tz: tzinfo | None = None
        fixed = self.header.fmt.timezone
        try:
            if fixed is not None:
                tz = zone(fixed)
            elif name == "ordered_at":
                zone_name = self.text("timezone")
                tz = zone(zone_name) if zone_name else None
            time_of_day = self.text("time") if name == "ordered_at" else None
            return self.dates.read(value, time_of_day, tz)
        except ValueError as exc:
            self.problems.append(f"{self._label(name)}: {exc}")
            return None

    def cents(self, name: str, *, required: bool = False) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            cents, code = self.money.read(value, self.line)
            return self.currency.convert(cents, code or self._currency_code(), self.line)
        except ValueError as exc:
            self.problems.append(f"{self._label(name)}: {exc}")
            return None

    def _currency_code(self) -> str | None:
        code = self.text("currency")
        return code.upper() if code else None


def _name(row: VendorRow) -> str | None:
    name = row.text("name", max_len=MAX_NAME) or row.text("customer_name", max_len=MAX_NAME)
    if name is None:
        parts = [row.text("first_name"), row.text("last_name")]
        joined = " ".join(p for p in parts if p)
        name = joined[:MAX_NAME] or None
    return name


def _phone(row: VendorRow) -> str | None:
    """The phone column as written (people may join on it: journey/matching.py); one too
    long to be a number is left out rather than stopping the row."""
    phone = row.text("phone")
    return phone if phone is not None and len(phone) <= MAX_PHONE else None


def _customer(row: VendorRow, order_id: str) -> tuple[_Ref, CustomerRecord | None]:
    """How an order row names its customer (see the module docstring)."""
    customer_id = row.text("customer_id", max_len=MAX_ID)
    phone = _phone(row)
    if customer_id is not None:
        return _Ref(customer_id, phone=phone), None
    email = row.text("customer_email", max_len=MAX_ID)
    if email is not None:
        return _Ref(email.lower(), by_email=True, phone=phone), None
    fields = row.header.fmt.fields
    name = _name(row)
    if name is not None and "customer_id" not in fields and "customer_email" not in fields:
        key = "name:" + _SPACES.sub(" ", name.lower())[: MAX_ID - 5]
        return _Ref(key), CustomerRecord(key, name=name, phone=phone)
    key = f"guest:{order_id}"[:MAX_ID]
    return _Ref(key), CustomerRecord(key, name=name, phone=phone)


def _outcome(row: VendorRow) -> tuple[Outcome | None, str]:
    """The row's meaning and the status label it is counted under."""
    fmt = row.header.fmt
    for column, values in fmt.tests.items():
        value = row.text(column)
        if value is not None and value.lower() in values:
            return None, "test"
    kind = row.text("kind")
    if kind is not None and status_key(kind) == "refund":
        return Outcome.REFUND_ROW, "refund"
    raw = row.text("status")
    if raw is None:
        if fmt.status_when_empty is None and "status" in row.header.index:
            row.problems.append(f"{row.header.label['status']} is empty")
            return None, ""
        outcome, label = fmt.status_when_empty or Outcome.PAID, "paid"
    else:
        found = fmt.statuses.get(status_key(raw))
        if found is None:
            known = ", ".join(sorted({k.replace("_", " ") for k in fmt.statuses}))
            row.problems.append(
                f"{row.header.label['status']} {raw!r} is not a status of a {fmt.title} "
                f"(known: {known}); tell us, or leave such rows out"
            )
            return None, ""
        # WooCommerce's slug (wc-completed) is counted under its label (completed): the
        # dry run listed "3 completed ... 1 wc completed" as if they were two statuses.
        outcome, label = found, status_key(raw).replace("_", " ").removeprefix("wc ")
    captured = row.text("captured")
    if (
        outcome is not Outcome.NOT_PURCHASE
        and captured is not None
        and captured.lower() in fmt.not_captured
    ):
        return Outcome.NOT_PURCHASE, "authorised, not captured"
    return outcome, label


def order_row(row: VendorRow, tally: Tally | None) -> tuple[str, Parsed] | None:
    """An orders file's row (the first line of an order with line items)."""
    order_id = row.text("order_id", required=True, max_len=MAX_ORDER_ID)
    if order_id is None:
        return None
    outcome, status = _outcome(row)
    if row.problems:
        return None
    if outcome is None or outcome is Outcome.NOT_PURCHASE:
        if tally is not None:
            tally.statuses[status if outcome is None else f"{status} (not a purchase)"] += 1
        return order_id, (None, ())
    ordered_at = row.time("ordered_at", required=True)
    amount = row.cents("amount", required=True)
    refund = row.cents("refund_amount")
    refunded_at = row.time("refunded_at")
    cancelled_at = row.time("cancelled_at")
    channel = row.text("channel", max_len=MAX_CHANNEL)
    ref, record = _customer(row, order_id)
    if row.problems or ordered_at is None or amount is None:
        return None
    if outcome is Outcome.REFUND_ROW:
        # Square: the refund's own row, negative; keyed by its time so a second
        # refund of the same payment stays a second event.
        refunded = abs(amount) or abs(refund or 0)
        stamp = ordered_at.strftime("%Y%m%dT%H%M%S")
        event = _Event(
            f"order:{order_id}:refund:{stamp}", ref, REFUND, ordered_at, channel, refunded
        )
        if tally is not None:
            tally.statuses["refund"] += 1
            tally.events(ref.value, (event,))
        return f"{order_id}:refund:{stamp}", (record, (event,))
    if amount < 0:
        if row.header.fmt.name == "woocommerce_orders":
            # WooCommerce's report lists a refund as its own negative row.
            refund_event = _Event(
                f"order:{order_id}:refund", ref, REFUND, ordered_at, channel, -amount
            )
            if tally is not None:
                tally.statuses["refund"] += 1
                tally.events(ref.value, (refund_event,))
            return f"{order_id}:refund", (record, (refund_event,))
        row.problems.append(f"{row.header.label['amount']} is negative for a {status} order")
        return None
    refund = abs(refund) if refund is not None else None
    if outcome is Outcome.REFUNDED and not refund:
        refund = amount
    if refund is not None and refund > amount:
        row.problems.append(
            f"the refund ({refund / 100:.2f}) is more than the order ({amount / 100:.2f})"
        )
        return None
    events = [_Event(f"order:{order_id}", ref, ORDER, ordered_at, channel, amount)]
    if outcome is Outcome.CANCELLED or cancelled_at is not None:
        # A cancelled status (WooCommerce) takes the whole order back; a
        # cancellation date on an order still paid (Shopify) takes back what
        # was refunded, since the money kept was still earned.
        taken_back = amount if outcome is Outcome.CANCELLED else (refund or 0)
        when = max(cancelled_at or refunded_at or ordered_at, ordered_at)
        events.append(
            _Event(f"order:{order_id}:cancellation", ref, CANCELLATION, when, channel, taken_back)
        )
        status = "cancelled"
    elif refund:
        when = max(refunded_at or ordered_at, ordered_at)
        events.append(_Event(f"order:{order_id}:refund", ref, REFUND, when, channel, refund))
        status = "partially refunded" if refund < amount else "refunded"
    if tally is not None:
        tally.statuses[status] += 1
        tally.events(ref.value, tuple(events))
    return order_id, (record, tuple(events))


def contact_row(row: VendorRow, tally: Tally | None) -> tuple[str, Parsed] | None:
    """A contacts file's row: the customer and its stage events."""
    header = row.header
    customer_id = row.text("id", max_len=MAX_ID)
    email = row.text("email", max_len=MAX_EMAIL)
    key = customer_id or (email.lower() if email else None)
    name = _name(row)
    first_seen = row.first_time("first_seen")
    channel = row.text("channel", max_len=MAX_CHANNEL)
    phone = _phone(row)
    if key is None:
        row.problems.append("the row has neither an id nor an email")
    if key is not None and len(key) > MAX_ID:
        row.problems.append("the email is too long to serve as the id")
    events: list[_Event] = []
    kinds: set[str] = set()
    ref = _Ref(key or "")
    for position, column, kind in header.stage_columns:
        value = row.values[position].strip() if position < len(row.values) else ""
        if not value:
            continue
        try:
            when = row.dates.read(
                value, None, zone(header.fmt.timezone) if header.fmt.timezone else None
            )
        except ValueError as exc:
            row.problems.append(f"{column}: {exc}")
            continue
        events.append(_Event(f"{kind}:{key}", ref, kind, when, channel, None))
        kinds.add(kind)
    subscribed = row.first_time("subscribed_at")
    if subscribed is not None and header.fmt.subscribe_kind:
        kind = header.fmt.subscribe_kind
        events.append(_Event(f"{kind}:{key}", ref, kind, subscribed, channel, None))
        kinds.add(kind)
    stage = row.text("stage")
    if stage is not None:
        kind = header.stage_labels.get(_SPACES.sub(" ", stage.strip().lower()))
        if kind is None:
            row.problems.append(
                f"{header.label['stage']} {stage!r} is not a stage I know; say which journey "
                f'stage it is with --map "{stage}=<stage>" ({", ".join(DEFAULT_STAGES)})'
            )
        elif kind not in kinds:
            # HubSpot leaves a stage's date empty when the stage was set by an
            # import or by hand: the contact is in it since it was created.
            if first_seen is None:
                row.problems.append(
                    f"{header.label['stage']} is {stage!r} but neither its date nor "
                    f"{header.label.get('first_seen', 'a creation date')} is filled"
                )
            else:
                events.append(_Event(f"{kind}:{key}", ref, kind, first_seen, channel, None))
    if row.problems or key is None:
        return None
    record = CustomerRecord(key, name, email, first_seen, channel, phone)
    if tally is not None:
        tally.statuses["contact"] += 1
        tally.customers.add(key)
        if first_seen is not None:
            tally.saw(first_seen)
        tally.events(key, tuple(events))
    return key, (record, tuple(events))


BOOKING = "booking"


def booking_row(row: VendorRow, tally: Tally | None, now: datetime) -> tuple[str, Parsed] | None:
    """A bookings file's row: the booking, and the visit once its time has passed."""
    header = row.header
    start = row.time("ordered_at", required=True)
    booked = row.time("booked_at")
    email = row.text("customer_email", max_len=MAX_ID)
    name = _name(row)
    order_id = row.text("order_id", max_len=MAX_ORDER_ID)
    amount = row.cents("amount") or 0
    cancelled = (row.text("cancelled") or "").lower() in header.fmt.cancelled_bookings
    label = row.text("label")
    no_show = label is not None and header.fmt.statuses.get(status_key(label)) is Outcome.NO_SHOW
    if row.problems or start is None:
        return None
    phone = _phone(row)
    if email is not None:
        ref, record = _Ref(email.lower(), by_email=True, phone=phone), None
    elif name is not None:
        key = "name:" + _SPACES.sub(" ", name.lower())[: MAX_ID - 5]
        ref, record = _Ref(key), CustomerRecord(key, name=name, phone=phone)
    else:
        row.problems.append("the row names no client (no email and no name)")
        return None
    appointment = order_id or f"{ref.value}@{start:%Y%m%dT%H%M}"
    events = [
        _Event(f"booking:{appointment}", ref, BOOKING, min(booked or start, start), None, None)
    ]
    if cancelled:
        status = "canceled"
        events.append(
            _Event(f"booking:{appointment}:cancellation", ref, CANCELLATION, start, None, 0)
        )
    elif no_show:
        status = "no-show"
    elif start <= now:
        status = "visited"
        events.append(_Event(f"order:{appointment}", ref, ORDER, start, None, amount))
    else:
        status = "booked"
    if tally is not None:
        tally.statuses[status] += 1
        tally.events(ref.value, tuple(events))
    return appointment, (record, tuple(events))


def customer_fields(header: VendorHeader) -> frozenset[str]:
    """Which customer fields a contacts file provides (the others keep stored values)."""
    present = set(header.index)
    fields = {f for f in ("email", "first_seen", "channel", "phone") if f in present}
    if present & {"name", "first_name", "last_name", "customer_name"}:
        fields.add("name")
    return frozenset(fields)
