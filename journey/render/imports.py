"""Text for an import's result and its dry run (the CLI prints it; the bot may post it).

A renderer: it formats an ImportResult and queries nothing.
"""

from __future__ import annotations

from journey.imports.common import ImportResult

FIRST_BAD_ROWS = 5


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) / 100:,.2f}"


def dry_run(result: ImportResult) -> str:
    """What an import of this file would do (nothing was written)."""
    lines = [f"{result.file}: {result.format_title or f'a {result.kind} file (journey layout)'}"]
    tally = result.tally
    lines.append(
        f"  rows: {result.rows}" + (f" ({result.lines} lines)" if tally and tally.lines else "")
    )
    if tally is not None:
        if tally.statuses:
            counted = ", ".join(f"{n} {status}" for status, n in tally.statuses.most_common())
            lines.append(f"  by status: {counted}")
        if tally.kinds:
            kinds = ", ".join(f"{n} {kind}" for kind, n in tally.kinds.most_common())
            lines.append(f"  events: {kinds}")
        if tally.first_at is not None and tally.last_at is not None:
            lines.append(f"  dates: {tally.first_at:%Y-%m-%d} to {tally.last_at:%Y-%m-%d} (UTC)")
        lines.append(
            f"  customers: {len(tally.customers)}; buyers: {tally.buyers}, "
            f"repeat buyers: {tally.repeat_buyers}"
        )
        if tally.kinds.get("order"):
            lines.append(f"  revenue (after refunds): {_money(tally.revenue_cents)}")
    if result.known_columns:
        known = "; ".join(f"{c} ({why})" for c, why in result.known_columns)
        lines.append(f"  not imported: {known}")
    if result.ignored_columns:
        lines.append(f"  ignored columns: {', '.join(result.ignored_columns)}")
    if result.rejected:
        lines.append(f"  bad rows: {result.rejected}; the first ones:")
        lines.extend(f"    line {e.line}: {e.reason}" for e in result.errors[:FIRST_BAD_ROWS])
    lines.append("  Nothing was written (dry run).")
    return "\n".join(lines)


def summary(result: ImportResult, skip_bad: bool) -> str:
    """One line on what an import did."""
    path = result.file
    if result.rejected and not skip_bad:
        return (
            f"{path}: nothing imported, {result.rejected} bad rows of {result.rows}. "
            "Fix them, or rerun with --skip-bad to import the good rows."
        )
    what = result.format_title or result.kind
    if result.already_imported:
        return (
            f"{path}: {what}: this exact file was imported in full before; nothing changed "
            f"({result.unchanged} records unchanged)."
        )
    records = result.inserted + result.updated + result.unchanged
    counted = f"{result.rows} rows"
    if result.kind != "customers" and records != result.rows:
        # "6 rows: 7 new" read as a miscount: a refunded order is two events.
        counted += (
            f" giving {records} events (an order and its refund or cancellation are two)"
        )
    text = (
        f"{path}: {what}, {counted}: {result.inserted} new, "
        f"{result.updated} changed, {result.unchanged} unchanged"
    )
    if result.duplicates:
        text += f", {result.duplicates} repeated rows skipped"
    if result.rejected:
        text += f", {result.rejected} bad rows skipped"
    text += "."
    if result.resumed_after:
        text += f" Resumed after line {result.resumed_after}, where an interrupted import stopped."
    tally = result.tally
    if result.format_title and tally is not None:
        skipped = [
            f"{n} {status}" for status, n in tally.statuses.items() if "not a purchase" in status
        ]
        if tally.statuses.get("test"):
            skipped.append(f"{tally.statuses['test']} test")
        if tally.kinds.get("order"):
            text += (
                f" {tally.kinds['order']} orders from {tally.buyers} buyers "
                f"({tally.repeat_buyers} repeat), revenue {_money(tally.revenue_cents)}."
            )
        if skipped:
            text += f" Not purchases: {', '.join(skipped)}."
    if result.known_columns:
        columns = [c for c, _ in result.known_columns]
        if len(columns) <= 4:
            text += f" Not imported: {', '.join(columns)}."
        else:
            text += f" {len(columns)} value columns not imported (--dry-run says why)."
    if result.ignored_columns:
        if len(result.ignored_columns) <= 4:
            text += f" Ignored columns: {', '.join(result.ignored_columns)}."
        else:
            text += f" {len(result.ignored_columns)} other columns ignored (--dry-run lists them)."
    return text
