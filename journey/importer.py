"""`journey import`: CSV files of customers, orders and journey events into the store.

Why it is built the way it is:

- One source for every file. Customers are keyed per source, so the customer ids
  in orders.csv and events.csv only name the customers of customers.csv when all
  three files go to the same source; the default source is therefore one shared
  source named "csv" (override it per shop with `source_name`).
- Nothing is guessed silently. A row that cannot be read exactly (an ambiguous
  date, "12,50", an unknown event kind, a second row with the same id but other
  values) is reported with its file, physical line number and reason, never
  patched. Only identical repeats of a row are dropped quietly, since they
  carry no new information (concatenated exports repeat rows).
- All or nothing without SAVEPOINTs. With `all_or_nothing` the file is first
  read completely without touching the database, and written only if every row
  is good. A bad last line of a million-row file then costs seconds of reading,
  not minutes of writes and a rollback; and no savepoint is needed, which
  matters because pysqlite (with SQLAlchemy's default transaction handling)
  commits a savepoint opened before the transaction's first write when it is
  released. The file is streamed in both passes: memory holds one batch of
  records plus one small entry per id for duplicate detection.
- Every write goes through `journey.ingest.Ingestor`, so a re-import of the
  same file is an upsert that reports every record as unchanged, and the
  journey state of exactly the touched customers is refreshed at the end.
- The function works in the caller's transaction and never commits; if it
  raises, the caller must roll back (`journey.db.session_scope` does).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import BinaryIO, Literal, get_args

from sqlalchemy import Table, func, select
from sqlmodel import Session

from journey.errors import JourneyError
from journey.ingest import BATCH, CustomerRecord, EventRecord, Ingestor, IngestStats
from journey.models import Customer, Workspace
from journey.stages import KNOWN_KINDS, StageModel
from journey.workspaces import ensure_source, ensure_workspace

FileKind = Literal["customers", "orders", "events"]
FILE_KINDS: tuple[FileKind, ...] = get_args(FileKind)

SOURCE_KIND = "csv"
DEFAULT_SOURCE_NAME = "csv"
# Row errors kept in ImportResult.errors; ImportResult.rejected counts them all.
MAX_ERRORS = 1000
PROGRESS_EVERY = 1000  # rows between progress callbacks
MAX_CENTS = 10**15  # ten trillion currency units: anything larger is a typo

# Column limits of the store (journey.models), checked here so PostgreSQL never
# fails a whole batch on one long value (SQLite would store it silently).
MAX_ID = 200
MAX_ORDER_ID = MAX_ID - len("order::cancellation")
MAX_NAME = 300
MAX_EMAIL = 320
MAX_CHANNEL = 100
MAX_KIND = 64

ProgressFn = Callable[[int, int, int], None]

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
    "first_seen, channel",
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

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?")
_TIME_HELP = "use ISO 8601, e.g. 2026-01-31, 2026-01-31 14:05 or 2026-01-31T14:05:00+01:00"
_MONEY = re.compile(r"^-?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?$")
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d{1,2}$")
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}\s*|\s*[A-Z]{3}$")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_KIND_SEP = re.compile(r"[\s\-]+")


@dataclass(frozen=True)
class RowError:
    """A rejected row: `line` is the physical line in the file (the header is line 1)."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class ImportResult:
    """What one file import did.

    `rows` counts data rows (blank lines are not rows). inserted/updated/unchanged
    count store records: customers for a customers file, events otherwise (an
    order with a refund is two events). `written` is False when nothing was
    written because the import was all-or-nothing and some row was bad.
    `errors` keeps the first MAX_ERRORS rejected rows; `rejected` counts all.
    """

    file: str
    kind: FileKind
    source_name: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    duplicates: int = 0
    written: bool = False
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    @property
    def errors_truncated(self) -> bool:
        return self.rejected > len(self.errors)


# --- reading the file ----------------------------------------------------------


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
                f"{file}: a {kind} file needs the columns {EXPECTED[kind]}; "
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


