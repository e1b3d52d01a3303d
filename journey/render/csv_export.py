"""Customers at risk as CSV: the long list a Slack message cuts with "and N more".

A renderer like the others: it reads a report object, never the store.
"""

from __future__ import annotations

import csv
import io

from journey.reports import ChurnReport, RetentionReport


def _money(cents: int | None) -> str:
    return "" if cents is None else f"{cents / 100:.2f}"


def at_risk_csv(report: RetentionReport | ChurnReport) -> str:
    """Every at-risk customer of the report, most valuable first, one row each."""
    out = io.StringIO()
    writer = csv.writer(out)
    head = ["customer_id", "name", "email", "last_purchase", "days_since"]
    if isinstance(report, ChurnReport):
        writer.writerow(
            [
                *head,
                "purchases",
                "revenue",
                "p_alive",
                f"expected_purchases_{report.horizon_days}d",
                f"expected_value_{report.value_days}d",
                "value_at_risk",
            ]
        )
        for c in report.at_risk:
            writer.writerow(
                [
                    c.external_id,
                    c.name or "",
                    c.email or "",
                    c.last_purchase.date().isoformat(),
                    f"{c.days_since_purchase:.0f}",
                    c.purchases,
                    _money(c.revenue_cents),
                    "" if c.p_alive is None else f"{c.p_alive:.4f}",
                    "" if c.expected_purchases is None else f"{c.expected_purchases:.3f}",
                    _money(c.expected_value_cents),
                    _money(c.value_at_risk_cents),
                ]
            )
        return out.getvalue()
    writer.writerow([*head, "usual_gap_days", "purchases", "revenue", "value_at_risk"])
    for a in report.at_risk:
        writer.writerow(
            [
                a.external_id,
                a.name or "",
                a.email or "",
                a.last_purchase.date().isoformat(),
                f"{a.days_since_purchase:.0f}",
                f"{a.usual_gap_days:.0f}",
                a.purchases,
                _money(a.revenue_cents),
                _money(a.value_at_risk_cents),
            ]
        )
    return out.getvalue()
