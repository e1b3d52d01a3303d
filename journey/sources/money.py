"""Money as the store keeps it: decimal strings in the smallest unit of their currency.

Shared by the connectors whose APIs send amounts as decimal strings ("12.50"):
WooCommerce and Shopify. Stripe already sends minor units.
"""

from __future__ import annotations

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
