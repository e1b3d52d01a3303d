"""Subscribing a channel to a digest, pausing and resuming it.

The `/journey digest ...` command (bot/) will be a thin shell over these. Every
change moves the schedule's starting point (`resumed_at`) to now, so a new or
changed or resumed subscription starts with its next slot and never replays the
ones before it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, select

from journey.errors import JourneyError, NotFound
from journey.models.schedule import DigestSubscription
from journey.schedule.calendar import Schedule, parse_local_time
from journey.workspaces import get_workspace


def subscribe(
    session: Session,
    workspace_id: str,
    channel_id: str,
    *,
    cadence: str = "weekly",
    local_time: str = "09:00",
    timezone: str = "UTC",
    day_of_week: int | None = 0,
    day_of_month: int | None = 1,
    subscriber_user_id: str | None = None,
    now: datetime | None = None,
) -> DigestSubscription:
    """Create the channel's digest subscription, or change it if the channel has one.

    Raises JourneyError with a plain explanation for a bad time, day or timezone.
    """
    now = now or datetime.now(UTC)
    get_workspace(session, workspace_id)
    schedule = Schedule(
        cadence=cadence,
        local_time=parse_local_time(local_time),
        timezone=timezone,
        day_of_week=day_of_week if cadence == "weekly" else None,
        day_of_month=day_of_month if cadence == "monthly" else None,
    )
    sub = session.exec(
        select(DigestSubscription).where(
            DigestSubscription.workspace_id == workspace_id,
            DigestSubscription.channel_id == channel_id,
        )
    ).first()
    if sub is None:
        sub = DigestSubscription(workspace_id=workspace_id, channel_id=channel_id, created_at=now)
    sub.cadence = schedule.cadence
    sub.local_time = schedule.local_time.strftime("%H:%M")
    sub.timezone = schedule.timezone
    sub.day_of_week = schedule.day_of_week
    sub.day_of_month = schedule.day_of_month
    sub.subscriber_user_id = subscriber_user_id or sub.subscriber_user_id
    sub.status, sub.pause_reason, sub.paused_at = "active", None, None
    sub.resumed_at = now
    session.add(sub)
    session.flush()
    return sub


def _get(session: Session, workspace_id: str, subscription_id: int) -> DigestSubscription:
    sub = session.get(DigestSubscription, subscription_id)
    if sub is None or sub.workspace_id != workspace_id:
        raise NotFound(f"There is no digest subscription {subscription_id} in this workspace.")
    return sub


def pause_subscription(
    session: Session,
    workspace_id: str,
    subscription_id: int,
    reason: str = "paused by a user",
    now: datetime | None = None,
) -> DigestSubscription:
    sub = _get(session, workspace_id, subscription_id)
    sub.status, sub.pause_reason, sub.paused_at = "paused", reason, now or datetime.now(UTC)
    session.add(sub)
    session.flush()
    return sub


def resume_subscription(
    session: Session, workspace_id: str, subscription_id: int, now: datetime | None = None
) -> DigestSubscription:
    """Active again from its next slot after now; what was missed while paused is not sent."""
    sub = _get(session, workspace_id, subscription_id)
    if sub.status == "active":
        raise JourneyError("This digest is not paused.")
    sub.status, sub.pause_reason, sub.resumed_at = "active", None, now or datetime.now(UTC)
    session.add(sub)
    session.flush()
    return sub


def subscriptions(session: Session, workspace_id: str) -> list[DigestSubscription]:
    return list(
        session.exec(
            select(DigestSubscription)
            .where(DigestSubscription.workspace_id == workspace_id)
            .order_by(DigestSubscription.id)
        )
    )
