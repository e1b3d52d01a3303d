"""One file's import: a check pass over the streamed file, then the write.

The check pass parses every row once and keeps the good rows' records in a
spool (journey.imports.spool) that the write replays, so a bad row anywhere
still imports nothing and no row is parsed twice. An import that writes good
rows and reports bad ones (all_or_nothing=False) is a single write pass.

The layout is recognised from the header: a vendor's export (journey.imports.
registry) or journey's generic customers/orders/events layout (with --map for
the columns nobody knows). Dates are read in the file's style (day-first or
month-first decided from the whole file before the first pass), amounts in
the file's decimal style and currency. The write pass commits every batch
when the caller gives `commit` (see journey.imports.writer).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from journey.errors import JourneyError
from journey.imports.columns import carries_values, unplaced_message
from journey.imports.common import (
    DEFAULT_SOURCE_NAME,
    FILE_KINDS,
    MAX_ERRORS,
    MAX_ID,
    PROGRESS_EVERY,
    SOURCE_KIND,
    FileKind,
    ImportResult,
    NeedsOption,
    ProgressFn,
    RowError,
)
from journey.imports.dates import DateReader, decide_day_first, zone
from journey.imports.format import VendorFormat
from journey.imports.generic import (
    COLUMNS,
    ValueReading,
    _Cells,
    _customer_row,
    _detect,
    _Event,
    _event_row,
    _Header,
    _order_row,
)
from journey.imports.money import Currency, MoneyReader, decimal_style
from journey.imports.reading import _delimiter, _open, _Reader
from journey.imports.registry import FORMATS
from journey.imports.spool import PROGRESS, Spool
from journey.imports.vendor import (
    Tally,
    VendorHeader,
    VendorRow,
    booking_row,
    contact_row,
    customer_fields,
    detect,
    order_row,
    vendor_header,
)
from journey.imports.writer import _Writer
from journey.ingest import CustomerRecord
from journey.models import Source, SyncCursor, Workspace
from journey.stages import KNOWN_KINDS, StageModel

# SyncCursor resource under which a csv source keeps the --map of each layout
# it has seen (header fingerprint -> mapping), so the next export of the same
# layout needs no flag.
MAP_RESOURCE = "import_maps"
_DATE_FIELDS = (
    "ordered_at",
    "occurred_at",
    "first_seen",
    "refunded_at",
    "cancelled_at",
    "subscribed_at",
)


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


def _header_line(path: Path, file: str) -> tuple[list[str], str]:
    handle, _ = _open(path)
    with handle:
        reader = _Reader(file, handle)
        first = next(reader.lines(), None)
    if first is not None and not first.strip():
        raise JourneyError(f"{file}: the first line is blank; it must be the header.")
    if first is None:
        raise JourneyError(f"{file} is empty; it needs a header line and rows.")
    delimiter = _delimiter(first)
    try:
        names = next(csv.reader([first], delimiter=delimiter), [])
    except csv.Error as exc:
        raise JourneyError(f"{file}: the header line cannot be read as CSV ({exc}).") from exc
    return names, delimiter


def fingerprint(names: list[str]) -> str:
    """A layout's identity: its column names, in any order."""
    joined = "\x1f".join(sorted(n.strip() for n in names))
    return hashlib.sha1(joined.encode()).hexdigest()[:16]


def parse_map(specs: list[str]) -> dict[str, str]:
    """`--map "Created date (UTC)=ordered_at,Amount=amount"` (repeatable; `Col=` leaves Col out)."""
    mapping: dict[str, str] = {}
    for spec in specs:
        for part in _split_map(spec):
            column, sep, target = part.partition("=")
            if not sep or not column.strip():
                raise JourneyError(
                    f'--map {part!r}: write COLUMN=FIELD, e.g. --map "Created date (UTC)=ordered_at"'
                )
            mapping[column.strip()] = target.strip()
    return mapping


