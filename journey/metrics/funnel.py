"""The funnel: how far the customers who entered in a period got, and how fast.

Cohort view: a customer belongs to the period in which they were first seen, and
counts at a stage if they reached it (or any later stage) before the period
ended. The previous period is measured the same way, so the comparison is fair.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel import Session

from journey.errors import JourneyError
from journey.models.types import to_epoch
from journey.people import count as people_count
from journey.periods import Period
from journey.playbooks import playbook_for_step
from journey.reports import ChannelFunnel, FunnelReport, Insight, StageStep, StepChange
from journey.stats import median_from_histogram, two_proportion_p_value, wilson
from journey.workspaces import stage_model

TOP_CHANNELS = 5
MEDIAN_SAMPLE = 200_000
UNKNOWN_CHANNEL = "unknown"
OTHER_CHANNEL = "other"


@dataclass
class _Counts:
    entered: int
    reached: list[int]
    recorded: list[int]

    def add(self, other: _Counts) -> None:
        self.entered += other.entered
        self.reached = [a + b for a, b in zip(self.reached, other.reached, strict=True)]
        self.recorded = [a + b for a, b in zip(self.recorded, other.recorded, strict=True)]


def _channel_filter(channel: str | None) -> str:
    """SQL for the channel filter; `unknown` is the breakdown's name for no channel."""
    if not channel:
        return ""
    if channel == UNKNOWN_CHANNEL:
        return " AND channel IS NULL"
    if channel == OTHER_CHANNEL:
        raise JourneyError(
            "`other` groups the smaller channels of the breakdown; name one of them instead."
        )
    return " AND channel = :channel"


def _cohort_by_channel(
    session: Session, workspace_id: str, n: int, period: Period, channel: str | None
) -> dict[str, _Counts]:
    reached = ", ".join(f"SUM(CASE WHEN reached_{i} < :end THEN 1 ELSE 0 END)" for i in range(n))
    recorded = ", ".join(
        f"SUM(CASE WHEN reached_{i} < :end AND (recorded_mask & {1 << i}) <> 0 THEN 1 ELSE 0 END)"
        for i in range(n)
    )
    channel_filter = _channel_filter(channel)
    rows = session.execute(
        text(
            f"SELECT channel, COUNT(*), {reached}, {recorded} FROM customer_journey "
            "WHERE workspace_id = :ws AND reached_0 >= :start AND reached_0 < :end"
            f"{channel_filter} GROUP BY channel"
        ),
        {
            "ws": workspace_id,
            "start": to_epoch(period.start),
            "end": to_epoch(period.end),
            "channel": channel,
        },
    ).all()
    out: dict[str, _Counts] = {}
    for row in rows:
        counts = _Counts(
            int(row[1]),
            [int(v or 0) for v in row[2 : 2 + n]],
            [int(v or 0) for v in row[2 + n : 2 + 2 * n]],
        )
        key = row[0] or UNKNOWN_CHANNEL
        if key in out:
            out[key].add(counts)
        else:
            out[key] = counts
    return out


def _both(i: int) -> int:
    """recorded_mask bits that must be set to time the step into stage i."""
    return (1 << i) | (1 << (i - 1) if i > 1 else 0)


