"""Acknowledging an alert: who saw it and took it on, stored, once.

An acknowledgement is attached to the notification that announced a firing,
never to the alert's state, for two reasons users rely on:

- the alert still resolves by the data: the lifecycle in alerts.py never reads
  acknowledgements, so an acknowledged alert is announced as resolved like any
  other;
- a firing after recovery is a new notification and needs a new acknowledgement;
  the old one stays with the message it was given on.

The first acknowledgement wins on every replica (an INSERT that does nothing on
conflict, in a transaction of its own so SQLite takes its write lock before
reading anything); later clicks are told who it was and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from journey.models.schedule import AlertAck, AlertNotification, AlertRule, AlertState
from journey.models.types import from_epoch, to_epoch


@dataclass(frozen=True)
class Acknowledgement:
    user_id: str
    acked_at: datetime


@dataclass(frozen=True)
class AckResult:
    """What one click did.

    status: `acknowledged` (this click recorded it), `already` (someone had; `ack`
    says who and when) or `not_found` (no such alert notification in this workspace:
    a message from another installation, or a forged button). `resolved`: the alert
    has resolved (or fired again) since this notification; the acknowledgement is
    still recorded, for the record.
    """

    status: str
    ack: Acknowledgement | None = None
    resolved: bool = False
    title: str | None = None


def find_notification(
    session: Session,
    workspace_id: str,
    rule_id: int,
    key: str,
    message_ref: str | None = None,
) -> AlertNotification | None:
    """The `fired` notification an Acknowledge button belongs to.

    The button carries the rule and the alert's key; the message it sits on is the
    notification whose `external_ref` (Slack's message ts) is `message_ref`. When no
    notification has that ref (the post was recorded by another replica's check, or
    the ref is unknown), the alert's latest announcement is the one meant.
    """
    state = session.exec(
        select(AlertState).where(
            AlertState.workspace_id == workspace_id,
            AlertState.rule_id == rule_id,
            AlertState.key == key,
        )
    ).first()
    if state is None:
        return None
    fired = select(AlertNotification).where(
        AlertNotification.workspace_id == workspace_id,
        AlertNotification.alert_state_id == state.id,
        AlertNotification.event == "fired",
    )
    if message_ref:
        exact = session.exec(fired.where(AlertNotification.external_ref == message_ref)).first()
        if exact is not None:
            return exact
    return session.exec(
        fired.order_by(col(AlertNotification.scheduled_at).desc(), col(AlertNotification.id).desc())
    ).first()


def _ack_of(engine: Engine, notification_id: int) -> Acknowledgement | None:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT user_id, acked_at FROM alert_ack WHERE notification_id = :n"),
            {"n": notification_id},
        ).first()
    return None if row is None else Acknowledgement(str(row[0]), from_epoch(row[1]))


def acknowledge(
    engine: Engine,
    workspace_id: str,
    *,
    rule_id: int,
    key: str,
    user_id: str,
    message_ref: str | None = None,
    now: datetime | None = None,
) -> AckResult:
    """Record that `user_id` acknowledged the alert notification a button was on."""
    now = now or datetime.now(UTC)
    with Session(engine) as session:
        notification = find_notification(session, workspace_id, rule_id, key, message_ref)
        if notification is None or notification.id is None:
            return AckResult("not_found")
        state = session.get(AlertState, notification.alert_state_id)
        notification_id, state_id = notification.id, notification.alert_state_id
        title = (notification.payload or {}).get("title")
        current = (
            state is not None
            and state.state == "firing"
            and (state.fired_at is None or notification.scheduled_at >= state.fired_at)
        )
    with engine.begin() as conn:
        won = conn.execute(
            text(
                "INSERT INTO alert_ack (workspace_id, notification_id, alert_state_id, user_id, "
                "acked_at) VALUES (:ws, :n, :s, :u, :at) "
                "ON CONFLICT (notification_id) DO NOTHING RETURNING id"
            ),
            {
                "ws": workspace_id,
                "n": notification_id,
                "s": state_id,
                "u": user_id[:32],
                "at": to_epoch(now),
            },
        ).first()
    if won is not None:
        return AckResult("acknowledged", Acknowledgement(user_id[:32], now), not current, title)
    return AckResult("already", _ack_of(engine, notification_id), not current, title)


@dataclass(frozen=True)
class FiringAlert:
    """An alert firing now, and whether its announcement was acknowledged.

    `announced` False: it fired within the rule's cooldown of an earlier
    announcement, so nothing was posted and there is nothing to acknowledge.
    """

    rule_id: int
    kind: str
    key: str
    title: str
    channel_id: str | None
    fired_at: datetime | None
    announced: bool
    ack: Acknowledgement | None


def firing_alerts(session: Session, workspace_id: str, limit: int = 50) -> list[FiringAlert]:
    """The workspace's firing alerts, newest first, each with the acknowledgement of the
    notification that announced its current firing."""
    rows = session.exec(
        select(AlertState, AlertRule)
        .join(AlertRule, col(AlertRule.id) == AlertState.rule_id)
        .where(AlertState.workspace_id == workspace_id, AlertState.state == "firing")
        .order_by(col(AlertState.fired_at).desc(), col(AlertState.id))
        .limit(limit)
    ).all()
    out = []
    for state, rule in rows:
        fired = select(AlertNotification).where(
            AlertNotification.workspace_id == workspace_id,
            AlertNotification.alert_state_id == state.id,
            AlertNotification.event == "fired",
        )
        if state.fired_at is not None:
            fired = fired.where(AlertNotification.scheduled_at >= state.fired_at)
        notification = session.exec(
            fired.order_by(col(AlertNotification.scheduled_at).desc())
        ).first()
        ack = None
        if notification is not None:
            row = session.exec(
                select(AlertAck).where(
                    AlertAck.workspace_id == workspace_id,
                    AlertAck.notification_id == notification.id,
                )
            ).first()
            ack = None if row is None else Acknowledgement(row.user_id, row.acked_at)
        title = (notification.payload or {}).get("title") if notification else None
        out.append(
            FiringAlert(
                rule_id=rule.id or 0,
                kind=rule.kind,
                key=state.key,
                title=title or state.key,
                channel_id=rule.channel_id,
                fired_at=state.fired_at,
                announced=notification is not None,
                ack=ack,
            )
        )
    return out
