"""Digest subscriptions, their deliveries, alert rules, alert state, alert notifications and
their acknowledgements.

Transport-agnostic rows: channel and user ids are opaque strings the chat
adapter understands (Slack ids today); nothing here knows how a message is
posted. The delivery rows double as leases, which is how several replicas
sharing one database deliver each digest and each alert exactly once (see
`journey.schedule.leases`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from journey.models.types import EpochDateTime

# Values of the string columns, kept here so the core and the adapters agree.
CADENCES = ("daily", "weekly", "monthly")
SUBSCRIPTION_STATUSES = ("active", "paused")
DELIVERY_KINDS = ("digest", "pause_notice")
# pending: queued, nobody holds it yet (alert notifications); claimed: a replica holds
# the lease, or the lease lapsed and the row waits to be reclaimed; sent and skipped
# are final.
DELIVERY_STATES = ("pending", "claimed", "sent", "skipped")
ALERT_KINDS = ("retention_drop", "funnel_step_drop", "high_value_churn")
ALERT_STATES = ("firing", "resolved")


class DigestSubscription(SQLModel, table=True):
    """A channel that gets a digest on a calendar, at a wall-clock time of its subscriber.

    The timezone is the subscriber's, not the workspace's: "Monday 09:00" means
    nine in the morning where the person who asked for it lives, through DST
    switches. `resumed_at` marks where the schedule starts again after a pause,
    so resuming never replays the digests missed while paused.
    """

    __tablename__ = "digest_subscription"
    __table_args__ = (Index("ix_digest_subscription_status", "status", "workspace_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    channel_id: str = Field(max_length=32)
    cadence: str = Field(default="weekly", max_length=16)  # daily | weekly | monthly
    day_of_week: int | None = None  # weekly: 0 = Monday ... 6 = Sunday
    day_of_month: int | None = None  # monthly: 1..31, the month's last day when shorter
    local_time: str = Field(default="09:00", max_length=5)  # HH:MM in `timezone`
    timezone: str = Field(default="UTC", max_length=64)  # IANA name of the subscriber's zone
    subscriber_user_id: str | None = Field(default=None, max_length=32)
    status: str = Field(default="active", max_length=16)  # active | paused
    pause_reason: str | None = Field(default=None, max_length=300)
    paused_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    resumed_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    created_at: datetime = Field(sa_type=EpochDateTime)


class DigestDelivery(SQLModel, table=True):
    """One scheduled send of a subscription, and the lease on it.

    The unique (subscription_id, period_key) pair is the exactly-once guard: a
    replica claims a send by inserting its row, and only one insert can win.
    `period_key` is the scheduled local wall time (`2026-06-15T09:00`), or
    `pause:<that>` for the notice telling a subscriber their digest was paused.
    `attempts` is the fencing token: every (re)claim increments it and every
    later write is conditional on it, so a replica whose lease lapsed cannot
    overwrite the outcome of the one that took over. `posting_started_at` is
    written before the adapter is called: a later holder then knows an earlier
    attempt may have posted, and asks the adapter to check first.
    """

    __tablename__ = "digest_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "period_key", name="uq_digest_delivery_period"),
        Index("ix_digest_delivery_lease", "state", "lease_expires_at"),
        Index("ix_digest_delivery_scheduled", "subscription_id", "scheduled_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    subscription_id: int = Field(foreign_key="digest_subscription.id")
    kind: str = Field(default="digest", max_length=16)  # digest | pause_notice
    period_key: str = Field(max_length=40)
    scheduled_at: datetime = Field(sa_type=EpochDateTime)
    state: str = Field(default="claimed", max_length=16)  # claimed | sent | skipped
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    attempts: int = 0
    posting_started_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    late: bool = False
    note: str | None = Field(default=None, max_length=500)
    external_ref: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(sa_type=EpochDateTime)


class AlertRule(SQLModel, table=True):
    """One kind of alert for a workspace, with its thresholds.

    An alert fires only when the drop is at least `min_relative_drop` (a share
    of the baseline: 0.15 = 15% lower) on at least `min_sample` customers in
    both the recent and the baseline group, and a one-sided test says it is
    unlikely to be noise. `cooldown_hours` caps how often the same alert may
    be announced again after it resolved. `last_checked_at` doubles as the
    claim that makes one replica evaluate the rule per check interval.
    """

    __tablename__ = "alert_rule"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", name="uq_alert_rule_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    kind: str = Field(max_length=32)  # retention_drop | funnel_step_drop | high_value_churn
    enabled: bool = True
    channel_id: str | None = Field(default=None, max_length=32)
    min_relative_drop: float = 0.10
    min_sample: int = 50
    cooldown_hours: int = 72
    last_checked_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    disabled_reason: str | None = Field(default=None, max_length=300)
    # Who last pointed the rule at a channel (the chat adapter's user id): told when its
    # alerts can no longer be posted there. None for rules set before 0013 or by the console.
    set_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_type=EpochDateTime)


class AlertState(SQLModel, table=True):
    """Where one alert of a rule stands: firing or resolved, and when it last spoke.

    `key` names what dropped (`repeat_rate`, `step:decision->purchase`,
    `valuable_returns`), so the alert stays one alert while the condition
    lasts, however many checks see it. `last_notified_at` is when a firing was
    last announced; the cooldown counts from it. `details` keeps the last
    measurement, for the App Home and for debugging.
    """

    __tablename__ = "alert_state"
    __table_args__ = (UniqueConstraint("rule_id", "key", name="uq_alert_state_key"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    rule_id: int = Field(foreign_key="alert_rule.id")
    key: str = Field(max_length=100)
    state: str = Field(default="firing", max_length=16)  # firing | resolved
    fired_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    last_notified_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    details: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    updated_at: datetime = Field(sa_type=EpochDateTime)


class AlertNotification(SQLModel, table=True):
    """An announcement to make (an alert fired or resolved): an outbox row with a lease.

    Written in the same transaction as the state change it announces, so a
    crash can lose neither; delivered with the same lease and fencing rules as
    digests. `payload` is the explanation (journey.schedule.alerts.AlertNotice).
    """

    __tablename__ = "alert_notification"
    __table_args__ = (
        UniqueConstraint("alert_state_id", "event_key", name="uq_alert_notification_event"),
        Index("ix_alert_notification_lease", "state", "lease_expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    rule_id: int = Field(foreign_key="alert_rule.id")
    alert_state_id: int = Field(foreign_key="alert_state.id")
    event: str = Field(max_length=16)  # fired | resolved
    event_key: str = Field(max_length=40)  # "<event>:<epoch of the event>"
    scheduled_at: datetime = Field(sa_type=EpochDateTime)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    state: str = Field(default="pending", max_length=16)  # pending | claimed | sent | skipped
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    attempts: int = 0
    posting_started_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=EpochDateTime)
    late: bool = False
    note: str | None = Field(default=None, max_length=500)
    external_ref: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(sa_type=EpochDateTime)


class AlertAck(SQLModel, table=True):
    """Who acknowledged one alert notification, and when.

    An acknowledgement belongs to the notification (one announcement of a firing),
    not to the alert: the alert still resolves when the data says so, and a firing
    after recovery is a new notification that needs its own acknowledgement. The
    unique notification id makes the first click win, on every replica; later
    clicks read who it was. `user_id` is the chat adapter's opaque user id.
    """

    __tablename__ = "alert_ack"
    __table_args__ = (
        UniqueConstraint("notification_id", name="uq_alert_ack_notification"),
        Index("ix_alert_ack_state", "workspace_id", "alert_state_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    notification_id: int = Field(foreign_key="alert_notification.id")
    alert_state_id: int = Field(foreign_key="alert_state.id")
    user_id: str = Field(max_length=32)
    acked_at: datetime = Field(sa_type=EpochDateTime)