def median_sample_every(entered: int) -> int:
    """Every how many customers the medians look at: all of them up to
    MEDIAN_SAMPLE, then an even 1-in-k sample (by customer id) of larger cohorts.

    Grouping a million durations by hour costs SQLite over a second per step; a
    200,000-customer sample moves a median by well under an hour, and the report
    says the medians were sampled.
    """
    return max(1, -(-entered // MEDIAN_SAMPLE))


def _median_hours(
    session: Session,
    workspace_id: str,
    n: int,
    period: Period,
    channel: str | None,
    every: int = 1,
) -> list[float | None]:
    """Median time from stage i-1 to stage i, exact to the hour, computed from an
    hourly histogram in SQL because SQLite has no percentile function.

    Only customers with both stages recorded count (the first stage's time may be
    the customer's first-seen date): an inferred stage has no time of its own, and
    its zero duration would drag the median down."""
    if n < 2:
        return []
    channel_filter = _channel_filter(channel)
    if every > 1:
        channel_filter += f" AND customer_id % {int(every)} = 0"
    parts = [
        f"SELECT {i} AS step, (reached_{i} - reached_{i - 1}) / 3600 AS hours, COUNT(*) AS n "
        "FROM customer_journey WHERE workspace_id = :ws AND reached_0 >= :start "
        f"AND reached_0 < :end AND reached_{i} < :end "
        f"AND (recorded_mask & {_both(i)}) = {_both(i)}{channel_filter} GROUP BY 2"
        for i in range(1, n)
    ]
    rows = session.execute(
        text(" UNION ALL ".join(parts)),
        {
            "ws": workspace_id,
            "start": to_epoch(period.start),
            "end": to_epoch(period.end),
            "channel": channel,
        },
    ).all()
    histograms: dict[int, dict[int, int]] = {i: {} for i in range(1, n)}
    for step, hours, count in rows:
        histograms[int(step)][int(hours)] = int(count)
    medians: list[float | None] = [None]
    for i in range(1, n):
        median = median_from_histogram(histograms[i])
        medians.append(None if median is None else float(median))
    return medians


def _total(by_channel: dict[str, _Counts], n: int) -> _Counts:
    total = _Counts(0, [0] * n, [0] * n)
    for counts in by_channel.values():
        total.add(counts)
    return total


def _changes(stages: list[str], now: _Counts, before: _Counts) -> list[StepChange]:
    changes = []
    for i in range(1, len(stages)):
        current = wilson(now.reached[i], now.reached[i - 1])
        previous = wilson(before.reached[i], before.reached[i - 1])
        delta = None
        if current.value is not None and previous.value is not None:
            delta = (current.value - previous.value) * 100
        p = two_proportion_p_value(
            now.reached[i], now.reached[i - 1], before.reached[i], before.reached[i - 1]
        )
        changes.append(
            StepChange(
                stages[i - 1], stages[i], current, previous, delta, p, p is not None and p < 0.05
            )
        )
    return changes


def _channels(by_channel: dict[str, _Counts], n: int, goal: int) -> list[ChannelFunnel]:
    ranked = sorted(by_channel.items(), key=lambda kv: (-kv[1].entered, kv[0]))
    top = ranked[:TOP_CHANNELS]
    rest = ranked[TOP_CHANNELS:]
    if rest:
        other = _Counts(0, [0] * n, [0] * n)
        for _, counts in rest:
            other.add(counts)
        top.append((OTHER_CHANNEL, other))
    return [
        ChannelFunnel(name, c.entered, c.reached, wilson(c.reached[goal], c.entered))
        for name, c in top
    ]


def _largest_drop(changes: list[StepChange], last_step: int) -> StepChange | None:
    """The step with the lowest conversion, up to the purchase, among steps that lost
    someone (None when none did).

    Steps after the purchase (retention, advocacy) are left out: a cohort that
    entered this month has not had time to come back, so those steps are always
    the "lowest" and say nothing; their declines still count in the insight, and
    the retention report measures them properly.
    """
    # A step nobody left is no drop-off: naming it (and a playbook for it) would be
    # advice on nothing, as on a shop whose first stages are inferred from purchases.
    measurable = [
        c
        for c in changes[:last_step]
        if c.current.value is not None and c.current.numerator < c.current.denominator
    ]
    return min(measurable, key=lambda c: c.current.value or 0) if measurable else None


def _insight(changes: list[StepChange], biggest_drop: StepChange | None) -> Insight | None:
    """The weakest step: a significant decline beats a merely low conversion,
    because a drop against last period is news the team can act on."""
    declines = [c for c in changes if c.significant and (c.delta_points or 0) < 0]
    if declines:
        worst = min(declines, key=lambda c: c.delta_points or 0)
        reason = "largest_decline"
    elif biggest_drop is not None:
        worst = biggest_drop
        reason = "largest_drop"
    else:
        return None
    lost = worst.current.denominator - worst.current.numerator
    return Insight(
        stage=worst.to_stage,
        reason=reason,
        from_stage=worst.from_stage,
        rate=worst.current,
        previous=worst.previous,
        delta_points=worst.delta_points,
        lost=lost,
        playbook=playbook_for_step(worst.to_stage),
    )


def funnel_report(
    session: Session, workspace_id: str, period: Period, channel: str | None = None
) -> FunnelReport:
    model = stage_model(session, workspace_id)
    stages = list(model.stages)
    n = len(stages)
    previous_period = period.previous()
    by_channel = _cohort_by_channel(session, workspace_id, n, period, channel)
    before = _total(_cohort_by_channel(session, workspace_id, n, previous_period, channel), n)
    now = _total(by_channel, n)
    every = median_sample_every(now.entered)
    medians = _median_hours(session, workspace_id, n, period, channel, every)

    steps = [
        StageStep(
            stage=stages[i],
            reached=now.reached[i],
            inferred=now.reached[i] - now.recorded[i],
            overall=wilson(now.reached[i], now.entered),
            step=None if i == 0 else wilson(now.reached[i], now.reached[i - 1]),
            median_hours_from_previous=medians[i] if i < len(medians) else None,
        )
        for i in range(n)
    ]
    changes = _changes(stages, now, before)
    purchase = model.purchase_position
    goal = purchase if purchase is not None else n - 1
    biggest_drop = _largest_drop(changes, goal)
    return FunnelReport(
        workspace_id=workspace_id,
        period=period,
        previous_period=previous_period,
        channel_filter=channel,
        stages=steps,
        entered=now.entered,
        previous_entered=before.entered,
        biggest_drop=biggest_drop,
        changes=changes,
        channels=[] if channel else _channels(by_channel, n, goal),
        purchase_stage=stages[purchase] if purchase is not None else None,
        insight=_insight(changes, biggest_drop),
        median_sample_every=every,
        generated_at=datetime.now(UTC),
        people=people_count(session, workspace_id),
    )
