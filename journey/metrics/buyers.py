"""The buyers' histories and the channel cohort, read from the journey state once, and the
models fitted on them once per request.

Why this module: the value report needs every buyer's summary (for the BG/NBD and
Gamma-Gamma fits) and the period's acquired customers with their channel (for the
per-channel values). Both live in `customer_journey`, and at a million customers reading
them was most of the report's time (bench/VALUE.md): two scans of the same rows, and a
Python tuple with a Python int per column per row. Here

- one statement reads the rows either needs (buyers before the as-of time, and customers
  who entered the journey in the period), only the columns needed, with whether a row is
  a direct buyer row, bought before the as-of time or is in the cohort decided in SQL;
- the rows come back grouped by channel, each column of a group as one value: on SQLite a
  `group_concat` string parsed by numpy (over `ix_cj_value`, which covers the read so the
  scan never touches the table), on PostgreSQL a `string_agg` of `int8send` values, one
  bytea of big-endian int64s read by `np.frombuffer` (binary results, no text). A group is
  one channel, so the channel costs nothing per row; the columns of a group are aggregated
  over the same rows in the same order (one aggregate step per row for all of them), and
  each group's row count is read beside them and checked.

Limits: a column of one channel is one value, so SQLite's string length limit (1e9 bytes by
default, about 90M customers of one channel) and PostgreSQL's 1 GB per value (134M) bound
a channel; PostgreSQL also holds every group's aggregate in memory while it reads (about
80 MB at a million customers).

`SharedFits` keeps the summary and both fits per (workspace, as-of time) for the reports
of one request: the overview and the App Home build the churn and the value report for
the same as-of time, and the digest the churn report and the value line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sqlmodel import Session

from journey.db import fetch_rows
from journey.metrics.churn_model import (
    BgNbdFit,
    FitRefused,
    Histories,
    check_histories,
    fit_bg_nbd,
    group_histories,
)
from journey.metrics.gamma_gamma import GammaGammaFit, fit_gamma_gamma
from journey.models.types import to_epoch
from journey.periods import Period
from journey.stages import PURCHASE_KINDS, REFUND_KINDS

DAY = 86400

# Row flags, decided in SQL (packed with the purchase days: days * 8 + flags).
IN_COHORT = 1  # entered the journey in the period
BOUGHT = 2  # first purchase before the as-of time
BEFORE_AS_OF = 4  # last purchase before the as-of time: the row is the buyer's summary


def _in_list(values: frozenset[str]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


_BUY = _in_list(PURCHASE_KINDS)

# The columns read, in order, after the channel and the group's row count.
_FLAGS = (
    "CAST(COALESCE(purchase_days, 0) * 8"
    " + CASE WHEN reached_0 >= :start AND reached_0 < :end THEN 1 ELSE 0 END"
    " + CASE WHEN first_purchase_at < :as_of THEN 2 ELSE 0 END"
    " + CASE WHEN last_purchase_at < :as_of THEN 4 ELSE 0 END AS BIGINT)"
)
_COLUMNS = (
    "customer_id",
    "COALESCE(first_purchase_at, 0)",
    "COALESCE(last_purchase_at, 0)",
    _FLAGS,
    "COALESCE(revenue_cents, 0)",
    "COALESCE(first_day_cents, 0)",
)
_WHERE_BUYERS = "first_purchase_at < :as_of"
_WHERE_COHORT = "(reached_0 >= :start AND reached_0 < :end)"


def _select(aggregate: str, cohort_only: bool) -> str:
    """The grouped read, each column through `aggregate` ("{}" is the column)."""
    where = _WHERE_COHORT if cohort_only else f"({_WHERE_BUYERS} OR {_WHERE_COHORT})"
    columns = ",\n       ".join(aggregate.format(c) for c in _COLUMNS)
    return (
        f"SELECT channel, COUNT(*),\n       {columns}\n"
        f"FROM customer_journey\nWHERE workspace_id = :ws AND {where}\nGROUP BY channel"
    )


# Buyers who also bought on or after the as-of time (a past --until) are recounted from
# their purchase events before it, so the model never sees the future. Usually none (the
# as-of time is now); ix_cj_last_purchase finds them.
_RECOUNT_SQL = f"""
SELECT cj.customer_id,
       MIN(CASE WHEN e.kind IN ({_BUY}) THEN e.occurred_at END),
       MAX(CASE WHEN e.kind IN ({_BUY}) THEN e.occurred_at END),
       COUNT(DISTINCT CASE WHEN e.kind IN ({_BUY}) THEN e.occurred_at / {DAY} END),
       CAST(SUM(CASE WHEN e.kind IN ({_BUY}) THEN COALESCE(e.amount_cents, 0)
                ELSE -ABS(COALESCE(e.amount_cents, 0)) END) AS BIGINT),
       CAST(SUM(CASE WHEN e.kind IN ({_BUY})
                          AND e.occurred_at / {DAY} = cj.first_purchase_at / {DAY}
                     THEN COALESCE(e.amount_cents, 0) ELSE 0 END) AS BIGINT)
