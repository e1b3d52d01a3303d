"""Money as vendors write it: `$1,250.00`, `-$0.95`, `1.234,50 €`, `12.50 EUR`, `(3.00)`.

Why per value and strict: a separator is read only where its meaning is
certain. `1.234,50` and `12,50` are a decimal comma; `1,234.50` and `1,234` use
a thousands comma; `1.234` (three decimals, or a thousands dot?) is refused
rather than guessed. A file that writes both `12.50` and `12,50` is refused as
a whole (`MoneyReader.mixed`), since one of the two readings is then wrong.
The currency a value names (a code, or a symbol that names one currency) is
returned so the import can refuse a file in another currency than the
workspace's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from journey.imports.common import MAX_CENTS, NeedsOption

_PLAIN = re.compile(r"^\s*(\d{1,15})(?:\.(\d{1,2}))?\s*$")
_POINT = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$|^\d+(?:\.\d+)?$|^\.\d+$")
_COMMA = re.compile(r"^\d{1,3}(?:\.\d{3})+(?:,\d{1,2})?$|^\d+,\d{1,2}$")
_SPACE_GROUPS = re.compile(r"(?<=\d)[\s\u00a0\u202f'](?=\d{3}\b)")
_CODE = re.compile(r"\b([A-Za-z]{3})\b")
SYMBOLS = {"€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW", "₺": "TRY", "₽": "RUB"}
# Symbols several currencies share: they name no currency on their own.
SHARED_SYMBOLS = {"$", "kr", "R$", "C$", "A$", "NZ$", "CHF", "Fr"}
_KNOWN_CODES = frozenset(
    [
        "USD",
        "EUR",
        "GBP",
        "CAD",
        "AUD",
        "NZD",
        "JPY",
        "CHF",
        "SEK",
        "NOK",
        "DKK",
        "PLN",
        "CZK",
        "HUF",
        "INR",
        "BRL",
        "MXN",
        "ZAR",
        "SGD",
        "HKD",
        "CNY",
        "KRW",
        "TRY",
        "RUB",
        "ILS",
        "AED",
        "SAR",
        "THB",
        "MYR",
        "PHP",
        "IDR",
        "TWD",
        "CLP",
        "COP",
        "PEN",
        "ARS",
        "RON",
        "BGN",
        "ISK",
    ]
)
_PREFIXED_DOLLARS = {"C$": "CAD", "A$": "AUD", "NZ$": "NZD", "R$": "BRL"}


@dataclass
class MoneyReader:
    """Reads one file's amounts, remembering which decimal style it saw first."""

    point_line: int | None = None
    comma_line: int | None = None
    mixed: bool = False
    # The file's decimal style, decided before the first pass from its first
    # amount with decimals ("point" or "comma"; None: none seen): a value in the
    # other style is then a bad row, not a silent misreading.
    style: str | None = None
    currencies: dict[str, int] = field(default_factory=dict)  # code -> first line

    def read(self, value: str, line: int = 0) -> tuple[int, str | None]:
        """`value` as (cents, the currency code it names or None)."""
        plain = _PLAIN.match(value)
        if plain is not None:
            # The common case (`1250.00`, `42`): no regex groups, no Decimal.
            whole, decimals = plain[1], plain[2]
            if decimals is not None:
                if self.style == "comma":
                    raise ValueError(self._other_style(value, "a decimal point"))
                self.point_line = self.point_line or line or 1
                if self.comma_line:
                    self.mixed = True
            cents = int(whole) * 100 + int((decimals or "").ljust(2, "0"))
            if cents >= MAX_CENTS:
                raise ValueError(f"{value!r} is too large to be an amount")
            return cents, None
        text = value.strip()
        negative = False
        if text.startswith("(") and text.endswith(")"):
            negative, text = True, text[1:-1].strip()
        currency = None
        for prefix, code in _PREFIXED_DOLLARS.items():
            if prefix in text:
                currency, text = code, text.replace(prefix, "")
        for symbol, code in SYMBOLS.items():
            if symbol in text:
                currency, text = code, text.replace(symbol, "")
        text = text.replace("$", "")
        match = _CODE.search(text)
        if match and match[1].upper() in _KNOWN_CODES:
            currency, text = match[1].upper(), (text[: match.start()] + text[match.end() :])
        text = text.strip()
        if text.startswith("-"):
            negative, text = not negative, text[1:].strip()
        elif text.startswith("+"):
            text = text[1:].strip()
        if text.startswith("-"):
            raise ValueError(f"{value!r} is not an amount")
        text = _SPACE_GROUPS.sub("", text)
        if _POINT.match(text):
            if "." in text and len(text.rsplit(".", 1)[1]) == 3 and "," not in text:
                raise ValueError(
                    f"{value!r} is ambiguous (a decimal point or a thousands dot?); "
                    "write it as 1234.00 or 1.234,00"
                )
            number = text.replace(",", "")
            if "." in text:
                if self.style == "comma":
                    raise ValueError(self._other_style(value, "a decimal point"))
                self.point_line = self.point_line or line or 1
        elif _COMMA.match(text):
            number = text.replace(".", "").replace(",", ".")
            if "," in text:
                if self.style == "point":
                    raise ValueError(self._other_style(value, "a decimal comma"))
                self.comma_line = self.comma_line or line or 1
        else:
            raise ValueError(f"{value!r} is not an amount (use a number like 1234.50)")
        if self.point_line and self.comma_line:
            self.mixed = True
        try:
            cents = Decimal(number) * 100
        except InvalidOperation:
            raise ValueError(f"{value!r} is not an amount") from None
        if cents != cents.to_integral_value():
            raise ValueError(f"{value!r} has more than 2 decimals")
        if abs(cents) >= MAX_CENTS:
            raise ValueError(f"{value!r} is too large to be an amount")
        if currency is not None and line:
            self.currencies.setdefault(currency, line)
        return (-int(cents) if negative else int(cents)), currency

    def _other_style(self, value: str, style: str) -> str:
        usual = "a decimal comma (12,50)" if self.style == "comma" else "a decimal point (12.50)"
        return f"{value!r} uses {style}, but this file's amounts use {usual}"

    def mixed_reason(self) -> str:
        return (
            f"amounts use a decimal point (line {self.point_line}) and a decimal comma "
            f"(line {self.comma_line}); one of the two readings would be wrong, so fix the "
            "file to use one style"
        )


