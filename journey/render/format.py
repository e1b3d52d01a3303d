"""How numbers read to a person, shared by every text-like renderer (terminal, Slack)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Protocol

from journey.periods import Period
from journey.stats import Rate

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "JPY": "¥"}


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def rate(r: Rate | None, interval: bool = True) -> str:
    """`42.0% (38.1-46.0%)`: the value and its 95% interval."""
    if r is None or r.value is None:
        return "n/a"
    if not interval or r.low is None or r.high is None:
        return pct(r.value)
    return f"{pct(r.value)} ({r.low * 100:.1f}-{r.high * 100:.1f}%)"


def points(delta: float | None) -> str:
    if delta is None:
        return "n/a"
    return f"{delta:+.1f} pts"


def relative_change(now: int | None, before: int | None) -> str:
    """`-43%`, or `n/a` when there is nothing to compare with."""
    if now is None or not before:
        return "n/a"
    return f"{(now - before) / before * 100:+.0f}%"


def money(cents: int | float | None, currency: str = "USD") -> str:
    if cents is None:
        return "n/a"
    amount = cents / 100
    symbol = _SYMBOLS.get(currency.upper())
    text = f"{abs(amount):,.0f}" if abs(amount) >= 100 else f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"


def hours(value: float | None) -> str:
    """A duration in the unit a person would use: hours under two days, then days."""
    if value is None:
        return "n/a"
    if value < 48:
        return f"{value:.0f} h"
    return f"{value / 24:.1f} days"


def day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def period(p: Period) -> str:
    last_day = p.end - timedelta(seconds=1)
    text = f"{day(p.start)} to {day(last_day)}"
    if p.partial is not None:
        text += f" ({p.partial[0]} of {p.partial[1]} days so far)"
    return text


def versus(p: Period) -> str:
    """What a period's changes are measured against, in words: `the previous 30 days`,
    or `the same 7 days of the previous month` for a month under way."""
    if p.compare is not None:
        return p.compare.label
    return f"the previous {p.length.days} days"


# A Slack team (T...) or Enterprise Grid (E...) id: capitals and digits.
_TEAM_ID = re.compile(r"[TE][A-Z0-9]+")


def owner(report: object, ids: bool = True) -> str:
    """Whose numbers: `Maple Street Vet (demo data)`, `myshop`. Every report header starts
    with it, so demo figures are never read as a business's own. `ids=False` gives ""
    for a workspace with no name but its Slack team id (T0123ABCD means nothing in Slack);
    a name the operator chose as the id (`--workspace myshop`, the console's) shows."""
    from journey.reports import Business

    b = getattr(report, "business", None)
    if not isinstance(b, Business):
        return str(getattr(report, "workspace_id", "")) if ids else ""
    if not ids and not b.demo and b.name == b.workspace_id and _TEAM_ID.fullmatch(b.name):
        return ""
    if b.mixed:
        return f"{b.name} (demo data mixed with your own)"
    if b.demo:
        return f"{b.name} (demo data)"
    return b.name


def count(n: int, noun: str) -> str:
    """`1 purchase`, `2 purchases`: a count with its noun in the right number."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


class Listed(Protocol):
    """A customer in a list (at risk, overdue, to ask for a review)."""

    @property
    def name(self) -> str | None: ...
    @property
    def external_id(self) -> str: ...
    @property
    def sources(self) -> tuple[str, ...]: ...


def sources_label(sources: tuple[str, ...]) -> str:
    """The sources a person's records come from: `crm + shop`."""
    return " + ".join(sources)


def customer_label(item: Listed) -> str:
    """A listed customer: the name (else the source's id), with the sources the person
    appears in when the workspace has several: `Ann Lee (crm + shop)`."""
    name = item.name or item.external_id
    return f"{name} ({sources_label(item.sources)})" if item.sources else name
