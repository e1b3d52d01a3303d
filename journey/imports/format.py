"""What a vendor's export file looks like, declared: the shape every vendor file fills in.

A vendor format is data, not code (like the connectors' declared paths and
cursors in journey/sources/): its header signature, which of its columns carry
which journey field, what each of its statuses means, how it writes dates and
time zones, how its line items group into one order, which rows are tests. One
engine (journey.imports.vendor) reads every format the same way, so a vendor's
file is short and a reviewer can check it against the vendor's documentation
line by line.

Columns are named exactly as the vendor writes them. `used` columns are read;
`known` columns carry dates, amounts or statuses the format deliberately does
not import, each with the reason (shown by --dry-run and the import summary);
every other column that looks like a date, an amount, a status or a stage stops
the import (see journey.imports.columns), so a new column in a vendor's export
is never dropped in silence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Literal


class Outcome(StrEnum):
    """What one status means for the journey."""

    PAID = "paid"  # a purchase (refund and cancellation columns still apply)
    REFUNDED = "refunded"  # a purchase refunded in full unless a refund amount says less
    CANCELLED = "cancelled"  # a purchase that was cancelled
    NOT_PURCHASE = "not a purchase"  # pending, failed, voided, on hold, authorised only
    REFUND_ROW = "refund"  # the row is a refund of an earlier payment (Square)
    BOOKED = "booked"  # an appointment booked, not yet visited
    VISITED = "visited"  # an appointment that took place: a purchase
    NO_SHOW = "no-show"  # a booked appointment the customer missed


RecordKind = Literal["orders", "contacts", "bookings"]


@dataclass(frozen=True)
class VendorFormat:
    """One vendor export layout.

    fields: journey field -> the vendor's column names, first present wins.
      orders: order_id, customer_id, customer_email, customer_name, ordered_at,
        time, timezone, amount, refund_amount, refunded_at, cancelled_at, status,
        captured, currency, channel, test, first_name, last_name.
      contacts: id, email, first_name, last_name, name, first_seen, channel,
        stage (the current stage's label), subscribed_at, phone.
      bookings: order_id, customer_id, customer_email, first_name, last_name,
        ordered_at (the visit), booked_at, amount, status.
    """

    name: str  # the module's name: shopify_orders
    title: str  # what the user sees: "Shopify orders export"
    records: RecordKind
    signature: tuple[str, ...]  # columns that must all be in the header
    fields: Mapping[str, tuple[str, ...]]
    # Status column value (lowercase, spaces and dashes as "_") -> meaning.
    statuses: Mapping[str, Outcome] = field(default_factory=dict)
    status_when_empty: Outcome | None = None
    # Line items: consecutive rows with the same order_id are one order whose
    # order columns are on its first line only (Shopify).
    line_items: bool = False
    # A column whose value (lowercase) marks a test row: {"test": {"bogus"}}.
    tests: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # "captured" column values that mean the payment was only authorised.
    not_captured: frozenset[str] = frozenset()
    # Where times without an offset are: "UTC" when the vendor writes UTC,
    # None for the file's zone column, else --timezone, else the workspace's.
    timezone: str | None = None
    # Contacts: stage date columns -> event kind; a pattern for a family of them
    # (`Became a Customer Date`) whose captured label goes through stage_labels.
    stage_dates: Mapping[str, str] = field(default_factory=dict)
    stage_date_pattern: re.Pattern[str] | None = None
    stage_labels: Mapping[str, str] = field(default_factory=dict)
    # Contacts: the kind of the event a subscription date (subscribed_at) records.
    subscribe_kind: str | None = None
    # Booking status (normalised) values whose row is a cancellation.
    cancelled_bookings: frozenset[str] = frozenset()
    # Columns that carry dates, amounts or statuses this format does not import, and why.
    known: Mapping[str, str] = field(default_factory=dict)
    known_patterns: tuple[tuple[re.Pattern[str], str], ...] = ()
    # Where to click in the vendor's app to get this file (README/docs, errors).
    export_help: str = ""

    def column(self, header: set[str], name: str) -> str | None:
        """The vendor column present in `header` for journey field `name`."""
        for candidate in self.fields.get(name, ()):
            if candidate in header:
                return candidate
        return None

    def known_reason(self, column: str) -> str | None:
        if column in self.known:
            return self.known[column]
        for pattern, reason in self.known_patterns:
            if pattern.fullmatch(column):
                return reason
        return None


@lru_cache(maxsize=4096)
def status_key(value: str) -> str:
    """A status as the formats declare it: lowercase, runs of spaces and dashes -> '_'."""
    return re.sub(r"[\s\-]+", "_", value.strip().lower())