def _split_map(spec: str) -> Iterator[str]:
    """Commas separate entries, except inside a column name's parentheses."""
    depth, current = 0, ""
    for ch in spec:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        if ch == "," and depth == 0:
            if current.strip():
                yield current
            current = ""
            continue
        current += ch
    if current.strip():
        yield current


def _stored_maps(
    session: Session, workspace_id: str, source_name: str
) -> tuple[Source | None, dict[str, dict[str, str]]]:
    source = session.exec(
        select(Source).where(
            Source.workspace_id == workspace_id,
            Source.kind == SOURCE_KIND,
            Source.name == source_name,
        )
    ).first()
    if source is None:
        return None, {}
    cursor = session.get(SyncCursor, (source.id, MAP_RESOURCE))
    if cursor is None or not cursor.cursor:
        return source, {}
    try:
        stored = json.loads(cursor.cursor)
    except ValueError:
        return source, {}
    return source, stored if isinstance(stored, dict) else {}


def _remember_map(
    session: Session, workspace_id: str, source_name: str, key: str, mapping: dict[str, str]
) -> None:
    """Keep this layout's --map with the source (see MAP_RESOURCE)."""
    source, stored = _stored_maps(session, workspace_id, source_name)
    if source is None or source.id is None:
        return
    stored[key] = mapping
    cursor = session.get(SyncCursor, (source.id, MAP_RESOURCE))
    now = datetime.now(UTC)
    if cursor is None:
        session.add(
            SyncCursor(
                source_id=source.id,
                resource=MAP_RESOURCE,
                workspace_id=workspace_id,
                cursor=json.dumps(stored),
                updated_at=now,
            )
        )
    else:
        cursor.cursor = json.dumps(stored)
        cursor.updated_at = now
        session.add(cursor)
    session.flush()


# SyncCursor resource under which a csv source keeps what it knows of the files
# imported into it: sha256 -> {"line": last row committed, "complete": bool,
# "records": records written}. An interrupted import of the same file resumes
# after the last committed batch; an import of a file already imported in full
# writes nothing (its rows are all unchanged), which makes a re-import a read.
FILES_RESOURCE = "import_files"
MAX_FILES = 20


def _markers(session: Session, source_id: int) -> dict[str, dict[str, Any]]:
    cursor = session.get(SyncCursor, (source_id, FILES_RESOURCE))
    if cursor is None or not cursor.cursor:
        return {}
    try:
        stored = json.loads(cursor.cursor)
    except ValueError:
        return {}
    return stored if isinstance(stored, dict) else {}


def _mark(
    session: Session, workspace_id: str, source_id: int, sha: str, marker: dict[str, Any]
) -> None:
    """Record how far this file's import got, in the caller's transaction."""
    stored = _markers(session, source_id)
    stored.pop(sha, None)
    stored[sha] = marker
    while len(stored) > MAX_FILES:
        stored.pop(next(iter(stored)))
    cursor = session.get(SyncCursor, (source_id, FILES_RESOURCE))
    now = datetime.now(UTC)
    if cursor is None:
        cursor = SyncCursor(
            source_id=source_id,
            resource=FILES_RESOURCE,
            workspace_id=workspace_id,
            cursor=json.dumps(stored),
            updated_at=now,
        )
    else:
        cursor.cursor = json.dumps(stored)
        cursor.updated_at = now
    session.add(cursor)
    session.flush()


@dataclass
class _Layout:
    """The recognised layout of one file and how its rows are read."""

    file: str
    width: int
    vendor: VendorHeader | None = None
    generic: _Header | None = None
    known_kinds: frozenset[str] = frozenset()
    reading: ValueReading | None = None
    order_position: int | None = None  # line items: the column grouping them

    @property
    def kind(self) -> FileKind:
        if self.vendor is not None:
            records = self.vendor.fmt.records
            return {"orders": "orders", "bookings": "events"}.get(records, "customers")  # type: ignore[return-value]
        assert self.generic is not None
        return self.generic.kind

    def amount_positions(self) -> list[int]:
        index = self.vendor.index if self.vendor is not None else self.generic.index  # type: ignore[union-attr]
        return [index[f] for f in ("amount", "refund_amount") if f in index]

    def date_positions(self) -> list[int]:
        if self.vendor is not None:
            index = self.vendor.index
            found = [index[f] for f in (*_DATE_FIELDS, "booked_at") if f in index]
            return found + [p for p, _, _ in self.vendor.stage_columns]
        assert self.generic is not None
        return [self.generic.index[f] for f in _DATE_FIELDS if f in self.generic.index]


