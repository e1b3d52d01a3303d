"""The digest: what a channel reads on Monday morning, as plain data.

A Digest holds numbers and lists, never text layout, so the Slack adapter (and
any other renderer) decides how it looks while the numbers mean the same thing
everywhere. Everything is computed in SQL over the workspace's own rows
(customer_journey and journey_event), like the reports; who is at risk comes from
the churn report itself (journey.metrics.churn), so a digest and `/journey churn`
never disagree about a customer.

The period is the complete local days before the send, in the workspace's
timezone (the business's day, like every report): yesterday for a daily digest,
the 7 days to yesterday for a weekly one, the month to yesterday for a monthly
one, each compared with the period of equal length just before it.
"""

from __future__ import annotations

import logging
import math
from calendar import monthrange
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import text
from sqlmodel import Session

from journey.metrics.buyers import SharedFits
from journey.metrics.churn import (
    at_risk_mask,
    churn_customers,
    churn_report,
    heuristic_row,
    read_summary,
    score_buyers,
)
from journey.metrics.churn_model import BgNbdParams, p_alive
from journey.metrics.funnel import funnel_report
from journey.metrics.retention import (
    AT_RISK_COLUMNS,
    DEFAULT_GAP_DAYS,
    USUAL_GAP_SQL,
    VALUE_AT_RISK_SQL,
    at_risk_customers,
    typical_gap_seconds,
)
from journey.metrics.reviews import review_report
from journey.metrics.value import RECENT_WINDOW_DAYS, recent_window, value_report
from journey.models.schedule import DigestSubscription
from journey.models.types import from_epoch, to_epoch
from journey.people import sources_of
from journey.periods import Period, range_period, zone
from journey.playbooks import Playbook, playbook_for_step
from journey.reports import Business, ChurnCustomer, ChurnReport, FunnelReport, StepChange
from journey.schedule.calendar import Schedule, next_send_after
from journey.stages import PURCHASE_KINDS, REFUND_KINDS
from journey.stats import Rate, wilson
from journey.workspaces import business, get_workspace

log = logging.getLogger(__name__)

DAY = 86400
# "Valuable" customers (the high-value churn alert's): the top fifth by net revenue.
VALUABLE_SHARE = 0.2
AT_RISK_LIST = 5
REVIEW_LIST = 5
VALUE_WINDOW_DAYS = RECENT_WINDOW_DAYS  # the value line's window (journey/metrics/value.py)
# Cadences whose digest carries the value line. A daily digest would repeat the same
# sentence every morning (a 90-day window barely moves in a day).
VALUE_CADENCES = frozenset({"weekly", "monthly"})