@dataclass
class _Reader:
    """Physical lines of a UTF-8 file, decoded one by one.

    Decoding per line (UTF-8 never splits a character across a newline) turns a
    stray Latin-1 byte into an error on its own line instead of an exception
    that aborts the file, and counts the bytes read for the progress bar.
    """

    file: str
    handle: BinaryIO
    bytes_done: int = 0
    bad_lines: dict[int, str] = field(default_factory=dict)

    def lines(self) -> Iterator[str]:
        for number, raw in enumerate(self.handle, start=1):
            self.bytes_done += len(raw)
            if number == 1:
                if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    raise JourneyError(
                        f"{self.file} is UTF-16 text; save it as 'CSV UTF-8' and import again."
                    )
                raw = raw.removeprefix(codecs.BOM_UTF8)
                if b"\r" in raw.rstrip(b"\r\n"):
                    raise JourneyError(
                        f"{self.file} ends its lines with a bare carriage return (old Mac "
                        "format); save it as 'CSV UTF-8' with standard line endings."
                    )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if number == 1:
                    raise JourneyError(
                        f"{self.file} is not UTF-8 text (byte 0x{raw[exc.start]:02X} in the "
                        "header); save it as 'CSV UTF-8' and import again."
                    ) from exc
                self.bad_lines[number] = (
                    f"not valid UTF-8 (byte 0x{raw[exc.start]:02X} at position "
                    f"{exc.start + 1}); save the file as 'CSV UTF-8'"
                )
                text = raw.decode("utf-8", errors="replace")
            yield text


def _delimiter(header_line: str) -> str:
    """Comma, unless the header clearly uses semicolons or tabs (spreadsheet exports)."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _open(path: Path) -> tuple[BinaryIO, int]:
    try:
        if path.is_dir():
            raise JourneyError(f"{path} is a directory; give the path of a CSV file.")
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise JourneyError(f"There is no file {path}.") from exc
    except PermissionError as exc:
        raise JourneyError(f"{path} cannot be read (permission denied).") from exc
    size = os.fstat(handle.fileno()).st_size
    return handle, size


# --- values --------------------------------------------------------------------


def parse_time(value: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime (naive means UTC).

    Only the year-month-day order is accepted: 03/04/2026 is March or April
    depending on who wrote it, and a guess would corrupt the funnel silently.
    """
    if not _DATE.match(value):
        raise ValueError(f"{value!r} is not a date ({_TIME_HELP})")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date ({_TIME_HELP})") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_cents(value: str) -> int:
    """A decimal amount in currency units ("1,234.50", "$12.50", "12.5 EUR") as cents.

    ',' is accepted only as a thousands separator in 3-digit groups, so
    "1,234" is 1234.00 and the decimal comma "12,50" is rejected rather than
    read as 1250.00. Decimal keeps the conversion exact.
    """
    text = "".join(ch for ch in value if unicodedata.category(ch) != "Sc").strip()
    text = _CURRENCY_CODE.sub("", text).strip()
    if _DECIMAL_COMMA.match(text):
        raise ValueError(f"{value!r}: use '.' as the decimal separator (e.g. 12.50)")
    if not text or text in {"-", ".", "-."} or not _MONEY.match(text):
        raise ValueError(f"{value!r} is not an amount (use a number like 1234.50)")
    try:
        cents = Decimal(text.replace(",", "")) * 100
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount (use a number like 1234.50)") from None
    if cents != cents.to_integral_value():
        raise ValueError(f"{value!r} has more than 2 decimals")
    if abs(cents) >= MAX_CENTS:
        raise ValueError(f"{value!r} is too large to be an amount")
    return int(cents)


@dataclass(frozen=True)
class _Ref:
    """How a row names its customer: by id, or by email when it has no id."""

    value: str
    by_email: bool = False


@dataclass(frozen=True)
class _Event:
    """An event before its customer reference is resolved to an external id."""

    external_id: str
    customer: _Ref
    kind: str
    occurred_at: datetime
    channel: str | None
    amount_cents: int | None


