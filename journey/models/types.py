"""Column types shared by the tables.

Times are stored as integer epoch seconds (UTC) and handed to Python as aware
datetimes. Integers subtract and compare the same way on SQLite and PostgreSQL,
so durations and "reached before" checks stay in SQL on both without
dialect-specific date functions; money is integer cents for the same reason and
because floats lose cents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def to_epoch(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def from_epoch(value: int | float) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


class EpochDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as BIGINT seconds since the epoch (naive = UTC)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, int | float):
            return int(value)
        return to_epoch(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else from_epoch(value)
