"""A file checked, then imported, in sessions of their own: what a caller without a
session (the Slack bot) runs in a worker thread.

The rules are the CLI's (`journey import`): a dry run writes nothing; an import is all
or nothing, commits batch by batch with its resume marker, and never lands in a
workspace holding the demo store, where it would mix into the demo's numbers
(issue 19). The CLI may override that with --into-demo; callers of `import_file` may
not: a workspace holding the demo gets `DemoInTheWay`, and whoever asked is told how
to remove the demo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine

from journey.db import session_scope
from journey.errors import JourneyError
from journey.imports.common import ImportResult, ProgressFn
from journey.imports.run import import_csv
from journey.workspaces import demo_source, ensure_workspace


class DemoInTheWay(JourneyError):
    """The workspace holds the demo store: an import would mix into its numbers."""

    def __init__(self, workspace_id: str) -> None:
        super().__init__(
            f"Workspace {workspace_id!r} holds journey's demo store: imported data would be "
            "mixed into its numbers."
        )
        self.workspace_id = workspace_id


@dataclass(frozen=True)
class ImportOptions:
    """What `journey import` takes on the command line besides the file: --skip-bad,
    --map, --timezone, --date-format (or day-first / month-first) and --currency, for callers without one (the Slack
    bot gathers them from buttons and forms). `compact` / `from_compact` carry them in a
    button's value, so a click another process receives imports the file as checked."""

    skip_bad: bool = False
    mapping: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    date_format: str | None = None
    currencies: dict[str, Decimal] = field(default_factory=dict)
    # Day-first or month-first for numeric dates the file leaves open (the CLI says
    # it with --date-format %d/%m/%Y; this also reads such dates with a time).
    day_first: bool | None = None

    def replace(self, **changes: Any) -> ImportOptions:
        values = {
            "skip_bad": self.skip_bad,
            "mapping": dict(self.mapping),
            "timezone": self.timezone,
            "date_format": self.date_format,
            "currencies": dict(self.currencies),
            "day_first": self.day_first,
        }
        values.update(changes)
        return ImportOptions(**values)

    def kwargs(self) -> dict[str, Any]:
        """import_csv's keyword arguments for these options."""
        return {
            "all_or_nothing": not self.skip_bad,
            "mapping": dict(self.mapping) or None,
            "timezone": self.timezone,
            "date_format": self.date_format,
            "currencies": dict(self.currencies) or None,
            "day_first": self.day_first,
        }

    def compact(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.skip_bad:
            out["b"] = 1
        if self.mapping:
            out["m"] = self.mapping
        if self.timezone:
            out["z"] = self.timezone
        if self.date_format:
            out["d"] = self.date_format
        if self.currencies:
            out["c"] = {k: str(v) for k, v in self.currencies.items()}
        if self.day_first is not None:
            out["y"] = int(self.day_first)
        return out

    @classmethod
    def from_compact(cls, value: Any) -> ImportOptions:
        """What `compact` wrote; anything else in a forged value is left out."""
        if not isinstance(value, dict):
            return cls()
        mapping = value.get("m")
        rates: dict[str, Decimal] = {}
        for code, rate in (
            (value.get("c") or {}).items() if isinstance(value.get("c"), dict) else ()
        ):
            try:
                rates[str(code)[:8]] = Decimal(str(rate))
            except InvalidOperation:
                continue
        zone = value.get("z")
        style = value.get("d")
        return cls(
            skip_bad=value.get("b") == 1,
            mapping=(
                {str(k): str(v) for k, v in mapping.items()} if isinstance(mapping, dict) else {}
            ),
            timezone=str(zone) if isinstance(zone, str) and zone else None,
            date_format=str(style) if isinstance(style, str) and style else None,
            currencies=rates,
            day_first=bool(value["y"]) if value.get("y") in (0, 1) else None,
        )


def holds_demo(engine: Engine, workspace_id: str) -> bool:
    with session_scope(engine) as session:
        return demo_source(session, workspace_id) is not None


def check_file(
    engine: Engine,
    workspace_id: str,
    path: str | os.PathLike[str],
    *,
    label: str,
    options: ImportOptions | None = None,
) -> ImportResult:
    """`journey import --dry-run`: the whole file read and counted, nothing written."""
    kwargs = (options or ImportOptions()).kwargs()
    kwargs["all_or_nothing"] = True  # a dry run checks every row either way
    with session_scope(engine) as session:
        return import_csv(session, workspace_id, path, dry_run=True, label=label, **kwargs)


def import_file(
    engine: Engine,
    workspace_id: str,
    path: str | os.PathLike[str],
    *,
    label: str,
    progress: ProgressFn | None = None,
    options: ImportOptions | None = None,
) -> ImportResult:
    """`journey import` (all or nothing unless `options.skip_bad`, committed batch by
    batch); refuses a workspace holding the demo store with DemoInTheWay."""
    with session_scope(engine) as session:
        if demo_source(session, workspace_id) is not None:
            raise DemoInTheWay(workspace_id)
        ensure_workspace(session, workspace_id)
        return import_csv(
            session,
            workspace_id,
            path,
            progress=progress,
            commit=session.commit,
            label=label,
            **(options or ImportOptions()).kwargs(),
        )