def _generic_layout(
    file: str, names: list[str], kind: FileKind | None, mapping: dict[str, str]
) -> _Header:
    """journey's own layout, with --map applied and unplaced value columns refused."""
    renamed: list[str] = []
    left_out: set[int] = set()
    fields = {f for kinds in COLUMNS.values() for f in kinds}
    for i, name in enumerate(names):
        target = mapping.get(name.strip())
        if target is None:
            renamed.append(name)
        elif not target:
            renamed.append("")
            left_out.add(i)
        elif target in fields:
            renamed.append(target)
        else:
            raise JourneyError(
                f"--map {name.strip()}={target}: {target!r} is not a field journey reads "
                f"(fields: {', '.join(sorted(fields))})."
            )
    for column in mapping:
        if column not in {n.strip() for n in names}:
            raise JourneyError(f"--map {column}=...: {file} has no column {column!r}.")
    header = _detect(file, renamed, kind)
    for f, i in header.index.items():
        header.label[f] = names[i].strip()
    unplaced = [c for c in header.ignored if carries_values(c)]
    if unplaced:
        expected = ", ".join(COLUMNS[header.kind])
        raise NeedsOption(
            unplaced_message(
                file,
                f"{'a' if header.kind == 'customers' else 'an'} {header.kind} file",
                unplaced,
                expected,
            ),
            "map",
            columns=unplaced,
            fields=list(COLUMNS[header.kind]),
        )
    return header


@dataclass
class _Options:
    all_or_nothing: bool = True
    dry_run: bool = False
    commit: Callable[[], None] | None = None