class _Cells:
    """One row's values by canonical field, collecting every problem of the row."""

    def __init__(self, header: _Header, values: list[str]) -> None:
        self.header = header
        self.values = values
        self.problems: list[str] = []

    def _label(self, name: str) -> str:
        return self.header.label.get(name, name)

    def text(self, name: str, *, required: bool = False, max_len: int = 0) -> str | None:
        i = self.header.index.get(name)
        value = self.values[i].strip() if i is not None and i < len(self.values) else ""
        if not value:
            if required:
                self.problems.append(f"{self._label(name)} is empty")
            return None
        if max_len and len(value) > max_len:
            self.problems.append(f"{self._label(name)} is longer than {max_len} characters")
            return None
        return value

    def time(self, name: str, *, required: bool = False) -> datetime | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError as exc:
            self.problems.append(f"{self._label(name)}: {exc}")
            return None

    def cents(self, name: str, *, required: bool = False) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
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

    def customer(self) -> _Ref | None:
        """The customer's id, or failing that their email (lowercased, so the same
        person written twice with different case stays one customer)."""
        before = len(self.problems)
        customer_id = self.text("customer_id", max_len=MAX_ID)
        if customer_id is not None:
            return _Ref(customer_id)
        email = self.text("customer_email", max_len=MAX_ID)
        if email is not None:
            return _Ref(email.lower(), by_email=True)
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
    key = customer_id
    if key is None and email is not None:
        if len(email) > MAX_ID:
            cells.problems.append(f"{cells._label('email')} is too long to serve as the id")
        key = email.lower()
    if key is None and len(cells.problems) == before:
        cells.problems.append("the row has neither an id nor an email")
    if cells.problems or key is None:
        return None
    return key, CustomerRecord(key, name, email, first_seen, channel)


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


# --- writing -------------------------------------------------------------------


class _Writer:
    """Buffers parsed rows and upserts them in batches through the Ingestor.

    The workspace and source are created on the first write, so an import that
    writes nothing leaves no trace.
    """

    def __init__(self, session: Session, workspace_id: str, source_name: str) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.source_name = source_name
        self.stats = IngestStats()
        self._ingestor: Ingestor | None = None
        # Customer fields the file has columns for; the others keep their stored values.
        self.customer_fields: frozenset[str] | None = None
        self._customers: list[CustomerRecord] = []
        self._events: list[_Event] = []

    @property
    def wrote(self) -> bool:
        return self._ingestor is not None

    def _get_ingestor(self) -> Ingestor:
        if self._ingestor is None:
            ensure_workspace(self.session, self.workspace_id)
            source = ensure_source(self.session, self.workspace_id, SOURCE_KIND, self.source_name)
            assert source.id is not None
            self._ingestor = Ingestor(self.session, self.workspace_id, source.id)
        return self._ingestor

    def add(self, parsed: _Parsed) -> None:
        if isinstance(parsed, CustomerRecord):
            self._customers.append(parsed)
        else:
            self._events.extend(parsed)
        if len(self._customers) >= BATCH or len(self._events) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self._customers:
            self.stats.add(
                self._get_ingestor().customers(self._customers, fields=self.customer_fields)
            )
            self._customers = []
        if self._events:
            ingestor = self._get_ingestor()
            ids = self._resolve_emails(
                {e.customer.value for e in self._events if e.customer.by_email}
            )
            records = [
                EventRecord(
                    external_id=e.external_id,
                    customer_external_id=ids[e.customer.value]
                    if e.customer.by_email
                    else e.customer.value,
                    kind=e.kind,
                    occurred_at=e.occurred_at,
                    channel=e.channel,
                    amount_cents=e.amount_cents,
                )
                for e in self._events
            ]
            self.stats.add(ingestor.events(records))
            self._events = []

    def _resolve_emails(self, emails: set[str]) -> dict[str, str]:
        """External ids of the customers these emails belong to in this source.

        An orders export often names customers by email only; matching them to
        the customers imported with an id keeps one customer per person. An
        email nobody has yet becomes the id of a new (stub) customer.
        """
        found: dict[str, str] = {}
        if not emails:
            return found
        ingestor = self._get_ingestor()
        table: Table = Customer.__table__  # type: ignore[attr-defined]
        wanted = sorted(emails)
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            rows = self.session.execute(
                select(table.c.external_id, func.lower(table.c.email))
                .where(
                    table.c.workspace_id == self.workspace_id,
                    table.c.source_id == ingestor.source_id,
                    func.lower(table.c.email).in_(chunk),
                )
                .order_by(table.c.id)
            ).all()
            for external_id, email in rows:
                found.setdefault(email, external_id)
        return {e: found.get(e, e) for e in emails}

    def finish(self) -> IngestStats:
        self.flush()
        if self._ingestor is not None:
            self._ingestor.refresh(self.stats)
        return self.stats


