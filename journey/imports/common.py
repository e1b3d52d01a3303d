"""What every part of the importer shares: file kinds, limits, results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from journey.errors import JourneyError

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


@dataclass(frozen=True)
class RowError:
    """A rejected row: `line` is the physical line in the file (the header is line 1)."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class NeedsOption(JourneyError):
    """A file the import cannot read without one of `journey import`'s options: its
    words name the flag, and its fields say what a form must ask for, so a caller
    without a command line (the Slack bot) can ask for the same thing.

    `option`: "date_format" (day-first or month-first), "currency" (the rate of
    `currency` in `workspace_currency`) or "map" (what each of `columns` is, one of
    `fields`, or left out)."""

    def __init__(
        self,
        message: str,
        option: str,
        *,
        columns: list[str] | None = None,
        fields: list[str] | None = None,
        currency: str = "",
        workspace_currency: str = "",
    ) -> None:
        super().__init__(message)
        self.option = option
        self.columns = list(columns or [])
        self.fields = list(fields or [])
        self.currency = currency
        self.workspace_currency = workspace_currency


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
    # Vendor files: the format recognised, the value columns it deliberately
    # leaves out (column, why), and what the file holds (a vendor.Tally).
    format_title: str | None = None
    known_columns: list[tuple[str, str]] = field(default_factory=list)
    tally: Any = None
    lines: int = 0  # physical rows read, line items included
    dry_run: bool = False
    # The same file was imported in full before: nothing was read twice or written.
    already_imported: bool = False
    # An interrupted import of this file was resumed after this line.
    resumed_after: int = 0

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    @property
    def errors_truncated(self) -> bool:
        return self.rejected > len(self.errors)
