"""Which unused columns may be ignored, and which must stop the import.

Why: the worst import is one that exits 0 and drops the column that mattered
(a payments export read as customers, its `Amount` and `Status` "ignored").
A column nobody placed whose name says it carries a date, an amount, a status
or a stage therefore stops the import with its name; addresses, SKUs, notes
and the like are listed as ignored. A vendor format declares the value columns
it deliberately leaves out (`VendorFormat.known`), each with its reason, and
`--map "Column="` lets a user say the same of any column.
"""

from __future__ import annotations

import re

_TOKENS = re.compile(r"[a-z0-9]+")
_VALUE_WORDS = frozenset(
    {
        "date",
        "time",
        "timestamp",
        "datetime",
        "created",
        "updated",
        "amount",
        "total",
        "price",
        "revenue",
        "sales",
        "spend",
        "spent",
        "paid",
        "refund",
        "refunded",
        "refunds",
        "cost",
        "fee",
        "fees",
        "tax",
        "taxes",
        "status",
        "stage",
        "lifecycle",
        "value",
        "net",
        "gross",
        "subtotal",
        "balance",
        "captured",
        "cancelled",
        "canceled",
    }
)
# A last word that makes the column a label of a value, not the value.
_LABEL_WORDS = frozenset(
    {"name", "code", "id", "type", "method", "note", "notes", "reason", "title"}
)


def carries_values(column: str) -> bool:
    """Does the column's name say it holds dates, amounts, statuses or stages?"""
    tokens = _TOKENS.findall(column.lower())
    if not tokens or tokens[-1] in _LABEL_WORDS:
        return False
    if len(tokens) > 1 and tokens[-1] == "at":
        return True  # created_at, Paid at
    return any(t in _VALUE_WORDS for t in tokens)


def unplaced_message(file: str, title: str, columns: list[str], fields: str) -> str:
    """The error for value-carrying columns nobody placed, with the --map that settles it."""
    listed = ", ".join(repr(c) for c in columns)
    example = columns[0]
    return (
        f"{file}: {title}: the column{'s' if len(columns) > 1 else ''} {listed} "
        f"look{'' if len(columns) > 1 else 's'} like dates, amounts or statuses, but nothing "
        "reads them, and importing without them could give wrong numbers. Say what each one "
        f'is with --map, e.g. --map "{example}=<field>" (fields: {fields}), or '
        f'--map "{example}=" to leave it out on purpose.'
    )
