"""Customers at risk as CSV: the long list a Slack message cuts with "and N more".

A renderer like the others: it reads a report object, never the store.

Cells never start a formula. Excel, LibreOffice and Google Sheets run a cell that
begins with `=`, `+`, `-` or `@` (and tab or carriage return, which some of them skip
before reading one) as a formula, so a customer named `=HYPERLINK("https://evil.example",
"Click")` would become a live link, or worse, in the manager's spreadsheet. OWASP's
"CSV Injection" page (owasp.org/www-community/attacks/CSV_Injection) recommends
prefixing such cells with a single quote, which the spreadsheet reads as "this is
text" and does not display; that is what `csv_cell` does to every text cell (a NUL
start too, which OWASP ASVS 5.0 requirement 1.2.10 adds). The csv module's quoting
(RFC 4180) keeps a comma or quote inside a name from starting a new cell mid-value. The numbers we
compute (money, days, probabilities) are written through `number()`, so a negative
amount stays `-5.00`, a number the spreadsheet can add up, not the text `'-5.00`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from journey.imports.common import RowError
from journey.render.format import sources_label
from journey.reports import ChurnReport, RetentionReport, ValueReport

# OWASP's list: the characters a spreadsheet may read as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")


class CsvNumber(str):
    """A cell journey formatted from a number: written as it is, never neutralised."""

    __slots__ = ()


def number(value: float, places: int = 0) -> CsvNumber:
    return CsvNumber(f"{value:.{places}f}")


def csv_cell(value: str | float | None) -> str:
    """One cell: numbers as they are, text with a leading `'` when it could start a formula."""
    if value is None:
        return ""
    if isinstance(value, CsvNumber | int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _row(cells: Iterable[str | float | None]) -> list[str]:
    return [csv_cell(c) for c in cells]


def _money(cents: int | None) -> CsvNumber | None:
    return None if cents is None else number(cents / 100, 2)


def at_risk_csv(report: RetentionReport | ChurnReport) -> str:
    """Every at-risk customer of the report, most valuable first, one row each."""
    out = io.StringIO()
    writer = csv.writer(out)
    head = ["customer_id", "name", "email", "last_purchase", "days_since"]
    if isinstance(report, ChurnReport):
        writer.writerow(
            _row(
                [
                    *head,
                    "purchases",
                    "revenue",
                    "p_alive",
                    f"expected_purchases_{report.horizon_days}d",
                    f"expected_value_{report.value_days}d",
                    "value_12m",
                    "value_at_risk",
                    "sources",
                ]
            )
        )
        for c in report.at_risk:
            writer.writerow(
                _row(
                    [
                        c.external_id,
                        c.name,
                        c.email,
                        c.last_purchase.date().isoformat(),
                        number(c.days_since_purchase),
                        c.purchases,
                        _money(c.revenue_cents),
                        None if c.p_alive is None else number(c.p_alive, 4),
                        None if c.expected_purchases is None else number(c.expected_purchases, 3),
                        _money(c.expected_value_cents),
                        _money(c.value_12m_cents),
                        _money(c.value_at_risk_cents),
                        sources_label(c.sources),
                    ]
                )
            )
        return out.getvalue()
    writer.writerow(
        _row([*head, "usual_gap_days", "purchases", "revenue", "value_at_risk", "sources"])
    )
    for a in report.at_risk:
        writer.writerow(
            _row(
                [
                    a.external_id,
                    a.name,
                    a.email,
                    a.last_purchase.date().isoformat(),
                    number(a.days_since_purchase),
                    number(a.usual_gap_days),
                    a.purchases,
                    _money(a.revenue_cents),
                    _money(a.value_at_risk_cents),
                    sources_label(a.sources),
                ]
            )
        )
    return out.getvalue()


def value_csv(report: ValueReport) -> str:
    """The value report's channel table, one row per channel, amounts in currency units."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "channel",
            "customers",
            "buyers",
            "conversion",
            "revenue_so_far",
            f"value_per_customer_{report.horizon_months}m",
            "value_per_customer_low95",
            "value_per_customer_high95",
            f"value_per_buyer_{report.horizon_months}m",
            "value_per_buyer_low95",
            "value_per_buyer_high95",
        ]
    )
    for ch in report.channels:
        low_c, high_c = ch.value_per_customer_interval or (None, None)
        low_b, high_b = ch.value_per_buyer_interval or (None, None)
        writer.writerow(
            _row(
                [
                    ch.channel,
                    ch.customers,
                    ch.buyers,
                    None if ch.conversion.value is None else number(ch.conversion.value, 4),
                    _money(ch.revenue_cents),
                    _money(ch.value_per_customer_cents),
                    _money(low_c),
                    _money(high_c),
                    _money(ch.value_per_buyer_cents),
                    _money(low_b),
                    _money(high_b),
                ]
            )
        )
    return out.getvalue()


def skipped_rows_csv(errors: Iterable[RowError]) -> str:
    """The rows an import skipped as bad: their line in the file (the header is line 1)
    and every reason, one row each, so the person can find and fix them."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "reason"])
    for error in errors:
        writer.writerow(_row([CsvNumber(str(error.line)), error.reason]))
    return out.getvalue()
