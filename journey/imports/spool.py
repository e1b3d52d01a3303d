"""Parsed rows kept on disk between the check pass and the write, so each row is parsed once.

Why: an all-or-nothing import checks the whole file before it writes anything (a
bad row on the last line must leave the store untouched), and the write pass used
to read and parse the file a second time. Parsing is most of an import's Python
work, so the check pass now keeps what it parsed, as flat tuples pickled in chunks
into an anonymous temporary file (unlinked on creation, readable by this process
only; nothing but this module reads it), and the write replays them. Memory stays
constant: one chunk at a time is held.

An entry is `(line, customer, events)`: the physical line of the row (the resume
point), the customer record as `(external_id, name, email, first_seen, channel,
phone)` or None, and the row's events as `(external_id, customer, by_email, kind,
occurred_at, channel, amount_cents, phone)` (phone: the number the row gives its
customer, a booking export's). A progress report of the check pass is
kept as `(-1, lines, bytes_done)`, so the write reports the same steps.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from journey.imports.generic import _Event
from journey.ingest import CustomerRecord

FlatCustomer = tuple[str, str | None, str | None, Any, str | None, str | None]
FlatEvent = tuple[str, str, bool, str, Any, str | None, int | None, str | None]
Entry = tuple[int, Any, Any]
PROGRESS = -1
_CHUNK = 4096


def flat_customer(record: CustomerRecord | None) -> FlatCustomer | None:
    if record is None:
        return None
    return (
        record.external_id,
        record.name,
        record.email,
        record.first_seen,
        record.channel,
        record.phone,
    )


def flat_events(events: tuple[_Event, ...]) -> tuple[FlatEvent, ...]:
    return tuple(
        (
            e.external_id,
            e.customer.value,
            e.customer.by_email,
            e.kind,
            e.occurred_at,
            e.channel,
            e.amount_cents,
            e.customer.phone,
        )
        for e in events
    )


class Spool:
    """An append-then-replay store of parsed rows (see the module docstring)."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="journey-import-")  # noqa: SIM115 (closed by close())
        self._buffer: list[Entry] = []
        self.rows = 0

    def add(self, line: int, customer: CustomerRecord | None, events: tuple[_Event, ...]) -> None:
        self._buffer.append((line, flat_customer(customer), flat_events(events)))
        self.rows += 1
        if len(self._buffer) >= _CHUNK:
            self._dump()

    def progress(self, lines: int, bytes_done: int) -> None:
        self._buffer.append((PROGRESS, lines, bytes_done))

    def _dump(self) -> None:
        if self._buffer:
            pickle.dump(self._buffer, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._buffer = []

    def __iter__(self) -> Iterator[Entry]:
        self._dump()
        self._file.flush()
        self._file.seek(0)
        while True:
            try:
                chunk: list[Entry] = pickle.load(self._file)
            except EOFError:
                return
            yield from chunk

    def close(self) -> None:
        self._buffer = []
        self._file.close()
