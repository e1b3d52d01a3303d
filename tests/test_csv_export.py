"""CSV cells never start a formula (OWASP "CSV Injection"), and our numbers stay numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from journey.periods import Period
from journey.render.csv_export import at_risk_csv, csv_cell, number
from journey.reports import AtRiskCustomer, RetentionReport
from journey.stats import wilson

NOW = datetime(2026, 6, 15, tzinfo=UTC)
PERIOD = Period(NOW - timedelta(days=30), NOW, "last 30d")


@pytest.mark.parametrize(
    ("typed", "written"),
    [
        (
            '=HYPERLINK("https://evil.example","Click")',
            '\'=HYPERLINK("https://evil.example","Click")',
        ),
        ("+1 555 0100", "'+1 555 0100"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("Tom & Jerry", "Tom & Jerry"),
        ("O'Brien, Ann", "O'Brien, Ann"),
        ("a=b", "a=b"),  # only the first character matters
        ("", ""),
    ],
)
def test_text_cells_that_could_start_a_formula_get_a_leading_quote(typed, written):
    assert csv_cell(typed) == written


def test_numbers_we_write_stay_numbers_even_when_negative():
    assert csv_cell(number(-5, 2)) == "-5.00"
    assert csv_cell(-3) == "-3"
    assert csv_cell(None) == ""


def _customer(i: int, name: str, email: str | None, revenue: int) -> AtRiskCustomer:
    return AtRiskCustomer(i, f"-C{i}", name, email, NOW, 40.0, 20.0, False, 3, revenue, -250)


def test_the_at_risk_csv_neutralises_names_emails_and_ids_and_keeps_amounts_numeric():
    report = RetentionReport(
        workspace_id="T1",
        period=PERIOD,
        currency="USD",
        repeat_rate=wilson(1, 2),
        previous_repeat_rate=wilson(1, 2),
        cohorts=[],
        churn=wilson(0, 2),
        returning=1,
        previous_returning=1,
        at_risk_count=2,
        value_at_risk_cents=0,
        at_risk=[
            _customer(1, '=HYPERLINK("https://evil.example","Click")', "@evil.example", -1999),
            _customer(2, "Tom & Jerry, Ltd", "tom@example.com", 5000),
        ],
        typical_gap_days=30.0,
        at_risk_factor=2.0,
    )
    rows = list(csv.reader(io.StringIO(at_risk_csv(report))))
    head = rows[0]
    first = dict(zip(head, rows[1], strict=True))
    second = dict(zip(head, rows[2], strict=True))
    assert first["name"] == '\'=HYPERLINK("https://evil.example","Click")'
    assert first["email"] == "'@evil.example"
    assert first["customer_id"] == "'-C1"
    assert first["revenue"] == "-19.99" and first["value_at_risk"] == "-2.50"
    assert second["name"] == "Tom & Jerry, Ltd"  # quoted by the csv module, read back whole
    assert second["revenue"] == "50.00" and second["purchases"] == "3"
    # No cell of the file starts a formula, except numbers we wrote.
    for row in rows[1:]:
        for key, cell in zip(head, row, strict=True):
            if key not in ("revenue", "value_at_risk"):
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (key, cell)
