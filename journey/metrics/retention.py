"""Retention: repeat purchases, monthly cohorts, churn and customers at risk.

The retention report's "at risk" is this documented heuristic, repeated in the
docs/statistics.md (the churn report, journey.metrics.churn, uses the BG/NBD model and falls
back to this heuristic when the model cannot be fitted):

- a customer's usual gap is (last purchase - first purchase) / (purchase days - 1);
  one-time buyers get the workspace's typical gap, the median usual gap of its
  repeat buyers (30 days when there are none yet);
- at risk: no purchase for more than k x usual gap, but not more than 2k x
  (k = the workspace's `at_risk_factor`, default 2);
- lapsed (churned): no purchase for more than 2k x usual gap;
- value at risk: a year of their purchases at their usual gap (average purchase x
  365 / usual gap) for repeat buyers; one purchase (their average) for one-time
  buyers, who have not shown a rhythm worth extrapolating.

All of it is evaluated as of the period's end, on the purchases known today.
"""

from __future__ import annotations

import math
from calendar import monthrange
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, text
from sqlmodel import Session

from journey.models.types import from_epoch, to_epoch
from journey.periods import Period
from journey.reports import AtRiskCustomer, CohortRow, RetentionReport
from journey.stages import PURCHASE_KINDS
from journey.stats import median_from_histogram, wilson
from journey.workspaces import get_workspace

DAY = 86400
DEFAULT_GAP_DAYS = 30
COHORT_MONTHS = 12
AT_RISK_LIST = 25

# Usual gap in seconds; NULL for one-time buyers (the caller substitutes the typical gap).
_RAW_GAP = "(CAST(last_purchase_at - first_purchase_at AS FLOAT) / (purchase_days - 1))"
# At least a day: purchases at 23:59 and 00:01 are two purchase days two minutes apart,
# which must not make a customer "at risk" within minutes.
_GAP = f"(CASE WHEN {_RAW_GAP} < {DAY} THEN {DAY} ELSE {_RAW_GAP} END)"
_GAP_OR_TYPICAL = f"(CASE WHEN purchase_days >= 2 THEN {_GAP} ELSE :typical END)"
_VALUE = (
    "(CASE WHEN revenue_cents > 0 THEN CAST(revenue_cents AS FLOAT) / purchase_days ELSE 0 END"
    f" * CASE WHEN purchase_days >= 2 THEN 365.0 * {DAY} / {_GAP} ELSE 1 END)"
)


# The same rules under public names, for other reports that speak of "at risk"
# (the digests' valuable customers newly at risk) and must not drift from these.
USUAL_GAP_SQL = _GAP_OR_TYPICAL
VALUE_AT_RISK_SQL = _VALUE
AT_RISK_COLUMNS = (
    "cj.customer_id, c.external_id, c.name, c.email, cj.last_purchase_at, "
    f"cj.purchase_days, cj.revenue_cents, {_GAP_OR_TYPICAL} AS gap, {_VALUE} AS value"
)


def at_risk_customers(rows: Sequence[Row[Any]], end: int) -> list[AtRiskCustomer]:
    """AtRiskCustomer objects from rows selected with AT_RISK_COLUMNS, as of `end`."""
    return [
        AtRiskCustomer(
            customer_id=int(r[0]),
            external_id=r[1],
            name=r[2],
            email=r[3],
            last_purchase=from_epoch(r[4]),
            days_since_purchase=(end - r[4]) / DAY,
            usual_gap_days=float(r[7]) / DAY,
            gap_is_typical=int(r[5]) < 2,
            purchases=int(r[5]),
            revenue_cents=int(r[6]),
            value_at_risk_cents=round(r[8] or 0),
        )
        for r in rows
    ]


