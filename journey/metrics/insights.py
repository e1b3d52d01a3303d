"""Insights: the one weakest stage of the journey right now, and its playbook.

A pure function of reports already computed (no store access), so the funnel,
the overview, the CLI and later the digests agree on it. A significant decline
against the previous period beats a merely low conversion, because a change is
news a team can act on; among declines, the largest relative one wins.
"""

from __future__ import annotations

from journey.playbooks import playbook_for
from journey.reports import FunnelReport, Insight, RetentionReport
from journey.stats import poisson_rate_p_value

RETENTION = "retention"


def returning_decline(retention: RetentionReport) -> Insight | None:
    """Fewer returning customers than in the previous period, beyond noise."""
    now, before = retention.returning, retention.previous_returning
    if before == 0 or now >= before:
        return None
    p = poisson_rate_p_value(now, before)
    if p is None or p >= 0.05:
        return None
    return Insight(
        stage=RETENTION,
        reason="returning_decline",
        from_stage=None,
        rate=None,
        previous=None,
        delta_points=None,
        lost=before - now,
        playbook=playbook_for(RETENTION),
        current_count=now,
        previous_count=before,
        p_value=p,
    )


def relative_decline(insight: Insight) -> float:
    """How much smaller the current figure is than the previous one, as a share of it."""
    if insight.current_count is not None and insight.previous_count:
        return (insight.previous_count - insight.current_count) / insight.previous_count
    if insight.rate is None or insight.previous is None or not insight.previous.value:
        return 0.0
    return (insight.previous.value - (insight.rate.value or 0.0)) / insight.previous.value


def weakest_stage(funnel: FunnelReport, retention: RetentionReport | None = None) -> Insight | None:
    """The funnel's own insight, unless returning customers fell by more."""
    declines = [i for i in (funnel.insight,) if i is not None and i.reason == "largest_decline"]
    if retention is not None and (returning := returning_decline(retention)) is not None:
        declines.append(returning)
    if declines:
        return max(declines, key=relative_decline)
    return funnel.insight