FROM customer_journey cj
JOIN customer pc ON pc.workspace_id = cj.workspace_id AND pc.person_id = cj.customer_id
JOIN journey_event e ON e.workspace_id = cj.workspace_id AND e.customer_id = pc.id
WHERE cj.workspace_id = :ws AND cj.first_purchase_at < :end AND cj.last_purchase_at >= :end
  AND e.occurred_at < :end AND e.kind IN ({_in_list(PURCHASE_KINDS | REFUND_KINDS)})
GROUP BY cj.customer_id
"""

_ROW = np.dtype(
    [(name, np.int64) for name in ("customer_id", "first", "last", "days", "revenue", "first_day")]
)


@dataclass(frozen=True)
class BuyerSummary:
    """One row per buyer before the as-of time, in customer id order, as numpy columns
    (time in days)."""

    customer_id: NDArray[np.int64]
    first_at: NDArray[np.int64]  # epoch seconds
    last_at: NDArray[np.int64]
    purchase_days: NDArray[np.int64]
    revenue_cents: NDArray[np.int64]
    first_day_cents: NDArray[np.int64]  # gross purchases on the first purchase day
    x: NDArray[np.float64]
    t_x: NDArray[np.float64]
    T: NDArray[np.float64]

    @property
    def size(self) -> int:
        return int(self.customer_id.size)

    def repeat_spend(self) -> NDArray[np.float64]:
        """Average value of each buyer's repeat purchases in currency units (0 for one-time
        buyers): net revenue minus the first purchase day, over the repeat purchase days.
        What the Gamma-Gamma spend model learns from (journey/metrics/gamma_gamma.py)."""
        repeat_cents = (self.revenue_cents - self.first_day_cents).astype(np.float64)
        return np.where(self.x > 0, repeat_cents / np.maximum(self.x, 1) / 100.0, 0.0)


@dataclass(frozen=True)
class Cohort:
    """The customers acquired in the period, in customer id order, as numpy columns."""

    ids: NDArray[np.int64]
    channel: NDArray[np.intp]  # index into `names`
    names: list[str]
    bought: NDArray[np.bool_]  # first purchase before the as-of time
    revenue: NDArray[np.int64]  # cents, all their revenue


@dataclass(frozen=True)
class _Rows:
    """What the grouped read returned, one entry per row, in customer id order."""

    channel: NDArray[np.intp]  # index into `names`; None and "" are "unknown"
    names: list[str]
    customer_id: NDArray[np.int64]
    first_at: NDArray[np.int64]
    last_at: NDArray[np.int64]
    flags: NDArray[np.int64]  # purchase days * 8 + IN_COHORT | BOUGHT | BEFORE_AS_OF
    revenue: NDArray[np.int64]
    first_day_cents: NDArray[np.int64]


def _sqlite_groups(
    session: Session, params: dict[str, object], cohort_only: bool
) -> list[tuple[str | None, int, list[NDArray[np.int64]]]]:
    rows = fetch_rows(session, _select("group_concat({})", cohort_only), params)
    return [
        (row[0], int(row[1]), [np.fromstring(v, dtype=np.int64, sep=",") for v in row[2:]])
        for row in rows
    ]


def _postgres_groups(
    session: Session, params: dict[str, object], cohort_only: bool
) -> list[tuple[str | None, int, list[NDArray[np.int64]]]]:
    sql = _select("string_agg(int8send(CAST({} AS BIGINT)), CAST('' AS bytea))", cohort_only)
    rows = fetch_rows(session, sql, params, binary=True)
    big_endian = np.dtype(">i8")
    return [
        (
            row[0],
            int(row[1]),
            [np.frombuffer(v, dtype=big_endian).astype(np.int64) for v in row[2:]],
        )
        for row in rows
    ]


def _plain_groups(
    session: Session, params: dict[str, object], cohort_only: bool
) -> list[tuple[str | None, int, list[NDArray[np.int64]]]]:
    """Row by row, for a database without a fast path (and the tests' reference)."""
    where = _WHERE_COHORT if cohort_only else f"({_WHERE_BUYERS} OR {_WHERE_COHORT})"
    sql = (
        f"SELECT channel, {', '.join(_COLUMNS)} FROM customer_journey "
        f"WHERE workspace_id = :ws AND {where}"
    )
    by_channel: dict[str | None, list[tuple[int, ...]]] = {}
    for row in fetch_rows(session, sql, params):
        by_channel.setdefault(row[0], []).append(tuple(row[1:]))
    groups = []
    for name, rows in by_channel.items():
        table = np.array(rows, dtype=np.int64).reshape(len(rows), len(_COLUMNS))
        groups.append((name, len(rows), [table[:, i].copy() for i in range(len(_COLUMNS))]))
    return groups


# By (dialect, driver): the PostgreSQL path needs psycopg 3's binary results.
_READERS = {("sqlite", "pysqlite"): _sqlite_groups, ("postgresql", "psycopg"): _postgres_groups}


def _read_rows(
    session: Session,
    workspace_id: str,
    as_of: int,
    cohort: Period | None,
    cohort_only: bool = False,
    plain: bool = False,
) -> _Rows:
    """Buyers before `as_of` (unless `cohort_only`) and the customers who entered the
    journey in `cohort`, in one statement."""
    start, end = (to_epoch(cohort.start), to_epoch(cohort.end)) if cohort else (0, 0)
    params: dict[str, object] = {"ws": workspace_id, "as_of": as_of, "start": start, "end": end}
    dialect = session.connection().dialect
    reader = _plain_groups if plain else _READERS.get((dialect.name, dialect.driver), _plain_groups)
    groups = reader(session, params, cohort_only)
    names: list[str] = []
    codes: list[NDArray[np.intp]] = []
    columns: list[list[NDArray[np.int64]]] = [[] for _ in _COLUMNS]
    for name, count, values in groups:
        if any(v.size != count for v in values):  # a parse that stopped short: never guess
            raise RuntimeError(f"read {[v.size for v in values]} values of {count} rows")
        label = name or "unknown"
        if label not in names:
            names.append(label)
        codes.append(np.full(count, names.index(label), dtype=np.intp))
        for i, v in enumerate(values):
            columns[i].append(v)
    if not groups:
        empty = np.empty(0, dtype=np.int64)
        return _Rows(np.empty(0, dtype=np.intp), [], *(empty for _ in _COLUMNS))
    ids = np.concatenate(columns[0])
    channel = np.concatenate(codes)
    merged = [np.concatenate(c) for c in columns[1:]]
    # Each group comes in its own order (SQLite: customer id within the channel); one
    # stable sort puts the whole read in customer id order.
    if ids.size > 1 and (ids[1:] < ids[:-1]).any():
        order = np.argsort(ids, kind="stable")
        ids, channel, merged = ids[order], channel[order], [c[order] for c in merged]
    first_at, last_at, flags, revenue, first_day_cents = merged
    return _Rows(channel, names, ids, first_at, last_at, flags, revenue, first_day_cents)


def _summary(rows: _Rows, session: Session, workspace_id: str, as_of: int) -> BuyerSummary:
    direct = (rows.flags & (BOUGHT | BEFORE_AS_OF)) == (BOUGHT | BEFORE_AS_OF)
    customer_id = rows.customer_id[direct]
    first_at, last_at = rows.first_at[direct], rows.last_at[direct]
    days = rows.flags[direct] >> 3
    revenue, first_day_cents = rows.revenue[direct], rows.first_day_cents[direct]
    # Buyers who also bought on or after the as-of time are recounted from their events;
    # the read shows whether there are any (usually none: the as-of time is now).
    later = (rows.flags & (BOUGHT | BEFORE_AS_OF)) == BOUGHT
    recount = (
        fetch_rows(session, _RECOUNT_SQL, {"ws": workspace_id, "end": as_of}) if later.any() else []
    )
    if recount:
        table = np.fromiter(recount, dtype=_ROW, count=len(recount))
        customer_id, first_at, last_at, days, revenue, first_day_cents = (
            np.concatenate([old, table[name]])
            for old, name in zip(
                (customer_id, first_at, last_at, days, revenue, first_day_cents),
                _ROW.names or (),
                strict=True,
            )
        )
        order = np.argsort(customer_id, kind="stable")
        customer_id, first_at, last_at, days, revenue, first_day_cents = (
            c[order] for c in (customer_id, first_at, last_at, days, revenue, first_day_cents)
        )
    first_day = first_at // DAY
    x = (days - 1).astype(np.float64)
    t_x = (last_at // DAY - first_day).astype(np.float64)
    # The as-of time is exclusive (a period's end), so its day is that of as_of - 1 s.
    T = ((as_of - 1) // DAY - first_day).astype(np.float64)
    return BuyerSummary(customer_id, first_at, last_at, days, revenue, first_day_cents, x, t_x, T)


def _cohort(rows: _Rows) -> Cohort:
    inside = (rows.flags & IN_COHORT) != 0
    codes = rows.channel[inside]
    # Only the channels the cohort has, numbered in the read's order (no sort).
    present = np.flatnonzero(np.bincount(codes, minlength=len(rows.names)))
    renumber = np.zeros(len(rows.names), dtype=np.intp)
    renumber[present] = np.arange(present.size)
    return Cohort(
        ids=rows.customer_id[inside],
        channel=renumber[codes],
        names=[rows.names[int(c)] for c in present],
        bought=(rows.flags[inside] & BOUGHT) != 0,
        revenue=rows.revenue[inside],
    )


def read_summary(session: Session, workspace_id: str, as_of: int) -> BuyerSummary:
    """The (x, t_x, T, revenue) summary of every buyer before `as_of`.

    Day resolution, in UTC days like the journey state: x = purchase days - 1, t_x = last
    - first purchase day, T = as-of day - first purchase day (journey/metrics/churn.py).
    """
    return _summary(_read_rows(session, workspace_id, as_of, None), session, workspace_id, as_of)


def read_summary_and_cohort(
    session: Session, workspace_id: str, as_of: int, period: Period
) -> tuple[BuyerSummary, Cohort]:
    """Every buyer's summary before `as_of` and the customers acquired in `period`, from
    one read of the journey state."""
    rows = _read_rows(session, workspace_id, as_of, period)
    return _summary(rows, session, workspace_id, as_of), _cohort(rows)


def read_cohort(session: Session, workspace_id: str, as_of: int, period: Period) -> Cohort:
    """The customers acquired in `period` only (when the buyers' summary is at hand)."""
    return _cohort(_read_rows(session, workspace_id, as_of, period, cohort_only=True))


@dataclass
class _Entry:
    summary: BuyerSummary
    histories: Histories | None = None
    bg_nbd: BgNbdFit | FitRefused | None = None
    gamma_gamma: GammaGammaFit | FitRefused | None = None


@dataclass
class SharedFits:
    """The buyers' summary and the BG/NBD and Gamma-Gamma fits, made at most once per
    (workspace, as-of time) for the reports of one request.

    Why: the overview (and so the App Home) builds the churn report and the value report
    for the same as-of time, and each used to read the million buyers and fit BG/NBD on
    its own (the churn report also fitting Gamma-Gamma for its 12-month values); the
    digest did the same for its at-risk list and its value line. A refusal is kept like a
    fit, so both reports give the same reason.

    Keep one for one request's reads only (create it, pass it to the reports, drop it):
    it does not notice later writes.
    """

    _entries: dict[tuple[str, int], _Entry] = field(default_factory=dict)

    def has_summary(self, workspace_id: str, as_of: int) -> bool:
        return (workspace_id, as_of) in self._entries

    def remember_summary(self, workspace_id: str, as_of: int, summary: BuyerSummary) -> None:
        self._entries.setdefault((workspace_id, as_of), _Entry(summary))

    def _entry(self, session: Session, workspace_id: str, as_of: int) -> _Entry:
        key = (workspace_id, as_of)
        if key not in self._entries:
            self._entries[key] = _Entry(read_summary(session, workspace_id, as_of))
        return self._entries[key]

    def summary(self, session: Session, workspace_id: str, as_of: int) -> BuyerSummary:
        return self._entry(session, workspace_id, as_of).summary

    def histories(self, session: Session, workspace_id: str, as_of: int) -> Histories:
        """The summary's histories grouped once (for the fit and every scoring); raises
        ValueError for histories BG/NBD cannot describe (a bug upstream)."""
        entry = self._entry(session, workspace_id, as_of)
        if entry.histories is None:
            s = entry.summary
            check_histories(s.x, s.t_x, s.T)
            entry.histories = group_histories(s.x, s.t_x, s.T)
        return entry.histories

    def bg_nbd(self, session: Session, workspace_id: str, as_of: int) -> BgNbdFit:
        """The BG/NBD fit; raises FitRefused (the same one every time) when it refuses."""
        histories = self.histories(session, workspace_id, as_of)
        entry = self._entry(session, workspace_id, as_of)
        if entry.bg_nbd is None:
            s = entry.summary
            try:
                entry.bg_nbd = fit_bg_nbd(s.x, s.t_x, s.T, histories=histories)
            except FitRefused as refused:
                entry.bg_nbd = refused
        if isinstance(entry.bg_nbd, FitRefused):
            raise entry.bg_nbd
        return entry.bg_nbd

    def gamma_gamma(self, session: Session, workspace_id: str, as_of: int) -> GammaGammaFit:
        """The Gamma-Gamma fit on the repeat buyers; raises FitRefused when it refuses."""
        entry = self._entry(session, workspace_id, as_of)
        if entry.gamma_gamma is None:
            s = entry.summary
            try:
                entry.gamma_gamma = fit_gamma_gamma(s.x, s.repeat_spend())
            except FitRefused as refused:
                entry.gamma_gamma = refused
        if isinstance(entry.gamma_gamma, FitRefused):
            raise entry.gamma_gamma
        return entry.gamma_gamma
