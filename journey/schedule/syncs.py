"""Scheduled syncs: every connected source synced about once per interval, by one replica.

Every bot process runs `run_due_syncs` every JOURNEY_SYNC_INTERVAL seconds
(bot/posting/loop.py). A source is due when it is an active connector source
(Stripe, HubSpot, WooCommerce, Shopify; not CSV imports or the demo) with a stored
credential whose `last_sync_at` is older than the interval, or that was never
synced, of a workspace that still has the app (not uninstalled, its installation
not left inactive by a revoked token: journey/uninstall.py). Paused sources wait for a new credential (journey/sync.py).

How a source is claimed (columns `sync_claimed_until` and `sync_claimed_by`, as
digest leases have):

- The claim is a conditional UPDATE that sets `sync_claimed_until` to the tick's
  `now` plus CLAIM (ten minutes), only if the source still holds the
  `last_sync_at` this replica read (NULL for a source never synced), is still
  active, and holds no live claim. Of any number of replicas racing for the
  source, exactly one UPDATE matches a row (PostgreSQL makes the losers wait for
  the winner's commit and then re-check the WHERE against the new row; SQLite
  serialises writers).
- The winner runs `sync_source`, whose success writes `last_sync_at` (its finish
  time: "the last successful sync"), so the source is not due again within the
  interval, for any replica; a replica that read the old value can no longer
  claim it. While the sync runs its claim is extended (at most once a minute, as
  pages are committed), so a long first sync keeps it.
- Success or failure, the claim is then released. A failure leaves
  `last_sync_at` alone, so `journey sources list` never shows a failed sync as a
  success, and the source is due again at the next tick of any replica (a failing
  source is retried once per tick per replica; a refused credential pauses it).
- A replica killed mid-sync, or a database outage that stops it from releasing
  the claim, leaves the claim in place only until it expires: `last_sync_at` was
  never moved, so the source does not look synced, and the first tick after the
  expiry syncs it again, resuming from the saved cursors (each page is committed
  with its cursor, so nothing is lost).

What it guarantees: no two replicas sync one source for the same due interval,
whatever their number and however their ticks line up (unless a sync outlives its
claim without committing a page for CLAIM). It does not stop a
`journey sync` run by hand (or `/journey sync`) from running at the same time
as a scheduled one; two syncs of one source are harmless (every write is an
upsert and the cursors only move with the data they cover), only wasted work.

`replica_id` is only for the log: the claim itself needs no owner.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, text
from sqlmodel import Session, select

from journey.models import Source, Workspace
from journey.models.installation import SlackInstallation
from journey.models.schedule import AlertRule
from journey.models.types import to_epoch
from journey.outage import OUTAGES, classify
from journey.secrets import Cipher
from journey.sources import CONNECTORS
from journey.sources.manage import ACTIVE
from journey.sync import ConnectorFactory, SyncResult, sync_source

log = logging.getLogger(__name__)

DEFAULT_SYNC_INTERVAL = timedelta(hours=1)
# How long a scheduled sync's claim lasts, and how much each committed page extends it.
CLAIM = timedelta(minutes=10)
HEARTBEAT = timedelta(minutes=1)


@dataclass
class SyncRun:
    """What one tick did: the results of the syncs it ran, and the due sources another
    replica claimed first."""

    results: list[SyncResult] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # raised an unexpected error

    @property
    def synced(self) -> list[SyncResult]:
        return [r for r in self.results if r.ok]

    @property
    def newly_paused(self) -> list[SyncResult]:
        """Sources this tick's syncs paused (a refused credential), not those already paused."""
        return [r for r in self.results if r.paused and not r.skipped]


@dataclass(frozen=True)
class PausedSource:
    """A source a scheduled sync just paused, and whom to tell: the person who stored its
    credential, else the workspace's alerts channel (None, None: nobody to tell; it is
    still on the source's row for `journey sources list` and `/journey sources`).

    Told once: later syncs skip a paused source without calling its API, so they
    neither fail again nor produce another notice, until a new credential resumes it.
    """

    workspace_id: str
    name: str
    kind: str
    reason: str
    user_id: str | None
    channel_id: str | None


def pause_notices(engine: Engine, run: SyncRun) -> list[PausedSource]:
    """Whom to tell about each source this run paused."""
    notices = []
    with Session(engine) as session:
        for result in run.newly_paused:
            source = session.get(Source, result.source_id)
            if source is None:
                continue
            channel = session.exec(
                select(AlertRule.channel_id)
                .where(
                    AlertRule.workspace_id == source.workspace_id,
                    AlertRule.channel_id.is_not(None),  # type: ignore[union-attr]
                )
                .order_by(AlertRule.id)
            ).first()
            notices.append(
                PausedSource(
                    workspace_id=source.workspace_id,
                    name=source.name,
                    kind=source.kind,
                    reason=result.error or source.last_error or "the credential was refused",
                    user_id=source.added_by,
                    channel_id=None if source.added_by else channel,
                )
            )
    return notices


