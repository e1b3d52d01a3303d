"""Text for an import's result and its dry run (the CLI prints it; the bot may post it).

A renderer: it formats an ImportResult (the dry run through its DryRunSummary,
journey/imports/summary.py, which the bot renders as blocks) and queries nothing.
"""

from __future__ import annotations

from journey.imports.common import ImportResult
from journey.imports.summary import dry_run_summary
from journey.imports.summary import money as _money


def count(n: int, noun: str) -> str:
    """`1 bad row`, `2 bad rows`; digits as the line's other counts print them (6000 new)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def dry_run(result: ImportResult) -> str:
    """What an import of this file would do (nothing was written)."""
    found = dry_run_summary(result)
    lines = [f"{found.file}: {found.title}"]
    lines.extend(f"  {label}: {text}" for label, text in found.facts)
    if found.rejected:
        lines.append(f"  bad rows: {found.rejected}; the first ones:")
        lines.extend(f"    line {line}: {reason}" for line, reason in found.bad_rows)
    lines.append("  Nothing was written (dry run).")
    return "\n".join(lines)


def summary(result: ImportResult, skip_bad: bool, *, cli: bool = True) -> str:
    """One line on what an import did. `cli=False` (the Slack bot) leaves out the
    command-line flags, which a person in Slack cannot type."""
    path = result.file
    if result.rejected and not skip_bad:
        them = "it" if result.rejected == 1 else "them"
        fix = (
            f"Fix {them}, or rerun with --skip-bad to import the good rows."
            if cli
            else f"Fix {them} in the file and send it again."
        )
        bad = count(result.rejected, "bad row")
        return f"{path}: nothing imported, {bad} of {result.rows}. {fix}"
    what = result.format_title or result.kind
    if result.already_imported:
        return (
            f"{path}: {what}: this exact file was imported in full before; nothing changed "
            f"({count(result.unchanged, 'record')} unchanged)."
        )
    records = result.inserted + result.updated + result.unchanged
    counted = count(result.rows, "row")
    good = result.rows - result.rejected - result.duplicates
    if result.kind != "customers" and records != good:
        # "6 rows: 7 new" read as a miscount: a refunded order is two events. The rows
        # that give them are the good ones: bad and repeated rows give none.
        if good != result.rows:
            counted += f" ({good} imported)"
        counted += (
            f" giving {count(records, 'event')} (an order and its refund or cancellation are two)"
        )
    text = (
        f"{path}: {what}, {counted}: {result.inserted} new, "
        f"{result.updated} changed, {result.unchanged} unchanged"
    )
    if result.duplicates:
        text += f", {count(result.duplicates, 'repeated row')} skipped"
    if result.rejected:
        text += f", {count(result.rejected, 'bad row')} skipped"
    text += "."
    if result.resumed_after:
        text += f" Resumed after line {result.resumed_after}, where an interrupted import stopped."
    tally = result.tally
    if result.format_title and tally is not None:
        # "Not purchases: 1 pending", not "1 pending (not a purchase)" said twice.
        skipped = [
            f"{n} {status.removesuffix(' (not a purchase)')}"
            for status, n in tally.statuses.items()
            if "not a purchase" in status
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
            why = "--dry-run says why" if cli else "the check said why"
            text += f" {len(columns)} value columns not imported ({why})."
    if result.ignored_columns:
        if len(result.ignored_columns) <= 4:
            text += f" Ignored columns: {', '.join(result.ignored_columns)}."
        else:
            lists = "--dry-run lists them" if cli else "the check listed them"
            text += f" {len(result.ignored_columns)} other columns ignored ({lists})."
    return text
