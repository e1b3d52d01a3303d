"""One call from "which report, for whom, when" to a report object.

The CLI, the Slack bot and the local console are thin shells over this, so a
report means the same thing wherever it is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlmodel import Session

from journey.metrics.buyers import SharedFits
from journey.metrics.churn import churn_report
from journey.metrics.funnel import funnel_report
from journey.metrics.insights import weakest_stage
from journey.metrics.retention import retention_report
from journey.metrics.reviews import CANDIDATE_LIST, review_report
from journey.metrics.value import recent_window, value_report
from journey.periods import Period, resolve_period
from journey.reports import (
    ChurnReport,
    FunnelReport,
    Insight,
    RetentionReport,
    ReviewReport,
    ValueReport,
)
from journey.workspaces import business, get_workspace, resolve_channel

Report = FunnelReport | RetentionReport | ReviewReport | ChurnReport | ValueReport


@dataclass(frozen=True)
class Overview:
    """The headlines. Its at-risk numbers come from `churn` (the BG/NBD model, or the
    heuristic it falls back to), so they are the ones `/journey churn` lists."""

    funnel: FunnelReport
    retention: RetentionReport
    reviews: ReviewReport
    insight: Insight | None
    churn: ChurnReport
    # What customers are worth: every buyer's average 12-month value, and the channel
    # whose customers acquired in the 90 days to the period's end are worth most (when
    # the intervals say so). method "unavailable" with the reason when the models refuse.
    value: ValueReport | None = None


def workspace_period(
    session: Session,
    workspace_id: str,
    period: str | None = None,
    since: str | None = None,
    until: str | None = None,
    now: datetime | None = None,
) -> Period:
    """The period in the workspace's own timezone (raises NotFound for an unknown workspace)."""
    tz = get_workspace(session, workspace_id).timezone
    return resolve_period(now or datetime.now(UTC), tz, period, since, until)


def build_report(
    session: Session,
    workspace_id: str,
    kind: str,
    period: Period,
    channel: str | None = None,
    now: datetime | None = None,
    limit: int = CANDIDATE_LIST,
) -> Report:
    """funnel, retention, churn (the BG/NBD model, or the heuristic it falls back to),
    reviews or value (what customers and acquisition channels are worth), with the
    business it is about (name, demo data) for its header."""
    report: Report
    if channel:
        channel = resolve_channel(session, workspace_id, channel)
    if kind == "funnel":
        report = funnel_report(session, workspace_id, period, channel=channel)
    elif kind == "retention":
        report = retention_report(session, workspace_id, period, now=now)
    elif kind == "churn":
        report = churn_report(session, workspace_id, period, now=now, limit=limit)
    elif kind == "reviews":
        report = review_report(session, workspace_id, period, now=now, limit=limit)
    elif kind == "value":
        report = value_report(session, workspace_id, period, now=now)
    else:
        raise ValueError(f"unknown report kind {kind!r}")
    return replace(
        _with_sources(session, workspace_id, report), business=business(session, workspace_id)
    )


def _with_sources(session: Session, workspace_id: str, report: Report) -> Report:
    """The customer lists (at risk, overdue, review candidates) with each person's sources,
    so a person found in the shop and the CRM says so ("crm + shop")."""
    from journey.people import sources_of

    if isinstance(report, RetentionReport | ChurnReport):
        names = sources_of(session, workspace_id, [c.customer_id for c in report.at_risk])
        if names:
            at_risk = [replace(c, sources=names.get(c.customer_id, ())) for c in report.at_risk]
            return replace(report, at_risk=at_risk)
    if isinstance(report, ReviewReport):
        names = sources_of(session, workspace_id, [c.customer_id for c in report.candidates])
        if names:
            candidates = [
                replace(c, sources=names.get(c.customer_id, ())) for c in report.candidates
            ]
            return replace(report, candidates=candidates)
    return report


def build_insight(
    session: Session,
    workspace_id: str,
    period: Period,
    channel: str | None = None,
    now: datetime | None = None,
) -> Insight | None:
    if channel:
        channel = resolve_channel(session, workspace_id, channel)
    funnel = funnel_report(session, workspace_id, period, channel=channel)
    retention = None if channel else retention_report(session, workspace_id, period, now=now)
    return weakest_stage(funnel, retention)


def with_weakest_stage(
    session: Session,
    workspace_id: str,
    funnel: FunnelReport,
    now: datetime | None = None,
) -> FunnelReport:
    """The funnel carrying the insight every reply shows with it (Slack, the console, the
    CLI): its own, unless returning customers fell by more (`weakest_stage`). A funnel of
    one channel keeps its own: retention is not counted by channel."""
    if funnel.channel_filter:
        return funnel
    retention = retention_report(session, workspace_id, funnel.period, now=now)
    return replace(funnel, insight=weakest_stage(funnel, retention))


def build_overview(
    session: Session, workspace_id: str, period: Period, now: datetime | None = None
) -> Overview:
    owner = business(session, workspace_id)
    funnel = replace(funnel_report(session, workspace_id, period), business=owner)
    retention = replace(retention_report(session, workspace_id, period, now=now), business=owner)
    reviews = replace(review_report(session, workspace_id, period, now=now), business=owner)
    # Both reports have the same as-of time (the value report's window ends where the
    # period does): one read of the buyers and one fit of each model serve both, the
    # value report first since its read brings the buyers and its cohort together.
    fits = SharedFits()
    value = value_report(session, workspace_id, recent_window(period), now=now, fits=fits)
    churn = replace(
        churn_report(session, workspace_id, period, limit=0, now=now, fits=fits), business=owner
    )
    return Overview(funnel, retention, reviews, weakest_stage(funnel, retention), churn, value)