@dataclass
class _Pass:
    """One read of the whole file, checking every row and handing the good ones
    to `writer` (None: check only)."""

    path: Path
    layout: _Layout
    delimiter: str
    source_name: str
    writer: _Writer | None
    progress: ProgressFn | None
    offset: int
    total: int
    tally: Tally | None = None
    seen: dict[str, int] = field(default_factory=dict)
    result: ImportResult | None = None
    # Resuming: rows up to this physical line were written by an earlier run.
    skip_until: int = 0
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    line: int = 0  # the row being handed to the writer (the marker's resume point)
    sha256: str = ""
    # The check pass of an import keeps each good row's records here for the write.
    spool: Spool | None = None

    def run(self) -> ImportResult:
        layout = self.layout
        file = layout.file
        result = ImportResult(file=file, kind=layout.kind, source_name=self.source_name)
        if layout.vendor is not None:
            result.format_title = layout.vendor.fmt.title
            result.ignored_columns = layout.vendor.ignored
            result.known_columns = layout.vendor.known
        else:
            assert layout.generic is not None
            result.ignored_columns = layout.generic.ignored
        result.tally = self.tally
        self.result = result
        handle, _ = _open(self.path)
        with handle:
            reader = _Reader(file, handle)
            lines = reader.lines()
            next(lines, None)
            rows = csv.reader(lines, delimiter=self.delimiter)
            line_done = 1
            previous_order: str | None = None

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
                if not "".join(values).strip():
                    continue  # blank line, or a spreadsheet's row of empty cells
                result.lines += 1
                if self.progress is not None and result.lines % PROGRESS_EVERY == 0:
                    self.progress(result.lines, self.offset + reader.bytes_done, self.total)
                    if self.spool is not None:
                        self.spool.progress(result.lines, reader.bytes_done)
                if layout.order_position is not None:
                    position = layout.order_position
                    order = values[position].strip() if position < len(values) else ""
                    if order and order == previous_order:
                        if self.tally is not None:
                            self.tally.lines += 1
                        continue  # another line item of the order above
                    previous_order = order
                result.rows += 1
                if reader.bad_lines:
                    bad = [
                        reader.bad_lines.pop(n)
                        for n in range(start, line_done + 1)
                        if n in reader.bad_lines
                    ]
                    if bad:
                        reject(start, bad[0])
                        continue
                if len(values) > layout.width and any(v.strip() for v in values[layout.width :]):
                    reject(
                        start,
                        f"has {len(values)} fields but the header has {layout.width} "
                        "(quote values that contain the delimiter)",
                    )
                    continue
                if start <= self.skip_until:
                    continue  # written by the interrupted run this one resumes
                self.line = start
                self._row(values, start, reject)

            if layout.reading is not None and layout.reading.money.mixed:
                money = layout.reading.money
                reject(money.comma_line or 0, money.mixed_reason())
            if self.progress is not None:
                self.progress(result.lines, self.offset + reader.bytes_done, self.total)
                if self.spool is not None:
                    self.spool.progress(result.lines, reader.bytes_done)
        self.sha256 = reader.digest.hexdigest()
        return result

    def _row(self, values: list[str], start: int, reject: Callable[[int, str], None]) -> None:
        layout = self.layout
        assert layout.reading is not None
        if layout.vendor is not None:
            if layout.order_position is not None:
                order = values[layout.order_position].strip()
                first = self.seen.get(order)
                if first is not None:
                    reject(
                        start,
                        f"{layout.vendor.label['order_id']} {order!r} is also on line "
                        f"{first & 0xFFFFFFFF}: an order's line items must be on consecutive lines",
                    )
                    return
            vrow = VendorRow(
                layout.vendor,
                values,
                start,
                layout.reading.dates,
                layout.reading.money,
                layout.reading.currency,
            )
            # The tally counts the check pass only (the write pass reads the same rows).
            records = layout.vendor.fmt.records
            if records == "orders":
                parsed = order_row(vrow, self.tally)
            elif records == "bookings":
                parsed = booking_row(vrow, self.tally, self.now)
            else:
                parsed = contact_row(vrow, self.tally)
            if parsed is None:
                reject(start, "; ".join(vrow.problems))
                return
            key, bundle = parsed
            if self._duplicate(
                key,
                bundle,
                start,
                reject,
                layout.vendor.label.get("order_id", layout.vendor.label.get("id", "id")),
            ):
                return
            if self.writer is not None:
                self.writer.add_bundle(*bundle)
            if self.spool is not None:
                self.spool.add(start, *bundle)
            return
        header = layout.generic
        assert header is not None
        if self.writer is not None and header.kind == "customers":
            self.writer.customer_fields = _customer_fields(header)
        cells = _Cells(header, values, layout.reading, start)
        if header.kind == "customers":
            gparsed = _customer_row(cells)
        elif header.kind == "orders":
            gparsed = _order_row(cells)
        else:
            gparsed = _event_row(cells, layout.known_kinds)
        if gparsed is None:
            reject(start, "; ".join(cells.problems))
            return
        key, content = gparsed
        fingerprint_ = hash(content) & 0xFFFFFFFFFFFFFFFF
        previous = self.seen.get(key)
        if previous is not None:
            if previous >> 32 == fingerprint_:
                assert self.result is not None
                self.result.duplicates += 1
            else:
                reject(start, _duplicate_reason(cells, key, previous & 0xFFFFFFFF))
            return
        self.seen[key] = (fingerprint_ << 32) | start
        if self.tally is not None:
            # The dry run's counts for a journey-layout file, as for a vendor export's
            # (it said "customers: 0; buyers: 0" for a file of orders): once per row kept
            # (a repeated row above was not).
            if isinstance(content, CustomerRecord):
                self.tally.customer(content)
            elif content:
                if header.kind == "orders":
                    self.tally.statuses[_order_status(content)] += 1
                self.tally.events(content[0].customer.value, content)
        if self.writer is not None:
            self.writer.add(content)
        if self.spool is not None:
            if isinstance(content, CustomerRecord):
                self.spool.add(start, content, ())
            else:
                self.spool.add(start, None, content)

    def _duplicate(
        self,
        key: str,
        content: object,
        start: int,
        reject: Callable[[int, str], None],
        label: str,
    ) -> bool:
        fingerprint_ = hash(content) & 0xFFFFFFFFFFFFFFFF
        previous = self.seen.get(key)
        if previous is None:
            self.seen[key] = (fingerprint_ << 32) | start
            return False
        if previous >> 32 == fingerprint_:
            assert self.result is not None
            self.result.duplicates += 1
        else:
            reject(
                start,
                f"{label} {key!r} is also on line {previous & 0xFFFFFFFF}, with other values "
                "(each id may appear once; an order's line items must be on consecutive lines)",
            )
        return True