def month_index(moment: datetime) -> int:
    moment = moment.astimezone(UTC)
    return moment.year * 12 + moment.month - 1


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def typical_gap_seconds(session: Session, workspace_id: str, end: int) -> float | None:
    """Median usual gap of the repeat buyers, to the day (histogram in SQL)."""
    rows = session.execute(
        text(
            # Integer division floors on both databases (CAST AS INTEGER rounds on PostgreSQL).
            "SELECT (last_purchase_at - first_purchase_at) / (purchase_days - 1) / "
            f"{DAY} AS d, COUNT(*) FROM customer_journey "
            "WHERE workspace_id = :ws AND purchase_days >= 2 AND first_purchase_at < :end "
            "GROUP BY 1"
        ),
        {"ws": workspace_id, "end": end},
    ).all()
    median = median_from_histogram({int(d): int(c) for d, c in rows})
    return None if median is None else float(max(median, 1) * DAY)


def month_so_far(end: datetime) -> tuple[int, int, int] | None:
    """(month index, days so far, days in the month) when `end` (exclusive) falls inside a
    UTC month rather than on its first instant: that month's cohort cells are incomplete."""
    end = end.astimezone(UTC)
    start = end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if end == start:
        return None
    days_so_far = math.ceil((end - start).total_seconds() / DAY)
    return month_index(start), days_so_far, monthrange(end.year, end.month)[1]


def _month_so_far_label(end: datetime) -> tuple[str, int, int] | None:
    under_way = month_so_far(end)
    return None if under_way is None else (month_label(under_way[0]), *under_way[1:])


