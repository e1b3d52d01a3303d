"""When the chat app is removed from a workspace: stop, wait, then forget.

Removing the app is the business saying "stop". So at once (`stop_workspace`):

- every connected source is paused and its stored key deleted (a key kept for a
  business that left is a liability, and no sync may use it);
- its digests are paused and its alert rules disabled, each with a reason that
  says why, so a reinstall can tell them from the ones people paused themselves;
- the workspace is marked `uninstalled_at`, which scheduled syncs respect too.

Its data (customers, events, reports' state, schedules, the installation row)
stays for a grace period, `JOURNEY_PURGE_AFTER_DAYS` (30 days by default), so an
uninstall by mistake costs nothing but re-entering the keys. After it the
scheduler deletes the workspace (`purge_due`); `journey workspaces purge W`
does so at once. A reinstall within the grace period (`resume_workspace`)
resumes the digests and alerts the uninstall stopped and clears the mark; the
sources stay paused until someone enters their keys again, and the caller is
told which.

The core knows nothing of Slack: "uninstalled" is a fact about a tenant, given
by the adapter (bot/listeners/events/lifecycle.py).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, or_, select, update
from sqlmodel import Session, SQLModel

from journey.errors import JourneyError
from journey.models import Source, Workspace
from journey.models.installation import SlackInstallation
from journey.models.schedule import AlertRule, DigestSubscription
from journey.sources import CONNECTORS
from journey.sources.manage import ACTIVE, PAUSED

log = logging.getLogger(__name__)

DEFAULT_PURGE_AFTER = timedelta(days=30)
# The reason written on what the uninstall stopped; a reinstall resumes exactly these.
UNINSTALLED = "journey was removed from this workspace"
SOURCE_STOPPED = (
    "journey was removed from this workspace, so this source's key was deleted. "
    "Connect it again (`/journey connect`, or `journey sources add`) to sync it."
)


def purge_after() -> timedelta:
    """The grace period before an uninstalled workspace's data is deleted."""
    raw = os.environ.get("JOURNEY_PURGE_AFTER_DAYS", "").strip()
    if not raw:
        return DEFAULT_PURGE_AFTER
    try:
        days = float(raw)
    except ValueError:
        raise JourneyError(
            f"JOURNEY_PURGE_AFTER_DAYS must be a number of days, got {raw!r}."
        ) from None
    if days < 0:
        raise JourneyError("JOURNEY_PURGE_AFTER_DAYS cannot be negative (0 deletes at once).")
    return timedelta(days=days)


@dataclass
class Stopped:
    """What an uninstall stopped."""

    workspace_id: str
    sources: list[str] = field(default_factory=list)
    digests: int = 0
    alerts: int = 0
    purge_at: datetime | None = None


def stop_workspace(
    session: Session, workspace_id: str, now: datetime, grace: timedelta | None = None
) -> Stopped:
    """Pause the workspace's sources (deleting their keys), digests and alerts, and mark
    it uninstalled. Safe to repeat (Slack may send the event more than once)."""
    stopped = Stopped(workspace_id)
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        return stopped  # no data, no schedules: nothing to stop
    sources = session.exec(  # type: ignore[call-overload]
        select(Source).where(
            Source.workspace_id == workspace_id,
            Source.kind.in_(list(CONNECTORS)),  # type: ignore[attr-defined]
            or_(Source.credentials.is_not(None), Source.status == ACTIVE),  # type: ignore[union-attr]
        )
    ).scalars()
    for source in sources:
        source.credentials = None
        source.status = PAUSED
        source.last_error = SOURCE_STOPPED
        session.add(source)
        stopped.sources.append(source.name)
    stopped.digests = session.execute(
        update(DigestSubscription)
        .where(
            DigestSubscription.workspace_id == workspace_id,  # type: ignore[arg-type]
            DigestSubscription.status == "active",  # type: ignore[arg-type]
        )
        .values(status="paused", pause_reason=UNINSTALLED, paused_at=now)
    ).rowcount
    stopped.alerts = session.execute(
        update(AlertRule)
        .where(
            AlertRule.workspace_id == workspace_id,  # type: ignore[arg-type]
            AlertRule.enabled.is_(True),  # type: ignore[attr-defined]
        )
        .values(enabled=False, disabled_reason=UNINSTALLED)
    ).rowcount
    if workspace.uninstalled_at is None:
        workspace.uninstalled_at = now
        session.add(workspace)
    stopped.purge_at = workspace.uninstalled_at + (purge_after() if grace is None else grace)
    return stopped