def decimal_style(value: str) -> str | None:
    """ "point" or "comma" when the value's decimals say so unambiguously."""
    text = value.strip().lstrip("-+($€£ ").rstrip(") €£")
    if re.search(r"\d,\d{1,2}$", text):
        return "comma"
    if re.search(r"\d\.\d{1,2}$", text):
        return "point"
    return None


def parse_rate(spec: str) -> tuple[str, Decimal]:
    """`--currency EUR=1.08`: the file's currency and what one unit is worth in the
    workspace's currency (`EUR=1` keeps the numbers as they are)."""
    code, sep, rate = spec.partition("=")
    code = code.strip().upper()
    if not sep or len(code) != 3 or not code.isalpha():
        raise ValueError(
            f"--currency {spec!r}: write the file's currency and its rate to the "
            "workspace's currency, e.g. --currency EUR=1.08 (EUR=1 keeps the amounts as they are)"
        )
    try:
        value = Decimal(rate.strip())
    except InvalidOperation:
        raise ValueError(f"--currency {spec!r}: {rate!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"--currency {spec!r}: the rate must be above 0")
    return code, value


@dataclass
class Currency:
    """The workspace's currency and the rates --currency gave for others."""

    workspace: str
    rates: dict[str, Decimal] = field(default_factory=dict)
    file: str = ""

    def convert(self, cents: int, code: str | None, line: int = 0) -> int:
        if code is None or code == self.workspace:
            return cents
        rate = self.rates.get(code)
        if rate is None:
            # The whole file is refused, not row by row: a file in another
            # currency is one decision for the user, not thousands of bad rows.
            raise NeedsOption(
                f"{self.file}: amounts are in {code} (line {line}) but the workspace counts "
                f"in {self.workspace}; nothing was imported. Import it with --currency "
                f"{code}=<rate> (what 1 {code} is worth in {self.workspace}; {code}=1 keeps "
                "the numbers as they are), or change the workspace's currency.",
                "currency",
                currency=code,
                workspace_currency=self.workspace,
            )
        return int((Decimal(cents) * rate).to_integral_value())