# --- the import ----------------------------------------------------------------


def _known_kinds(session: Session, workspace_id: str) -> frozenset[str]:
    """Event kinds this workspace understands: the built-in ones, its stage names
    and the kinds its stage map assigns (a workspace that does not exist yet has
    the default journey)."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        model = StageModel()
    else:
        model = StageModel.from_workspace(workspace.stages, workspace.stage_map)
    return KNOWN_KINDS | frozenset(model.stages) | frozenset(model.overrides)


def _pass(
    path: Path,
    file: str,
    kind: FileKind | None,
    known_kinds: frozenset[str],
    source_name: str,
    writer: _Writer | None,
    progress: ProgressFn | None,
    offset: int,
    total: int,
) -> ImportResult:
    """Read the whole file once, checking every row and handing the good ones to
    `writer` (None: check only)."""
    handle, _ = _open(path)
    with handle:
        reader = _Reader(file, handle)
        lines = reader.lines()
        first = next(lines, None)
        if first is not None and not first.strip():
            raise JourneyError(f"{file}: the first line is blank; it must be the header.")
        if first is None:
            raise JourneyError(f"{file} is empty; it needs a header line and rows.")
        delimiter = _delimiter(first)
        try:
            names = next(csv.reader([first], delimiter=delimiter), [])
        except csv.Error as exc:
            raise JourneyError(f"{file}: the header line cannot be read as CSV ({exc}).") from exc
        header = _detect(file, names, kind)
        result = ImportResult(
            file=file, kind=header.kind, source_name=source_name, ignored_columns=header.ignored
        )
        seen: dict[str, int] = {}  # id -> (hash of the row's values << 32) | line
        rows = csv.reader(lines, delimiter=delimiter)
        line_done = 1

        def reject(line: int, reason: str) -> None:
            result.rejected += 1
            if len(result.errors) < MAX_ERRORS:
                result.errors.append(RowError(file, line, reason))

        while True:
            try:
                values = next(rows)
            except StopIteration:
                break
            except csv.Error as exc:
                start, line_done = line_done + 1, rows.line_num + 1
                result.rows += 1
                reject(start, f"cannot be read as CSV ({exc})")
                continue
            start, line_done = line_done + 1, rows.line_num + 1
            if not any(v.strip() for v in values):
                continue  # blank line, or a spreadsheet's row of empty cells
            result.rows += 1
            if progress is not None and result.rows % PROGRESS_EVERY == 0:
                progress(result.rows, offset + reader.bytes_done, total)

            bad = [
                reader.bad_lines.pop(n)
                for n in range(start, line_done + 1)
                if n in reader.bad_lines
            ]
            if bad:
                reject(start, bad[0])
                continue
            if any("\x00" in v for v in values):
                reject(start, "contains a NUL character (is this a binary file?)")
                continue
            if len(values) > header.width and any(v.strip() for v in values[header.width :]):
                reject(
                    start,
                    f"has {len(values)} fields but the header has {header.width} "
                    "(quote values that contain the delimiter)",
                )
                continue
            if writer is not None and header.kind == "customers":
                writer.customer_fields = _customer_fields(header)
            cells = _Cells(header, values)
            parsed: tuple[str, _Parsed] | None
            if header.kind == "customers":
                parsed = _customer_row(cells)
            elif header.kind == "orders":
                parsed = _order_row(cells)
            else:
                parsed = _event_row(cells, known_kinds)
            if parsed is None:
                reject(start, "; ".join(cells.problems))
                continue

            key, content = parsed
            fingerprint = hash(content) & 0xFFFFFFFFFFFFFFFF
            previous = seen.get(key)
            if previous is not None:
                if previous >> 32 == fingerprint:
                    result.duplicates += 1
                else:
                    reject(start, _duplicate_reason(cells, key, previous & 0xFFFFFFFF))
                continue
            seen[key] = (fingerprint << 32) | start
            if writer is not None:
                writer.add(content)

        if progress is not None:
            progress(result.rows, offset + reader.bytes_done, total)
    return result


def _customer_fields(header: _Header) -> frozenset[str]:
    """Which CustomerRecord fields a customers file actually provides."""
    present = set(header.index)
    fields = {f for f in ("email", "first_seen", "channel") if f in present}
    if present & {"name", "first_name", "last_name"}:
        fields.add("name")
    return frozenset(fields)


def _duplicate_reason(cells: _Cells, key: str, first_line: int) -> str:
    kind = cells.header.kind
    if kind == "events" and cells.text("event_id") is None:
        return (
            f"an event of the same customer, kind and time is also on line {first_line}, "
            "with other values (add an event_id column to keep both)"
        )
    field_name = {"customers": "id", "orders": "order_id", "events": "event_id"}[kind]
    label = cells.header.label.get(field_name, field_name)
    if kind == "customers" and "id" not in cells.header.index:
        label = cells.header.label.get("email", "email")
    return (
        f"{label} {key!r} is also on line {first_line}, with other values (each id may appear once)"
    )


def import_csv(
    session: Session,
    workspace_id: str,
    path: str | os.PathLike[str],
    *,
    kind: FileKind | None = None,
    source_name: str | None = None,
    all_or_nothing: bool = True,
    progress: ProgressFn | None = None,
) -> ImportResult:
    """Import one CSV file of customers, orders or events into a workspace.

    Runs in the caller's transaction and does not commit; on an exception the
    caller must roll back. The workspace and the source (kind "csv", name
    `source_name` or "csv") are created on the first write.

    all_or_nothing=True: the file is checked in full first; if any row is bad
    nothing is written (`result.written` is False) and the errors say why.
    all_or_nothing=False: good rows are written, bad rows are reported.

    `progress(rows_done, bytes_done, total_bytes)` is called every
    PROGRESS_EVERY rows and at the end. An all-or-nothing import reads the file
    twice (check, then write), so total_bytes is then twice the file size and
    rows_done restarts with the second pass.
    """
    file_path = Path(path)
    file = str(path)
    if kind is not None and kind not in FILE_KINDS:
        raise JourneyError(f"Unknown file kind {kind!r}: use one of {', '.join(FILE_KINDS)}.")
    name = (source_name or DEFAULT_SOURCE_NAME).strip()
    if not name or len(name) > MAX_ID:
        raise JourneyError(f"The source name must be 1 to {MAX_ID} characters.")
    handle, size = _open(file_path)
    handle.close()
    known_kinds = _known_kinds(session, workspace_id)

    if all_or_nothing:
        total = 2 * size
        checked = _pass(file_path, file, kind, known_kinds, name, None, progress, 0, total)
        if checked.rejected:
            if progress is not None:
                progress(checked.rows, total, total)
            return checked
        offset = size
    else:
        total, offset = size, 0

    writer = _Writer(session, workspace_id, name)
    result = _pass(file_path, file, kind, known_kinds, name, writer, progress, offset, total)
    if all_or_nothing and result.rejected:
        raise JourneyError(f"{file} changed while it was being imported; import it again.")
    stats = writer.finish()
    result.inserted, result.updated, result.unchanged = (
        stats.inserted,
        stats.updated,
        stats.unchanged,
    )
    result.written = writer.wrote
    return result