@dataclass
class Resumed:
    """What a reinstall within the grace period brought back, and what waits for keys."""

    workspace_id: str
    was_uninstalled: bool = False
    digests: int = 0
    alerts: int = 0
    need_keys: list[str] = field(default_factory=list)


def resume_workspace(session: Session, workspace_id: str, now: datetime) -> Resumed:
    """Undo what `stop_workspace` did, except the deleted keys (those sources are listed
    in `need_keys`). Digests start again from now, never replaying the missed ones."""
    resumed = Resumed(workspace_id)
    workspace = session.get(Workspace, workspace_id)
    if workspace is None or workspace.uninstalled_at is None:
        return resumed
    resumed.was_uninstalled = True
    resumed.digests = session.execute(
        update(DigestSubscription)
        .where(
            DigestSubscription.workspace_id == workspace_id,  # type: ignore[arg-type]
            DigestSubscription.status == "paused",  # type: ignore[arg-type]
            DigestSubscription.pause_reason == UNINSTALLED,  # type: ignore[arg-type]
        )
        .values(status="active", pause_reason=None, paused_at=None, resumed_at=now)
    ).rowcount
    resumed.alerts = session.execute(
        update(AlertRule)
        .where(
            AlertRule.workspace_id == workspace_id,  # type: ignore[arg-type]
            AlertRule.disabled_reason == UNINSTALLED,  # type: ignore[arg-type]
        )
        .values(enabled=True, disabled_reason=None)
    ).rowcount
    resumed.need_keys = list(
        session.exec(  # type: ignore[call-overload]
            select(Source.name).where(
                Source.workspace_id == workspace_id,
                Source.status == PAUSED,  # type: ignore[arg-type]
                Source.last_error == SOURCE_STOPPED,  # type: ignore[arg-type]
            )
        ).scalars()
    )
    workspace.uninstalled_at = None
    session.add(workspace)
    return resumed


@dataclass
class Purged:
    workspace_id: str
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def purge_workspace(session: Session, workspace_id: str) -> Purged:
    """Delete every row of the workspace: its data, schedules, sources and keys, the
    workspace itself and its chat installation. Only rows carrying this workspace's id
    are touched. Children first (the tables' foreign keys say the order)."""
    purged = Purged(workspace_id)
    for table in reversed(SQLModel.metadata.sorted_tables):
        if "workspace_id" not in table.c:
            continue
        count = session.execute(delete(table).where(table.c.workspace_id == workspace_id)).rowcount
        if count:
            purged.rows[table.name] = count
    installs = session.execute(
        delete(SlackInstallation).where(
            or_(
                SlackInstallation.id == workspace_id,  # type: ignore[arg-type]
                SlackInstallation.team_id == workspace_id,  # type: ignore[arg-type]
            )
        )
    ).rowcount
    if installs:
        purged.rows["slack_installation"] = installs
    if session.execute(delete(Workspace).where(Workspace.id == workspace_id)).rowcount:  # type: ignore[arg-type]
        purged.rows["workspace"] = 1
    return purged


def purge_due(engine: Engine, now: datetime, grace: timedelta | None = None) -> list[Purged]:
    """Delete every workspace uninstalled longer than the grace period ago (the
    scheduler's job). Each workspace in its own transaction."""
    grace = purge_after() if grace is None else grace
    cutoff = now - grace
    with Session(engine) as session:
        due = list(
            session.exec(  # type: ignore[call-overload]
                select(Workspace.id).where(
                    Workspace.uninstalled_at.is_not(None),  # type: ignore[union-attr]
                    Workspace.uninstalled_at <= cutoff,  # type: ignore[operator]
                )
            ).scalars()
        )
    done = []
    for workspace_id in due:
        with Session(engine) as session:
            workspace = session.get(Workspace, workspace_id)
            # Re-checked in the transaction: a reinstall may have cleared the mark.
            if workspace is None or workspace.uninstalled_at is None:
                continue
            if _aware(workspace.uninstalled_at) > cutoff:
                continue
            purged = purge_workspace(session, workspace_id)
            session.commit()
        log.info(
            "deleted workspace %s, uninstalled over %s days ago (%d rows)",
            workspace_id,
            grace.days,
            purged.total,
        )
        done.append(purged)
    return done


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