def _in(values: frozenset[str]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


_BUY = _in(PURCHASE_KINDS)
_REFUND = _in(REFUND_KINDS)
# The retention report's rules, so "at risk" means the same in a digest.
_GAP = USUAL_GAP_SQL
_VALUE = VALUE_AT_RISK_SQL


@dataclass(frozen=True)
class Headline:
    """One number of the period against the previous period.

    unit: "count", "cents" or "share" (a fraction; `rate` then has its counts).
    change: relative change against the previous period (0.25 = +25%), None when
    the previous value is zero or missing; delta_points: for shares, the change
    in percentage points.
    """

    key: str
    label: str
    unit: str
    current: float
    previous: float
    change: float | None
    delta_points: float | None = None
    rate: Rate | None = None
    previous_rate: Rate | None = None


@dataclass(frozen=True)
class MissedDigest:
    """Digests of this subscription that were never posted because they were more than a
    day late, so the channel hears about them in the next one it gets.

    `count` slots from `first_due` to `last_due`. `back_at`: when the scheduler found
    them missed (it was not running from `first_due` until about then), None when a
    claimed digest went stale instead (known only to be more than a day late).
    """

    count: int
    first_due: datetime
    last_due: datetime
    back_at: datetime | None
    # True when it was not skipped for lateness but given up after every attempt failed
    # (Slack down or refusing for longer than the attempts last).
    gave_up: bool = False


@dataclass(frozen=True)
class BestChannel:
    """The acquisition channel whose customers are worth most, as the value report says
    (journey/metrics/value.py): set only when its 95% interval lies above every other
    named channel's, so the line never names a channel on noise.

    value_per_customer_cents: expected value over the next `horizon_months` of a customer
    it brought in `window` (buyers and not-yet-buyers alike), with its interval.
    """

    channel: str
    value_per_customer_cents: int
    interval: tuple[int, int]
    customers: int
    horizon_months: int
    window: Period


@dataclass(frozen=True)
class Digest:
    """Everything one digest says. `has_data` False: the workspace has no data yet,
    and `notes` says so (the headlines are then empty)."""

    workspace_id: str
    subscription_id: int | None
    cadence: str
    period: Period
    previous_period: Period
    currency: str
    has_data: bool
    headlines: list[Headline]
    biggest_drop: StepChange | None
    biggest_drop_playbook: Playbook | None
    funnel_entered: int
    # Customers newly at risk in the period, by the churn report (see NewlyAtRisk).
    at_risk: list[ChurnCustomer]
    at_risk_count: int
    at_risk_value_cents: int
    review_candidates: int
    review_names: list[str]
    scheduled_at: datetime
    next_send_at: datetime | None
    timezone: str  # the subscriber's: next_send_at is shown in it
    generated_at: datetime
    notes: list[str] = field(default_factory=list)
    # The period's funnel report itself, so a renderer can show its stages and draw its
    # chart without querying the store again; None when there is no data.
    funnel: FunnelReport | None = None
    # Earlier digests of this subscription skipped since the last one posted.
    missed: list[MissedDigest] = field(default_factory=list)
    # The workspace has data, but no event in this period nor the one before: a page of
    # zeros would say nothing, so renderers say that in a line. `last_activity_at` is
    # its latest event before the period's end.
    quiet: bool = False
    last_activity_at: datetime | None = None
    # How the churn report judged "at risk" (bg_nbd or heuristic), and how many it counts
    # at risk in all at the period's end (what `/journey churn` shows for the period).
    at_risk_method: str | None = None
    at_risk_total: int = 0
    business: Business | None = None  # whose numbers: the header says it (demo data too)
    # The sources each of review_names appears in, in the same order (journey.people.
    # sources_of; empty when records come from one source).
    review_sources: list[tuple[str, ...]] = field(default_factory=list)
    # Weekly and monthly digests: the channel whose customers are worth most, when the
    # value report can tell (None when it cannot, or the models refuse the data).
    best_channel: BestChannel | None = None


def digest_period(cadence: str, scheduled_at: datetime, timezone: str) -> Period:
    """The complete local days before the send, in `timezone` (the workspace's)."""
    today = scheduled_at.astimezone(zone(timezone)).date()
    last = today - timedelta(days=1)
    if cadence == "daily":
        first = last
        label = f"{last.isoformat()}"
    elif cadence == "weekly":
        first = today - timedelta(days=7)
        label = f"the 7 days to {last.isoformat()}"
    else:
        index = today.year * 12 + today.month - 2
        year, month = index // 12, index % 12 + 1
        first = date(year, month, min(today.day, monthrange(year, month)[1]))
        label = f"the month to {last.isoformat()}"
    period = range_period(first, last, timezone)
    return Period(period.start, period.end, label)


def _change(current: float, previous: float) -> float | None:
    return None if not previous else (current - previous) / previous


def _headlines(session: Session, workspace_id: str, period: Period) -> list[Headline]:
    previous = period.previous()
    params = {
        "ws": workspace_id,
        "ps": to_epoch(previous.start),
        "s": to_epoch(period.start),
        "e": to_epoch(period.end),
    }
    money = (
        f"CASE WHEN kind IN ({_BUY}) THEN COALESCE(amount_cents, 0) "
        "ELSE -ABS(COALESCE(amount_cents, 0)) END"
    )
    events = session.execute(
        text(
            f"SELECT SUM(CASE WHEN kind IN ({_BUY}) AND occurred_at >= :s THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN kind IN ({_BUY}) AND occurred_at < :s THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN occurred_at >= :s THEN {money} ELSE 0 END), "
            f"SUM(CASE WHEN occurred_at < :s THEN {money} ELSE 0 END) "
            f"FROM journey_event WHERE workspace_id = :ws AND kind IN ({_BUY}, {_REFUND}) "
            "AND occurred_at >= :ps AND occurred_at < :e"
        ),
        params,
    ).one()
    purchases, prev_purchases, revenue, prev_revenue = (int(v or 0) for v in events)
    new = session.execute(
        text(
            "SELECT SUM(CASE WHEN first_purchase_at >= :s THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN first_purchase_at < :s THEN 1 ELSE 0 END) FROM customer_journey "
            "WHERE workspace_id = :ws AND first_purchase_at >= :ps AND first_purchase_at < :e"
        ),
        params,
    ).one()
    new_now, new_before = int(new[0] or 0), int(new[1] or 0)
    # Buyers of each period, and those of them buying on a later day than their first
    # purchase: the share of the period's business that came from returning customers.
    buyers = {0: (0, 0), 1: (0, 0)}
    for current, total, repeat in session.execute(
        text(
            "SELECT CASE WHEN e.occurred_at >= :s THEN 1 ELSE 0 END, "
            "COUNT(DISTINCT cj.customer_id), COUNT(DISTINCT CASE WHEN "
            f"e.occurred_at / {DAY} > cj.first_purchase_at / {DAY} THEN cj.customer_id END) "
            "FROM journey_event e JOIN customer pc ON pc.id = e.customer_id "
            "JOIN customer_journey cj ON cj.workspace_id = e.workspace_id "
            f"AND cj.customer_id = pc.person_id WHERE e.workspace_id = :ws AND e.kind IN ({_BUY}) "
            "AND e.occurred_at >= :ps AND e.occurred_at < :e GROUP BY 1"
        ),
        params,
    ).all():
        buyers[int(current)] = (int(total), int(repeat or 0))
    rate, prev_rate = wilson(buyers[1][1], buyers[1][0]), wilson(buyers[0][1], buyers[0][0])
    share, prev_share = rate.value or 0.0, prev_rate.value or 0.0
    return [
        Headline(
            "new_customers",
            "New customers",
            "count",
            new_now,
            new_before,
            _change(new_now, new_before),
        ),
        Headline(
            "purchases",
            "Purchases",
            "count",
            purchases,
            prev_purchases,
            _change(purchases, prev_purchases),
        ),
        Headline(
            "revenue",
            "Revenue (net of refunds)",
            "cents",
            revenue,
            prev_revenue,
            _change(revenue, prev_revenue),
        ),
        Headline(
            "repeat_rate",
            "Returning buyers (share of the period's buyers who had bought before)",
            "share",
            share,
            prev_share,
            _change(share, prev_share) if rate.value is not None else None,
            delta_points=(
                (share - prev_share) * 100
                if rate.value is not None and prev_rate.value is not None
                else None
            ),
            rate=rate,
            previous_rate=prev_rate,
        ),
    ]


def valuable_cut(session: Session, workspace_id: str) -> int | None:
    """Net revenue (cents) from which a customer counts as valuable: the top
    VALUABLE_SHARE of buyers with positive revenue. None when nobody has spent yet."""
    n = int(
        session.execute(
            text(
                "SELECT COUNT(*) FROM customer_journey WHERE workspace_id = :ws "
                "AND revenue_cents > 0"
            ),
            {"ws": workspace_id},
        ).scalar_one()
    )
    if n == 0:
        return None
    offset = max(0, math.ceil(n * VALUABLE_SHARE) - 1)
    return int(
        session.execute(
            text(
                "SELECT revenue_cents FROM customer_journey WHERE workspace_id = :ws "
                "AND revenue_cents > 0 ORDER BY revenue_cents DESC LIMIT 1 OFFSET :o"
            ),
            {"ws": workspace_id, "o": offset},
        ).scalar_one()
    )


@dataclass(frozen=True)
class NewlyAtRisk:
    """Customers who crossed into "at risk" during the period, by the churn report's rule.

    method: the churn report's ("bg_nbd": the fitted model's P(alive); "heuristic": no
    purchase for k x the usual gap, used when the model cannot be fitted).
    customers: the first few, most value at risk first (the churn report's order);
    count and value_cents: all of them. at_risk_total: everyone at risk at the period's
    end, the number `/journey churn` shows for the same period.
    """

    method: str
    customers: list[ChurnCustomer]
    count: int
    value_cents: int
    at_risk_total: int


def newly_at_risk(
    session: Session,
    workspace_id: str,
    period: Period,
    now: datetime | None = None,
    limit: int = AT_RISK_LIST,
    fits: SharedFits | None = None,
) -> NewlyAtRisk:
    """Who became at risk during the period, from the same churn report `/journey churn`
    gives for it (so the digest never names someone that report does not count at risk).

    "Newly" is judged by one rule at both ends of the period: at risk at its end, and
    not at risk at its start. With the model, both ends use the report's fitted
    parameters (each customer's own history moving them across the line, not a refit);
    with the heuristic, the point k x their usual gap after their last purchase fell
    in the period. `fits` shares the buyers and the fits with the digest's value line.
    """
    fits = fits or SharedFits()
    report = churn_report(session, workspace_id, period, limit=0, now=now, fits=fits)
    if report.method == "bg_nbd" and None not in (report.r, report.alpha, report.a, report.b):
        return _newly_by_model(session, workspace_id, period, report, limit, fits)
    return _newly_by_rule(session, workspace_id, period, report, limit)


def _newly_by_model(
    session: Session,
    workspace_id: str,
    period: Period,
    report: ChurnReport,
    limit: int,
    fits: SharedFits,
) -> NewlyAtRisk:
    """The model's crossing. The churn report lists only its top customers, so the whole
    set is scored again from the same buyer summary with the report's own parameters
    (no second fit) through the churn module's scoring, rule and rows: the at-risk set at
    the end is the report's (checked against its count), and each customer's row is the
    one `/journey churn` shows."""
    params = BgNbdParams(
        float(report.r or 0), float(report.alpha or 0), float(report.a or 0), float(report.b or 0)
    )
    end = to_epoch(report.as_of)
    scored = score_buyers(
        params,
        fits.summary(session, workspace_id, end),
        fits.histories(session, workspace_id, end),
    )
    now_s = scored.summary
    risk = np.flatnonzero(scored.at_risk)
    if risk.size != report.at_risk_count:  # the same data and parameters: must agree
        log.warning(
            "digest at-risk count %s differs from the churn report's %s (%s)",
            risk.size,
            report.at_risk_count,
            workspace_id,
        )
    # Each of them at the period's start, with their history up to then (none: they had
    # not bought yet, so they were not at risk).
    start = min(to_epoch(period.start), end)
    before = read_summary(session, workspace_id, start)
    ids = now_s.customer_id[risk]
    was = np.zeros(risk.size, dtype=bool)
    if before.size:
        pos = np.minimum(np.searchsorted(before.customer_id, ids), before.size - 1)
        known = before.customer_id[pos] == ids
        k = pos[known]
        then = p_alive(params, before.x[k], before.t_x[k], before.T[k])
        was[known] = at_risk_mask(then, before.x[k])
    newly = risk[~was]
    top = scored.ranked(newly)[:limit]
    return NewlyAtRisk(
        "bg_nbd",
        churn_customers(session, workspace_id, scored, top, end),
        int(newly.size),
        round(float(scored.value_at_risk[newly].sum())),
        report.at_risk_count,
    )


def _newly_by_rule(
    session: Session, workspace_id: str, period: Period, report: ChurnReport, limit: int
) -> NewlyAtRisk:
    """The heuristic the churn report falls back to (the retention report's rule: at risk
    after k x the usual gap without a purchase, lapsed after 2k), crossed in the period."""
    workspace = get_workspace(session, workspace_id)
    end = to_epoch(report.as_of)
    typical = typical_gap_seconds(session, workspace_id, end) or float(DEFAULT_GAP_DAYS * DAY)
    params = {
        "ws": workspace_id,
        "start": to_epoch(period.start),
        "end": end,
        "k": workspace.at_risk_factor,
        "typical": typical,
        "limit": limit,
    }
    cond = (
        "cj.workspace_id = :ws AND cj.last_purchase_at < :end "
        f"AND :end - cj.last_purchase_at > :k * {_GAP} "
        f"AND :end - cj.last_purchase_at <= 2 * :k * {_GAP} "
        f"AND cj.last_purchase_at + :k * {_GAP} >= :start"
    )
    count, value = session.execute(
        text(f"SELECT COUNT(*), SUM({_VALUE}) FROM customer_journey cj WHERE {cond}"), params
    ).one()
    rows = session.execute(
        text(
            f"SELECT {AT_RISK_COLUMNS} "
            f"FROM customer_journey cj JOIN customer c ON c.id = cj.customer_id WHERE {cond} "
            "ORDER BY value DESC, cj.customer_id LIMIT :limit"
        ),
        params,
    ).all()
    customers = [heuristic_row(c) for c in at_risk_customers(rows, end)]
    return NewlyAtRisk(
        "heuristic", customers, int(count or 0), round(float(value or 0)), report.at_risk_count
    )


def best_channel(
    session: Session,
    workspace_id: str,
    period: Period,
    now: datetime | None = None,
    fits: SharedFits | None = None,
) -> BestChannel | None:
    """The value report's best channel for customers acquired in the VALUE_WINDOW_DAYS to
    the period's end, or None when no channel is clearly worth most or the models refuse
    the data (the value report then says why; a digest line would only repeat it)."""
    window = recent_window(period, VALUE_WINDOW_DAYS)
    report = value_report(session, workspace_id, window, now=now, fits=fits)
    if report.best_channel is None:
        return None
    row = next(c for c in report.channels if c.channel == report.best_channel)
    if row.value_per_customer_cents is None or row.value_per_customer_interval is None:
        return None
    return BestChannel(
        channel=row.channel,
        value_per_customer_cents=row.value_per_customer_cents,
        interval=row.value_per_customer_interval,
        customers=row.customers,
        horizon_months=report.horizon_months,
        window=window,
    )


def _has_data(session: Session, workspace_id: str) -> bool:
    row = session.execute(
        text("SELECT 1 FROM journey_event WHERE workspace_id = :ws LIMIT 1"), {"ws": workspace_id}
    ).first()
    return row is not None


def _last_activity(session: Session, workspace_id: str, before: datetime) -> datetime | None:
    at = session.execute(
        text(
            "SELECT MAX(occurred_at) FROM journey_event WHERE workspace_id = :ws "
            "AND occurred_at < :e"
        ),
        {"ws": workspace_id, "e": to_epoch(before)},
    ).scalar_one()
    return None if at is None else from_epoch(int(at))


def build_digest(
    session: Session,
    workspace_id: str,
    period: Period,
    *,
    cadence: str = "weekly",
    timezone: str = "UTC",
    scheduled_at: datetime | None = None,
    next_send_at: datetime | None = None,
    subscription_id: int | None = None,
    now: datetime | None = None,
) -> Digest:
    """The digest of one workspace for one period (raises NotFound for an unknown workspace)."""
    now = now or datetime.now(UTC)
    workspace = get_workspace(session, workspace_id)
    base = {
        "workspace_id": workspace_id,
        "subscription_id": subscription_id,
        "cadence": cadence,
        "period": period,
        "previous_period": period.previous(),
        "currency": workspace.currency,
        "scheduled_at": scheduled_at or now,
        "next_send_at": next_send_at,
        "timezone": timezone,
        "generated_at": now,
        "business": business(session, workspace_id),
    }
    if not _has_data(session, workspace_id):
        return Digest(
            **base,
            has_data=False,
            headlines=[],
            biggest_drop=None,
            biggest_drop_playbook=None,
            funnel_entered=0,
            at_risk=[],
            at_risk_count=0,
            at_risk_value_cents=0,
            review_candidates=0,
            review_names=[],
            notes=[
                "No customer data yet: import customers, orders or events (CSV) or connect "
                "a store, and the next digest will have numbers."
            ],
        )
    headlines = _headlines(session, workspace_id, period)
    last_activity = _last_activity(session, workspace_id, period.end)
    quiet = last_activity is None or last_activity < period.previous().start
    notes = []
    if not quiet and all(h.current == 0 and h.previous == 0 for h in headlines):
        notes.append("No purchases in this period or the one before it.")
    funnel = funnel_report(session, workspace_id, period)
    drop = funnel.biggest_drop
    # The at-risk list and the value line share the buyers' read and the fits.
    fits = SharedFits()
    newly = newly_at_risk(session, workspace_id, period, now=now, fits=fits)
    # Review candidates as of now: who to ask today, not who could have been asked.
    reviews = review_report(
        session,
        workspace_id,
        Period(period.start, max(period.end, now), period.label),
        now=now,
        limit=REVIEW_LIST,
    )
    best = (
        best_channel(session, workspace_id, period, now=now, fits=fits)
        if cadence in VALUE_CADENCES and not quiet
        else None
    )
    # The people named, with the sources they appear in (journey.reporting does the same
    # for the reports' lists).
    named = sources_of(
        session,
        workspace_id,
        [c.customer_id for c in newly.customers] + [c.customer_id for c in reviews.candidates],
    )
    return Digest(
        **base,
        has_data=True,
        headlines=headlines,
        biggest_drop=drop,
        biggest_drop_playbook=playbook_for_step(drop.to_stage) if drop else None,
        funnel_entered=funnel.entered,
        at_risk=[replace(c, sources=named.get(c.customer_id, ())) for c in newly.customers],
        at_risk_count=newly.count,
        at_risk_value_cents=newly.value_cents,
        review_candidates=reviews.total_candidates,
        review_names=[c.name or c.external_id for c in reviews.candidates],
        review_sources=[named.get(c.customer_id, ()) for c in reviews.candidates],
        notes=notes,
        funnel=funnel,
        quiet=quiet,
        last_activity_at=last_activity,
        at_risk_method=newly.method,
        at_risk_total=newly.at_risk_total,
        best_channel=best,
    )


def digest_for_subscription(
    session: Session,
    subscription: DigestSubscription,
    scheduled_at: datetime,
    now: datetime | None = None,
) -> Digest:
    """The digest a subscription's slot at `scheduled_at` sends, with its next send time."""
    workspace = get_workspace(session, subscription.workspace_id)
    period = digest_period(subscription.cadence, scheduled_at, workspace.timezone)
    return build_digest(
        session,
        subscription.workspace_id,
        period,
        cadence=subscription.cadence,
        timezone=subscription.timezone,
        scheduled_at=scheduled_at,
        next_send_at=next_send_after(Schedule.of(subscription), scheduled_at).at,
        subscription_id=subscription.id,
        now=now,
    )