def due_sources(
    session: Session, now: datetime, interval: timedelta, workspace_id: str | None = None
) -> list[Source]:
    """Active connector sources not synced within `interval` of `now` and not claimed by
    a live sync, never-synced ones first, then the longest waiting: of every workspace
    (a bot serves them all), or of one (the local console syncs only its own)."""
    cutoff = now - interval
    query = select(Source).where(
        Source.kind.in_(list(CONNECTORS)),
        Source.status == ACTIVE,
        Source.credentials.is_not(None),
        or_(Source.last_sync_at.is_(None), Source.last_sync_at <= cutoff),
        or_(Source.sync_claimed_until.is_(None), Source.sync_claimed_until <= now),
    )
    # The workspace must still have the app: not uninstalled, and no installation of it
    # left inactive by a revoked token (a workspace without any installation row, the
    # console's or a single-token bot's, is its operator's own).
    uninstalled = select(Workspace.id).where(Workspace.uninstalled_at.is_not(None))
    revoked = select(SlackInstallation.team_id).where(
        SlackInstallation.is_active.is_(False), SlackInstallation.team_id.is_not(None)
    )
    query = query.where(
        Source.workspace_id.not_in(uninstalled), Source.workspace_id.not_in(revoked)
    )
    if workspace_id is not None:
        query = query.where(Source.workspace_id == workspace_id)
    sources = list(session.exec(query).all())
    return sorted(
        sources,
        key=lambda s: (s.last_sync_at is not None, s.last_sync_at or now, s.id or 0),
    )


def _claim(
    engine: Engine, source_id: int, seen: datetime | None, now: datetime, replica_id: str
) -> int | None:
    """Claim the source until `now + CLAIM` if nobody synced or claimed it since `seen`
    was read. Returns the claim's expiry (epoch seconds) when this replica won."""
    until = to_epoch(now + CLAIM)
    condition = "last_sync_at IS NULL" if seen is None else "last_sync_at = :seen"
    with engine.begin() as conn:
        won = conn.execute(
            text(
                "UPDATE source SET sync_claimed_until = :until, sync_claimed_by = :replica "
                "WHERE id = :id AND status = :active "
                "AND (sync_claimed_until IS NULL OR sync_claimed_until <= :now) "
                f"AND {condition}"
            ),
            {
                "until": until,
                "replica": replica_id[:64],
                "id": source_id,
                "active": ACTIVE,
                "now": to_epoch(now),
                "seen": _epoch(seen),
            },
        ).rowcount
    return until if won == 1 else None


def _extend(engine: Engine, source_id: int, claim: int, until: int) -> bool:
    """Move this replica's claim to `until`; False when it is no longer held."""
    with engine.begin() as conn:
        return (
            conn.execute(
                text(
                    "UPDATE source SET sync_claimed_until = :until "
                    "WHERE id = :id AND sync_claimed_until = :claim"
                ),
                {"until": until, "id": source_id, "claim": claim},
            ).rowcount
            == 1
        )


def _release(engine: Engine, source_id: int, claim: int) -> None:
    """Give the claim back (after a success or a failure), unless it moved on since.
    A database that cannot be reached just now is logged: the claim then expires."""
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE source SET sync_claimed_until = NULL, sync_claimed_by = NULL "
                    "WHERE id = :id AND sync_claimed_until = :claim"
                ),
                {"id": source_id, "claim": claim},
            )
    except Exception as exc:
        log.warning(
            "could not release the sync claim of source %s (%s): it expires by itself",
            source_id,
            type(exc).__name__,
        )


class _Heartbeat:
    """Extends a sync's claim as its pages are committed, at most once a minute."""

    def __init__(self, engine: Engine, source_id: int, claim: int) -> None:
        self.engine, self.source_id, self.claim = engine, source_id, claim
        self.last = time.monotonic()

    def __call__(self, resource: str, pages: int, records: int) -> None:
        elapsed = time.monotonic() - self.last
        if elapsed < HEARTBEAT.total_seconds():
            return
        self.last = time.monotonic()
        until = self.claim + int(elapsed)  # still CLAIM ahead of the time that has passed
        try:
            if _extend(self.engine, self.source_id, self.claim, until):
                self.claim = until
        except Exception as exc:  # the page is committed; the claim may lapse, harmlessly
            log.warning("could not extend the sync claim of %s: %s", self.source_id, exc)


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else to_epoch(value)


def run_due_syncs(
    engine: Engine,
    now: datetime,
    interval: timedelta,
    replica_id: str,
    *,
    cipher: Cipher | None = None,
    connector: ConnectorFactory | None = None,
    workspace_id: str | None = None,
) -> SyncRun:
    """Claim each due source in turn (of one workspace, or all) and sync the ones this
    replica won.

    `connector` (tests) is passed to `sync_source`: a factory of
    (source, credential) -> Connector. A source whose sync raises is logged,
    unclaimed, and the others still run.
    """
    run = SyncRun()
    with Session(engine) as session:
        due = [
            (int(s.id or 0), s.last_sync_at)
            for s in due_sources(session, now, interval, workspace_id)
        ]
    for source_id, seen in due:
        claim = _claim(engine, source_id, seen, now, replica_id)
        if claim is None:
            run.lost.append(source_id)
            continue
        heartbeat = _Heartbeat(engine, source_id, claim)
        try:
            result = sync_source(
                engine, source_id, cipher=cipher, connector=connector, progress=heartbeat
            )
        except Exception as exc:
            outage = classify(exc)
            if outage is not None:
                OUTAGES.seen(outage)
            else:
                log.exception(
                    "scheduled sync of source %s failed (replica %s)", source_id, replica_id
                )
            _release(engine, source_id, heartbeat.claim)
            run.failed.append(source_id)
            continue
        _release(engine, source_id, heartbeat.claim)
        run.results.append(result)
    return run
