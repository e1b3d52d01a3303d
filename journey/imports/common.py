"""What every part of the importer shares: file kinds, limits, results."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

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


class Columns(Protocol):
    """What a row reader needs of a header: where each journey field is, and its name."""

    @property
    def index(self) -> Mapping[str, int]: ...  # journey field -> column position

    @property
    def label(self) -> Mapping[str, str]: ...  # journey field -> the column's name in the file


class RowCells:
    """One row's values by journey field, collecting every problem of the row: the cell
    reading the generic and the vendor importers share (each adds its own dates and
    amounts), so a missing or overlong value is said the same way in both."""

    def __init__(self, header: Columns, values: list[str], line: int) -> None:
        self.header = header
        self.values = values
        self.line = line
        self.problems: list[str] = []

    def _label(self, name: str) -> str:
        return self.header.label.get(name, name)

    def text(self, name: str, *, required: bool = False, max_len: int = 0) -> str | None:
        i = self.header.index.get(name)
        if i is None and not required:
            return None  # the file has no such column (the common case for optional ones)
        value = self.values[i].strip() if i is not None and i < len(self.values) else ""
        if not value:
            if required:
                self.problems.append(f"{self._label(name)} is empty")
            return None
        if max_len and len(value) > max_len:
            self.problems.append(f"{self._label(name)} is longer than {max_len} characters")
            return None
        return value


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
