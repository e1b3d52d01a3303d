"""Where a workspace's digests and alerts stand, as plain data for the App Home.

One read of the workspace's subscriptions, alert rules and firing alerts (with
their acknowledgements), so the Home tab renders it without a query of its own.
Read-only: looking at the Home tab creates no default rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from journey.errors import JourneyError
from journey.models.schedule import AlertRule, DigestSubscription
from journey.schedule.acks import FiringAlert, firing_alerts
from journey.schedule.calendar import Schedule, next_send_after

# More than a Home tab can show; the count says how many there are in all.
DIGEST_LIMIT = 50


@dataclass(frozen=True)
class DigestStatus:
    """One channel's digest: its calendar, and its next send or why it is paused.

    `schedule` is the calendar in words ("every Monday at 09:00 (Europe/Paris)");
    `next_send_at` is None when paused or when the stored schedule is invalid.
    """

    subscription_id: int
    channel_id: str
    cadence: str
    day_of_week: int | None
    day_of_month: int | None
    local_time: str
    timezone: str
    schedule: str
    active: bool
    next_send_at: datetime | None
    pause_reason: str | None
    paused_at: datetime | None


@dataclass(frozen=True)
class RuleStatus:
    """One alert rule: on or off (and why), where it posts, and its thresholds."""

    kind: str
    enabled: bool
    channel_id: str | None
    min_relative_drop: float
    min_sample: int
    cooldown_hours: int
    disabled_reason: str | None
    last_checked_at: datetime | None


@dataclass(frozen=True)
class ScheduleStatus:
    digests: list[DigestStatus]
    digest_count: int  # all of the workspace's subscriptions, shown or not
    rules: list[RuleStatus]
    firing: list[FiringAlert] = field(default_factory=list)


def _digest(sub: DigestSubscription, now: datetime) -> DigestStatus:
    try:
        schedule = Schedule.of(sub)
        words = schedule.describe()
        nxt = next_send_after(schedule, now).at if sub.status == "active" else None
    except JourneyError as exc:  # a stored schedule that no longer validates
        words, nxt = f"an invalid schedule ({exc})", None
    return DigestStatus(
        subscription_id=sub.id or 0,
        channel_id=sub.channel_id,
        cadence=sub.cadence,
        day_of_week=sub.day_of_week,
        day_of_month=sub.day_of_month,
        local_time=sub.local_time,
        timezone=sub.timezone,
        schedule=words,
        active=sub.status == "active",
        next_send_at=nxt,
        pause_reason=sub.pause_reason,
        paused_at=sub.paused_at,
    )


def schedule_status(
    session: Session, workspace_id: str, now: datetime | None = None, limit: int = DIGEST_LIMIT
) -> ScheduleStatus:
    """The workspace's digests (active first, then by channel), rules and firing alerts."""
    now = now or datetime.now(UTC)
    count = session.exec(
        select(func.count())
        .select_from(DigestSubscription)
        .where(DigestSubscription.workspace_id == workspace_id)
    ).one()
    subs = session.exec(
        select(DigestSubscription)
        .where(DigestSubscription.workspace_id == workspace_id)
        .order_by(col(DigestSubscription.status), col(DigestSubscription.channel_id))
        .limit(limit)
    ).all()
    rules = session.exec(
        select(AlertRule).where(AlertRule.workspace_id == workspace_id).order_by(col(AlertRule.id))
    ).all()
    return ScheduleStatus(
        digests=[_digest(s, now) for s in subs],
        digest_count=int(count),
        rules=[
            RuleStatus(
                kind=r.kind,
                enabled=r.enabled,
                channel_id=r.channel_id,
                min_relative_drop=r.min_relative_drop,
                min_sample=r.min_sample,
                cooldown_hours=r.cooldown_hours,
                disabled_reason=r.disabled_reason,
                last_checked_at=r.last_checked_at,
            )
            for r in rules
        ],
        firing=firing_alerts(session, workspace_id),
    )
