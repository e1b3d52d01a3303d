"""Reading one cell's value: dates and money."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from journey.imports.common import MAX_CENTS

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?")
_TIME_HELP = "use ISO 8601, e.g. 2026-01-31, 2026-01-31 14:05 or 2026-01-31T14:05:00+01:00"
_MONEY = re.compile(r"^-?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?$")
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d{1,2}$")
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}\s*|\s*[A-Z]{3}$")


def parse_time(value: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime (naive means UTC).

    Only the year-month-day order is accepted: 03/04/2026 is March or April
    depending on who wrote it, and a guess would corrupt the funnel silently.
    """
    if not _DATE.match(value):
        raise ValueError(f"{value!r} is not a date ({_TIME_HELP})")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date ({_TIME_HELP})") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_cents(value: str) -> int:
    """A decimal amount in currency units ("1,234.50", "$12.50", "12.5 EUR") as cents.

    ',' is accepted only as a thousands separator in 3-digit groups, so
    "1,234" is 1234.00 and the decimal comma "12,50" is rejected rather than
    read as 1250.00. Decimal keeps the conversion exact.
    """
    text = "".join(ch for ch in value if unicodedata.category(ch) != "Sc").strip()
    text = _CURRENCY_CODE.sub("", text).strip()
    if _DECIMAL_COMMA.match(text):
        raise ValueError(f"{value!r}: use '.' as the decimal separator (e.g. 12.50)")
    if not text or text in {"-", ".", "-."} or not _MONEY.match(text):
        raise ValueError(f"{value!r} is not an amount (use a number like 1234.50)")
    try:
        cents = Decimal(text.replace(",", "")) * 100
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount (use a number like 1234.50)") from None
    if cents != cents.to_integral_value():
        raise ValueError(f"{value!r} has more than 2 decimals")
    if abs(cents) >= MAX_CENTS:
        raise ValueError(f"{value!r} is too large to be an amount")
    return int(cents)