def _order_status(events: tuple[_Event, ...]) -> str:
    """A generic order's status, from the events its row gave (_order_row): the
    order alone, or the order and its refund or cancellation."""
    if len(events) == 1:
        return "paid"
    order, back = events[0], events[-1]
    if back.kind == "cancellation":
        return "cancelled"
    return "refunded" if back.amount_cents == order.amount_cents else "partially refunded"


def _customer_fields(header: _Header) -> frozenset[str]:
    """Which CustomerRecord fields a customers file actually provides."""
    present = set(header.index)
    fields = {f for f in ("email", "first_seen", "channel", "phone") if f in present}
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
    mapping: dict[str, str] | None = None,
    timezone: str | None = None,
    date_format: str | None = None,
    currencies: dict[str, Decimal] | None = None,
    dry_run: bool = False,
    day_first: bool | None = None,
    commit: Callable[[], None] | None = None,
    batch: int | None = None,
    label: str | None = None,
) -> ImportResult:
    """Import one CSV file: a vendor's export or journey's generic layout.

    Runs in the caller's transaction; with `commit`, the write pass calls it
    after each batch (the caller's session.commit), so no transaction holds the
    write lock for long. Without it nothing is committed here, and on an
    exception the caller must roll back. The workspace and the source (kind
    "csv", name `source_name` or "csv") are created on the first write.

    all_or_nothing=True: the file is checked in full first; if any row is bad
    nothing is written (`result.written` is False) and the errors say why.
    all_or_nothing=False: good rows are written, bad rows are reported.
    dry_run: the check pass only; nothing is written (the result's tally says
    what the file holds).

    `mapping`: --map (column -> field; '' leaves a column out), remembered with
    the source for the layout when the import writes; without it, the mapping
    remembered for this layout applies. `timezone`: the zone of times written
    without one (default: the workspace's). `date_format`: a strptime format
    for dates the file's own style cannot settle. `day_first`: how numeric dates
    such as 03/04/2026 are read, with or without a time, when the file does not
    decide it (the Slack bot's day-first / month-first choice). `currencies`: rates of other
    currencies to the workspace's (--currency EUR=1.08).

    `label`: the file's name in every message and row error, when `path` is a
    temporary copy (a file sent in Slack is imported from one).

    `progress(lines_done, bytes_done, total_bytes)` is called every
    PROGRESS_EVERY lines and at the end; an all-or-nothing import reports the
    check pass, then the same steps again as it writes, so total_bytes is then
    twice the file size.
    """
    file_path = Path(path)
    file = label or str(path)
    if kind is not None and kind not in FILE_KINDS:
        raise JourneyError(f"Unknown file kind {kind!r}: use one of {', '.join(FILE_KINDS)}.")
    name = (source_name or DEFAULT_SOURCE_NAME).strip()
    if not name or len(name) > MAX_ID:
        raise JourneyError(f"The source name must be 1 to {MAX_ID} characters.")
    handle, size = _open(file_path)
    handle.close()
    if commit is not None and not dry_run:
        # End whatever the caller's transaction wrote (ensure_workspace): held open
        # through the check pass, it would keep SQLite's write lock for minutes.
        commit()
    workspace = session.get(Workspace, workspace_id)
    names, delimiter = _header_line(file_path, file)

    layout_key = fingerprint(names)
    explicit = dict(mapping or {})
    if not explicit:
        _, stored = _stored_maps(session, workspace_id, name)
        explicit = dict(stored.get(layout_key, {}))
    fmt: VendorFormat | None = detect(names, FORMATS) if kind is None else None
    layout = _Layout(file=file, width=len(names))
    if fmt is not None:
        layout.vendor = vendor_header(fmt, names, explicit, file)
        if fmt.line_items:
            layout.order_position = layout.vendor.index.get("order_id")
    else:
        layout.generic = _generic_layout(file, names, kind, explicit)
        layout.known_kinds = _known_kinds(session, workspace_id)

    try:
        tz = zone(timezone) if timezone else zone(workspace.timezone if workspace else "UTC")
    except ValueError as exc:
        raise JourneyError(f"--timezone: {exc}.") from None
    dates = DateReader(tz=tz, fmt=date_format)
    dates.day_first, money_style = _prescan(
        file_path,
        file,
        delimiter,
        layout.date_positions(),
        layout.amount_positions(),
        decide_dates=date_format is None and day_first is None,
    )
    if day_first is not None:
        dates.day_first = day_first
    rates = dict(currencies or {})
    currency = Currency(
        workspace=workspace.currency if workspace else "USD",
        rates=rates,
        file=file,
    )
    layout.reading = ValueReading(dates, MoneyReader(style=money_style), currency)

    tally = Tally()
    resume_from = 0
    sha = ""
    spool: Spool | None = None
    checked: ImportResult | None = None
    # The marker is the file and how it was read: the same file imported again
    # with another --timezone, --date-format, --currency or --map is a new import.
    reading = json.dumps(
        [
            explicit,
            timezone,
            date_format if day_first is None else [date_format, day_first],
            sorted((c, str(r)) for c, r in rates.items()),
            tz.tzname(None) if hasattr(tz, "tzname") else str(tz),
            currency.workspace,
        ],
        default=str,
    )
    how = ":" + hashlib.sha256(reading.encode()).hexdigest()[:16]
    seen_before = False
    if all_or_nothing and not dry_run and not mapping:
        source, _ = _stored_maps(session, workspace_id, name)
        markers = _markers(session, source.id) if source and source.id else {}
        if any(m.get("complete") for k, m in markers.items() if k.endswith(how)):
            # A file was imported in full into this source, read this way: when it is
            # this one, the check pass keeps nothing for a write (a re-import is a read).
            marker = markers.get(_file_sha256(file_path) + how)
            seen_before = bool(marker and marker.get("complete"))
    if all_or_nothing or dry_run:
        total = size if dry_run else 2 * size
        check = _Pass(file_path, layout, delimiter, name, None, progress, 0, total, tally)
        # Each row is parsed once: the write replays what the check pass parsed.
        spool = check.spool = None if dry_run or seen_before else Spool()
        try:
            checked = check.run()
        except BaseException:
            if spool is not None:
                spool.close()
            raise
        checked.dry_run = dry_run
        if checked.rejected or dry_run:
            if spool is not None:
                spool.close()
            if progress is not None:
                progress(checked.lines, total, total)
            return checked
        sha = check.sha256 + how
        check.seen.clear()  # one entry per order id: not needed by the write pass
        source, _ = _stored_maps(session, workspace_id, name)
        marker = _markers(session, source.id).get(sha) if source and source.id else None
        if marker and marker.get("complete") and not mapping:
            # This exact file was imported in full into this source: every row
            # would be unchanged, so nothing is read twice or written.
            checked.unchanged = int(marker.get("records", 0))
            checked.already_imported = True
            if spool is not None:
                spool.close()
            if progress is not None:
                progress(checked.lines, total, total)
            return checked
        if marker and not marker.get("complete"):
            resume_from = int(marker.get("line", 0))
        offset = size
    else:
        total, offset = size, 0

    layout.reading = ValueReading(dates, MoneyReader(style=money_style), currency)
    writer = _Writer(session, workspace_id, name, batch=batch or _BATCH)
    if layout.vendor is not None:
        writer.customer_fields = (
            customer_fields(layout.vendor)
            if layout.vendor.fmt.records == "contacts"
            else frozenset({"name"})
        )
    elif layout.generic is not None and layout.generic.kind == "customers":
        writer.customer_fields = _customer_fields(layout.generic)
    write_tally = None if all_or_nothing else tally
    write = _Pass(
        file_path,
        layout,
        delimiter,
        name,
        writer,
        progress,
        offset,
        total,
        write_tally,
        skip_until=resume_from,
    )
    if commit is not None:

        def commit_batch() -> None:
            source_id = writer.source_id
            if sha and source_id is not None:
                marker = {"line": write.line, "complete": False, "records": writer.records}
                _mark(session, workspace_id, source_id, sha, marker)
            commit()

        writer.commit = commit_batch
    if spool is not None and checked is not None:
        result = checked
        try:
            for line, customer, events in spool:
                if line == PROGRESS:
                    if progress is not None:
                        progress(customer, offset + events, total)
                elif line > resume_from:
                    write.line = line
                    writer.add_flat(customer, events)
        finally:
            spool.close()
    else:
        # No spool: a single pass that writes (all_or_nothing=False), or the file
        # changed after it was recognised as already imported.
        result = write.run()
        if all_or_nothing and result.rejected:
            raise JourneyError(f"{file} changed while it was being imported; import it again.")
    result.tally = tally
    result.resumed_after = resume_from
    writer.commit = None
    writer.refresh_source = resume_from > 0
    stats = writer.finish(commit)
    if mapping and writer.wrote:
        _remember_map(session, workspace_id, name, layout_key, dict(mapping))
    if sha and writer.source_id is not None:
        done = {"line": write.line, "complete": True, "records": writer.records}
        _mark(session, workspace_id, writer.source_id, sha, done)
    if commit is not None:
        commit()
    result.inserted, result.updated, result.unchanged = (
        stats.inserted,
        stats.updated,
        stats.unchanged,
    )
    result.written = writer.wrote
    return result