def _cohorts(session: Session, workspace_id: str, end: datetime) -> list[CohortRow]:
    """Monthly cohorts up to `end` (exclusive: the period's end, or now if earlier)."""
    last_month = month_index(end - timedelta(seconds=1))
    under_way = month_so_far(end)
    first_month = last_month - COHORT_MONTHS + 1
    bits = ", ".join(
        f"SUM(CAST((purchase_month_mask / {1 << k}) % 2 AS INTEGER))"
        for k in range(1, COHORT_MONTHS)
    )
    start = datetime(first_month // 12, first_month % 12 + 1, 1, tzinfo=UTC)
    rows = session.execute(
        text(
            f"SELECT first_purchase_month, COUNT(*), {bits} FROM customer_journey "
            "WHERE workspace_id = :ws AND first_purchase_at >= :start AND first_purchase_at < :end "
            "GROUP BY first_purchase_month ORDER BY first_purchase_month"
        ),
        {"ws": workspace_id, "start": to_epoch(start), "end": to_epoch(end)},
    ).all()
    cohorts = []
    for row in rows:
        month, customers = int(row[0]), int(row[1])
        retained = [
            wilson(int(row[1 + k] or 0), customers) if month + k <= last_month else None
            for k in range(1, COHORT_MONTHS)
        ]
        partial = under_way[0] - month - 1 if under_way else None
        if partial is not None and not 0 <= partial < len(retained):
            partial = None
        cohorts.append(CohortRow(month_label(month), customers, retained, partial))
    return cohorts


def returning_customers(
    session: Session,
    workspace_id: str,
    previous_start: int,
    start: int,
    end: int,
    previous_end: int | None = None,
) -> tuple[int, int]:
    """Customers with a purchase on a later day than their first, in [start, end)
    and in the period before it, [previous_start, previous_end or start), in one pass
    (a month under way is compared with the same days of the month before).

    Read from the events (a covering index range on kind and time), because the
    state keeps only first, second and last purchases; this is the number that
    drops first when loyal customers stop coming back.
    """
    buy = ", ".join(f"'{k}'" for k in sorted(PURCHASE_KINDS))
    now, before = session.execute(
        text(
            "SELECT COUNT(DISTINCT CASE WHEN e.occurred_at >= :start THEN cj.customer_id END), "
            "COUNT(DISTINCT CASE WHEN e.occurred_at < :pend THEN cj.customer_id END) "
            "FROM journey_event e JOIN customer pc ON pc.id = e.customer_id "
            "JOIN customer_journey cj ON cj.workspace_id = e.workspace_id "
            "AND cj.customer_id = pc.person_id "
            f"WHERE e.workspace_id = :ws AND e.kind IN ({buy}) "
            "AND e.occurred_at >= :prev AND e.occurred_at < :end "
            f"AND e.occurred_at / {DAY} > cj.first_purchase_at / {DAY}"
        ),
        {
            "ws": workspace_id,
            "prev": previous_start,
            "pend": start if previous_end is None else min(previous_end, start),
            "start": start,
            "end": end,
        },
    ).one()
    return int(now or 0), int(before or 0)


def retention_report(
    session: Session,
    workspace_id: str,
    period: Period,
    limit: int = AT_RISK_LIST,
    now: datetime | None = None,
) -> RetentionReport:
    """Retention for the period, with churn and risk evaluated as of its end or now,
    whichever is earlier (a period running into the future is judged as of today)."""
    workspace = get_workspace(session, workspace_id)
    k = workspace.at_risk_factor
    period_end = to_epoch(period.end)
    start, end = to_epoch(period.start), min(period_end, to_epoch(now or datetime.now(UTC)))
    previous_start = to_epoch(period.previous().start)
    typical = typical_gap_seconds(session, workspace_id, end)
    typical_s = typical if typical is not None else float(DEFAULT_GAP_DAYS * DAY)
    params = {
        "ws": workspace_id,
        "start": start,
        "end": end,
        "prev": previous_start,
        "typical": typical_s,
        "k": k,
    }
    silence = "(:end - last_purchase_at)"
    at_risk_cond = f"{silence} > :k * {_GAP_OR_TYPICAL} AND {silence} <= 2 * :k * {_GAP_OR_TYPICAL}"
    lapse_at = f"(last_purchase_at + 2 * :k * {_GAP_OR_TYPICAL})"
    summary = session.execute(
        text(
            "SELECT "
            "SUM(CASE WHEN first_purchase_at < :end THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN second_purchase_at < :end THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN first_purchase_at < :start THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN second_purchase_at < :start THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN first_purchase_at < :start AND {lapse_at} >= :start THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN first_purchase_at < :start AND {lapse_at} >= :start "
            f"AND {lapse_at} < :end THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {at_risk_cond} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {at_risk_cond} THEN {_VALUE} ELSE 0 END) "
            "FROM customer_journey WHERE workspace_id = :ws AND first_purchase_at IS NOT NULL"
        ),
        params,
    ).one()
    buyers, repeaters, buyers_before, repeaters_before, base, churned, risk_n = (
        int(v or 0) for v in summary[:-1]
    )
    risk_value = float(summary[-1] or 0)  # rounded below, like each customer's value
    rows = session.execute(
        text(
            f"SELECT {AT_RISK_COLUMNS} "
            "FROM customer_journey cj JOIN customer c ON c.id = cj.customer_id "
            f"WHERE cj.workspace_id = :ws AND cj.last_purchase_at < :end AND {at_risk_cond} "
            "ORDER BY value DESC, cj.customer_id LIMIT :limit"
        ),
        {**params, "limit": limit},
    ).all()
    at_risk = at_risk_customers(rows, end)
    returning, previous_returning = returning_customers(
        session, workspace_id, previous_start, start, period_end, to_epoch(period.previous().end)
    )
    return RetentionReport(
        workspace_id=workspace_id,
        period=period,
        currency=workspace.currency,
        repeat_rate=wilson(repeaters, buyers),
        previous_repeat_rate=wilson(repeaters_before, buyers_before),
        cohorts=_cohorts(session, workspace_id, from_epoch(end)),
        churn=wilson(churned, base),
        returning=returning,
        previous_returning=previous_returning,
        at_risk_count=risk_n,
        value_at_risk_cents=round(risk_value),
        at_risk=at_risk,
        typical_gap_days=None if typical is None else typical / DAY,
        at_risk_factor=k,
        generated_at=datetime.now(UTC),
        month_so_far=_month_so_far_label(from_epoch(end)),
    )
