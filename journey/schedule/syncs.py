"""Scheduled syncs: every connected source synced about once per interval, by one replica.

Every bot process runs `run_due_syncs` every JOURNEY_SYNC_INTERVAL seconds
(bot/scheduler.py). A source is due when it is an active connector source
(Stripe, HubSpot, WooCommerce, Shopify; not CSV imports or the demo) with a stored
credential whose `last_sync_at` is older than the interval, or that was never
synced. Paused sources wait for a new credential (journey/sync.py).

How a source is claimed, without a lease column (so without a migration):

- The claim is a conditional UPDATE that moves `last_sync_at` from the value
  this replica read forward to the tick's `now` (at least one second past the
  value read, as the column holds whole seconds), only if it still holds the
  value read (NULL for a source never synced) and the source is still active. Of any
  number of replicas racing for the source, exactly one UPDATE matches a row
  (PostgreSQL makes the losers wait for the winner's commit and then re-check
  the WHERE against the new value; SQLite serialises writers), and after it the
  source is fresh for everyone else, so no other replica syncs it in this
  interval.
- The winner then runs `sync_source`, whose success overwrites `last_sync_at`
  with its finish time: the usual meaning, "the last successful sync".
- When the sync fails (rate limit, outage, missing secret key, an unexpected
  error), the claim is undone: `last_sync_at` goes back to the value read, with
  a conditional UPDATE that only matches while the row still holds this claim.
  So `journey sources list` never shows a failed sync as a success, and the
  source is due again at the next tick of any replica (a failing source is
  retried once per tick per replica; a refused credential pauses it instead).
- A replica that dies mid-sync leaves its claim in place: the source looks
  synced at the claim time until the next interval, when another replica syncs
  it again and resumes from the saved cursors (nothing is lost: each page is
  committed with its cursor). That stale "last success" for up to one interval
  is the price of not adding a lease column.

What it guarantees: no two replicas sync one source for the same due interval,
whatever their number and however their ticks line up. It does not stop a
`journey sync` run by hand (or `/journey sync`) from running at the same time
as a scheduled one; two syncs of one source are harmless (every write is an
upsert and the cursors only move with the data they cover), only wasted work.

`replica_id` is only for the log: the claim itself needs no owner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, text
from sqlmodel import Session, select

from journey.models import Source
from journey.models.schedule import AlertRule
from journey.models.types import to_epoch
from journey.secrets import Cipher
from journey.sources import CONNECTORS
from journey.sources.manage import ACTIVE
from journey.sync import ConnectorFactory, SyncResult, sync_source

log = logging.getLogger(__name__)

DEFAULT_SYNC_INTERVAL = timedelta(hours=1)


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
    """Active connector sources not synced within `interval` of `now`, never-synced ones
    first, then the longest waiting: of every workspace (a bot serves them all), or of
    one (the local console syncs only its own)."""
    cutoff = now - interval
    query = select(Source).where(
        Source.kind.in_(list(CONNECTORS)),
        Source.status == ACTIVE,
        Source.credentials.is_not(None),
        or_(Source.last_sync_at.is_(None), Source.last_sync_at <= cutoff),
    )
    if workspace_id is not None:
        query = query.where(Source.workspace_id == workspace_id)
    sources = list(session.exec(query).all())
    return sorted(
        sources,
        key=lambda s: (s.last_sync_at is not None, s.last_sync_at or now, s.id or 0),
    )


def _claim(engine: Engine, source_id: int, seen: datetime | None, now: datetime) -> int | None:
    """Move last_sync_at from `seen` forward to `now` if nobody else did. Returns the value
    written (the claim) when this replica won, else None. The value always moves forward
    (at least a second past `seen`: the column holds whole seconds), so a second claim
    on the same `seen` can never match."""
    claim = to_epoch(now) if seen is None else max(to_epoch(now), to_epoch(seen) + 1)
    condition = "last_sync_at IS NULL" if seen is None else "last_sync_at = :seen"
    with engine.begin() as conn:
        won = conn.execute(
            text(
                f"UPDATE source SET last_sync_at = :claim WHERE id = :id AND status = :active "
                f"AND {condition}"
            ),
            {"claim": claim, "id": source_id, "active": ACTIVE, "seen": _epoch(seen)},
        ).rowcount
    return claim if won == 1 else None


def _unclaim(engine: Engine, source_id: int, seen: datetime | None, claim: int) -> None:
    """Put last_sync_at back to `seen` after a failed sync, unless the row moved on since."""
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE source SET last_sync_at = :seen WHERE id = :id AND last_sync_at = :claim"),
            {"seen": _epoch(seen), "id": source_id, "claim": claim},
        )


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
        claim = _claim(engine, source_id, seen, now)
        if claim is None:
            run.lost.append(source_id)
            continue
        try:
            result = sync_source(engine, source_id, cipher=cipher, connector=connector)
        except Exception:
            log.exception("scheduled sync of source %s failed (replica %s)", source_id, replica_id)
            _unclaim(engine, source_id, seen, claim)
            run.failed.append(source_id)
            continue
        if not result.ok:
            _unclaim(engine, source_id, seen, claim)
        run.results.append(result)
    return run