_BATCH = 5000


def _file_sha256(path: Path) -> str:
    """The file's SHA-256 (as the check pass computes it while reading)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _prescan(
    path: Path,
    file: str,
    delimiter: str,
    date_positions: list[int],
    amount_positions: list[int],
    decide_dates: bool,
) -> tuple[bool | None, str | None]:
    """Day-first or month-first, and the decimal style, from the file's first
    deciding values (see dates.decide_day_first and money.decimal_style).

    The scan stops as soon as both are decided: a later value in the other
    style then fails on its own row, so a mixed file is never misread.
    """
    day_first: bool | None = None
    style: str | None = None
    dates_done = not decide_dates or not date_positions
    money_done = not amount_positions
    if dates_done and money_done:
        return None, None
    numeric: list[str] = []
    date_cells = 0
    handle, _ = _open(path)
    with handle:
        reader = _Reader(file, handle)
        lines = reader.lines()
        next(lines, None)
        try:
            for values in csv.reader(lines, delimiter=delimiter):
                if not money_done:
                    for p in amount_positions:
                        if p < len(values) and values[p]:
                            style = decimal_style(values[p])
                            if style is not None:
                                money_done = True
                                break
                if not dates_done:
                    for p in date_positions:
                        cell = values[p] if p < len(values) else ""
                        if cell:
                            date_cells += 1
                        if cell and ("/" in cell or "." in cell[:6]):
                            if not numeric:
                                numeric.append(cell)
                            try:
                                decided = decide_day_first([values[p]], file)
                            except JourneyError:
                                continue
                            if decided is not None:
                                day_first, dates_done = decided, True
                                break
                if not numeric and date_cells >= 200:
                    dates_done = True  # ISO or words: a stray numeric date fails its own row
                if dates_done and money_done:
                    break
        except csv.Error:
            pass
    if not dates_done and numeric:
        decide_day_first(numeric[:1], file)  # raises: every numeric date is ambiguous
    return day_first, style
