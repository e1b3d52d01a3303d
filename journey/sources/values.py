"""The values store APIs send as text, read the way the store keeps them.

Money as decimal strings ("12.50") becomes the currency's smallest unit, and ISO 8601
times become epoch seconds. Shared by WooCommerce and Shopify (Stripe already sends
minor units and epochs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

# ISO 4217 currencies without minor units (amounts are whole units, like Stripe's)
ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "ISK",
        "JPY",
        "KMF",
        "KRW",
        "PYG",
        "RWF",
        "UGX",
        "UYI",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)


def minor_units(amount: Any, currency: Any) -> int | None:
    """A decimal string ("12.50") in the currency's smallest unit (1250; JPY "1500" is 1500)."""
    try:
        value = abs(Decimal(str(amount)))
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite():
        return None
    scale = 1 if str(currency or "").upper() in ZERO_DECIMAL else 100
    return int((value * scale).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def iso_epoch(value: Any, *, naive_is_utc: bool = False) -> int | None:
    """An ISO 8601 time ("2026-01-01T10:00:00Z") as epoch seconds; None when it is not one.

    A time without a zone is UTC only where the API says so (WooCommerce's `*_gmt`
    fields); elsewhere it is refused rather than guessed.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        if not naive_is_utc:
            return None
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
