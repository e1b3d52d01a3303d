"""Dates, money and column names as vendors write them (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from journey.errors import JourneyError
from journey.imports.columns import carries_values
from journey.imports.dates import DateReader, decide_day_first, zone
from journey.imports.money import Currency, MoneyReader, parse_rate


@pytest.mark.parametrize(
    ("value", "time", "tz", "expected"),
    [
        ("2026-05-01 10:00:00 +0200", None, None, datetime(2026, 5, 1, 8, 0, tzinfo=UTC)),
        ("2026-06-08 14:05", None, "UTC", datetime(2026, 6, 8, 14, 5, tzinfo=UTC)),
        (
            "06/08/2026",
            "2:30:00 PM",
            "Pacific Time (US & Canada)",
            datetime(2026, 6, 8, 21, 30, tzinfo=UTC),
        ),
        ("June 8, 2026", None, "UTC", datetime(2026, 6, 8, tzinfo=UTC)),
        ("June 08, 2026", None, "Europe/Paris", datetime(2026, 6, 7, 22, 0, tzinfo=UTC)),
        ("January 14, 2027 2:00 pm", None, "UTC", datetime(2027, 1, 14, 14, 0, tzinfo=UTC)),
        (
            "2026-01-31T14:05:09+01:00",
            None,
            "America/New_York",
            datetime(2026, 1, 31, 13, 5, 9, tzinfo=UTC),
        ),
    ],
)
def test_vendor_dates(value, time, tz, expected):
    reader = DateReader(day_first=False)
    assert reader.read(value, time, zone(tz) if tz else None) == expected


def test_day_first_from_the_file():
    assert decide_day_first(["03/04/2026", "25/04/2026"], "f.csv") is True
    assert decide_day_first(["03/04/2026", "04/25/2026"], "f.csv") is False
    assert decide_day_first(["2026-04-03"], "f.csv") is None
    with pytest.raises(JourneyError, match="--date-format"):
        decide_day_first(["03/04/2026", "05/06/2026"], "f.csv")
    with pytest.raises(JourneyError, match="mix day/month"):
        decide_day_first(["25/04/2026", "04/25/2026"], "f.csv")
    day_first = DateReader(day_first=True)
    assert day_first.read("03/04/2026").date().isoformat() == "2026-04-03"
    with pytest.raises(ValueError, match="could be day/month or month/day"):
        DateReader().read("03/04/2026")


def test_unknown_zone_is_named():
    with pytest.raises(ValueError, match="'Mars Time' is not a time zone"):
        zone("Mars Time")


@pytest.mark.parametrize(
    ("value", "cents", "currency"),
    [
        ("1250.00", 125000, None),
        ("$1,250.00", 125000, None),
        ("-$0.95", -95, None),
        ("(3.00)", -300, None),
        ("12.50 EUR", 1250, "EUR"),
        ("€12,50", 1250, "EUR"),
        ("1.234,50", 123450, None),
        ("1 234,50 €", 123450, "EUR"),
        ("£7", 700, "GBP"),
        ("1,234", 123400, None),
    ],
)
def test_vendor_money(value, cents, currency):
    assert MoneyReader().read(value) == (cents, currency)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.234", "ambiguous"),
        ("12.5055", "more than 2 decimals"),
        ("abc", "not an amount"),
        ("--5", "not an amount"),
    ],
)
def test_money_refused(value, message):
    with pytest.raises(ValueError, match=message):
        MoneyReader().read(value)


def test_a_file_keeps_one_decimal_style():
    reader = MoneyReader(style="point")
    assert reader.read("10.50")[0] == 1050
    with pytest.raises(ValueError, match="uses a decimal comma"):
        reader.read("10,50")
    comma = MoneyReader(style="comma")
    with pytest.raises(ValueError, match="uses a decimal point"):
        comma.read("10.50")


def test_currency_conversion_and_refusal():
    usd = Currency("USD", {"EUR": Decimal("1.10")}, "f.csv")
    assert usd.convert(1000, "EUR") == 1100
    assert usd.convert(1000, None) == 1000 and usd.convert(1000, "USD") == 1000
    with pytest.raises(JourneyError, match="amounts are in GBP"):
        usd.convert(1000, "GBP", 7)
    assert parse_rate("eur=1.08") == ("EUR", Decimal("1.08"))
    with pytest.raises(ValueError, match=r"EUR=1\.08"):
        parse_rate("EUR")


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("Created date (UTC)", True),
        ("Paid at", True),
        ("Amount Refunded", True),
        ("Financial Status", True),
        ("Lifecycle Stage", True),
        ("Net Sales", True),
        ("Billing Street", False),
        ("Lineitem sku", False),
        ("Tax 1 Name", False),
        ("Payment Method", False),
        ("Notes", False),
        ("Phone", False),
    ],
)
def test_which_columns_carry_values(column, values):
    assert carries_values(column) is values
