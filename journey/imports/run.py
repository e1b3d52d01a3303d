"""One file's import: two passes (check, then write) over the streamed file."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from sqlmodel import Session

from journey.errors import JourneyError
from journey.imports.common import (
    DEFAULT_SOURCE_NAME,
    FILE_KINDS,
    MAX_ERRORS,
    MAX_ID,
    PROGRESS_EVERY,
    FileKind,
    ImportResult,
    ProgressFn,
    RowError,
)
from journey.imports.generic import (
    _Cells,
    _customer_row,
    _detect,
    _event_row,
    _Header,
    _order_row,
    _Parsed,
)
from journey.imports.reading import _delimiter, _open, _Reader
from journey.imports.writer import _Writer
from journey.models import Workspace
from journey.stages import KNOWN_KINDS, StageModel


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
