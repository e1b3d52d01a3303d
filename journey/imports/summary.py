"""What a dry run found, as labelled facts: one object for every screen that shows it.

`journey import --dry-run` prints it as text (journey/render/imports.py) and the Slack
bot shows it as blocks before its *Import* button (bot/blocks/imports.py): both render
this object, so a file checked in Slack reads the same as on the command line. Built
from an ImportResult; it queries nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from journey.imports.common import ImportResult

FIRST_BAD_ROWS = 5


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) / 100:,.2f}"


@dataclass(frozen=True)
class DryRunSummary:
    """`facts` are (label, text) in the order the CLI prints them; `bad_rows` the first
    FIRST_BAD_ROWS rejected rows as (line, reason) of `rejected` in all."""

    file: str
    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    rejected: int = 0
    rows: int = 0

    @property
    def importable(self) -> bool:
        """Whether an import (all or nothing, as by default) would write the file."""
        return self.rejected == 0 and self.rows > 0

    @property
    def good_rows(self) -> int:
        """Rows an import that skips the bad ones (--skip-bad) would write."""
        return max(self.rows - self.rejected, 0)


def _article(word: str) -> str:
    """'an orders file', 'a customers file' (the title said 'a orders file')."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def dry_run_summary(result: ImportResult) -> DryRunSummary:
    tally = result.tally
    facts: list[tuple[str, str]] = [
        ("rows", f"{result.rows}" + (f" ({result.lines} lines)" if tally and tally.lines else ""))
    ]
    if tally is not None:
        if tally.statuses:
            counted = ", ".join(f"{n} {status}" for status, n in tally.statuses.most_common())
            facts.append(("by status", counted))
        if tally.kinds:
            facts.append(("events", ", ".join(f"{n} {k}" for k, n in tally.kinds.most_common())))
        if tally.first_at is not None and tally.last_at is not None:
            facts.append(("dates", f"{tally.first_at:%Y-%m-%d} to {tally.last_at:%Y-%m-%d} (UTC)"))
        facts.append(
            (
                "customers",
                f"{len(tally.customers)}; buyers: {tally.buyers}, "
                f"repeat buyers: {tally.repeat_buyers}",
            )
        )
        if tally.sales:
            facts.append(("revenue (after refunds)", money(tally.revenue_cents)))
    if result.known_columns:
        facts.append(("not imported", "; ".join(f"{c} ({why})" for c, why in result.known_columns)))
    if result.ignored_columns:
        facts.append(("ignored columns", ", ".join(result.ignored_columns)))
    return DryRunSummary(
        file=result.file,
        title=result.format_title or f"{_article(result.kind)} {result.kind} file (journey layout)",
        facts=facts,
        bad_rows=[(e.line, e.reason) for e in result.errors[:FIRST_BAD_ROWS]],
        rejected=result.rejected,
        rows=result.rows,
    )
