"""Runs a connected source incrementally into the store.

For each resource of the source's connector, in order (change feeds first and
again last, see `Resource.changes`), the sync reads pages from the resource's
saved cursor on and writes each page as it arrives, in its own transaction:

    records of the page  -> Ingestor (upserts keyed on the API's ids)
    what the page retracts -> Ingestor.retract (events and customers the source
                            no longer has, scoped to this workspace and source)
    journey state        -> refreshed for the customers the page touched
    cursor after the page -> SyncCursor (source, resource)
    COMMIT

So memory holds one page at a time, and a sync killed at any point resumes
from the last committed page: the cursor never runs ahead of the data it
covers, nor behind it by more than one page, and re-reading a page is an
upsert that changes nothing.

The source's health lives on its Source row: `last_sync_at` (the last
success), `last_error` (in plain words, cleared by a success) and `status`.
A refused credential (AuthError, ScopeError) pauses the source: later syncs
skip it without calling the API until `journey sources add` stores a new
credential. Rate limits and outages leave it active; the next sync resumes.

Bounds. A sync runs within a total deadline (`deadline`, JOURNEY_SYNC_DEADLINE,
3 hours by default) that every request inside it keeps too (journey/sources/net.py):
past it the sync stops after the page in hand and says so, and the next one
resumes from the cursors. One process syncs a source once at a time: a second
sync of a source already running (by hand, `/journey sync` or the scheduler) is
skipped with `busy` set, never run beside it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, select
from sqlmodel import Session

from journey.errors import JourneyError
from journey.ingest import AnalyzeSchedule, Ingestor, IngestStats
from journey.models import JourneyEvent, Source, SyncCursor
from journey.schedule.alerts import request_check
from journey.secrets import Cipher
from journey.sources import connector_class, net
from journey.sources.base import Connector, Resource
from journey.sources.http import AuthError, HttpOptions, SourceError, env_number
from journey.sources.manage import ACTIVE, PAUSED, REMOVED, Credential
from journey.state import refresh_journeys

log = logging.getLogger(__name__)

# (resource name, pages read so far in this resource, records read so far in the sync)
ProgressFn = Callable[[str, int, int], None]
ConnectorFactory = Callable[[Source, Credential], Connector]

DEFAULT_SYNC_DEADLINE = 3 * 3600.0  # a 1M-order Shopify first sync took 21 minutes


def default_sync_deadline() -> float:
    return env_number("JOURNEY_SYNC_DEADLINE", DEFAULT_SYNC_DEADLINE)


class OutOfTime(SourceError):
    """The sync reached its deadline; what it read is kept and the next sync resumes."""


# Sources this process is syncing, by database and id (tests run many databases at once).
_running: set[tuple[str, int]] = set()
_running_lock = threading.Lock()


def _key(engine: Engine, source_id: int) -> tuple[str, int]:
    return engine.url.render_as_string(hide_password=True), source_id


def is_running(engine: Engine, source_id: int) -> bool:
    """Whether this process is syncing the source now."""
    with _running_lock:
        return _key(engine, source_id) in _running


def _claim_running(engine: Engine, source_id: int) -> bool:
    with _running_lock:
        if _key(engine, source_id) in _running:
            return False
        _running.add(_key(engine, source_id))
        return True


def _release_running(engine: Engine, source_id: int) -> None:
    with _running_lock:
        _running.discard(_key(engine, source_id))


@dataclass
class SyncResult:
    source: str
    kind: str
    source_id: int = 0
    workspace_id: str = ""
    ok: bool = False
    paused: bool = False
    skipped: bool = False
    busy: bool = False  # skipped: a sync of this source was already running here
    error: str | None = None
    pages: int = 0
    fetched: int = 0  # raw API records read
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # events the source no longer implies, removed
    pages_by_resource: dict[str, int] = field(default_factory=dict)

    def add(self, stats: IngestStats) -> None:
        self.inserted += stats.inserted
        self.updated += stats.updated
        self.unchanged += stats.unchanged
        self.deleted += stats.deleted


def sync_source(
    engine: Engine,
    source_id: int,
    *,
    cipher: Cipher | None = None,
    connector: Connector | ConnectorFactory | None = None,
    http: HttpOptions | None = None,
    progress: ProgressFn | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    deadline: float | None = None,
) -> SyncResult:
    """Sync one source. Never raises for an API problem: the result (and the Source
    row) carry the error in plain words. `connector` replaces the one built from
    the stored credential (tests pass one pointed at a fake server). `deadline`:
    seconds the whole sync may take (default JOURNEY_SYNC_DEADLINE)."""
    if not _claim_running(engine, source_id):
        with Session(engine) as session:
            source = session.get(Source, source_id)
            name, kind = (source.name, source.kind) if source else (str(source_id), "")
        return SyncResult(
            source=name,
            kind=kind,
            source_id=source_id,
            skipped=True,
            busy=True,
            error="a sync of this source is already running; its result comes when it ends.",
        )
    try:
        return _sync_claimed(
            engine,
            source_id,
            cipher,
            connector,
            http,
            progress,
            now,
            default_sync_deadline() if deadline is None else deadline,
        )
    finally:
        _release_running(engine, source_id)


def _sync_claimed(
    engine: Engine,
    source_id: int,
    cipher: Cipher | None,
    connector: Connector | ConnectorFactory | None,
    http: HttpOptions | None,
    progress: ProgressFn | None,
    now: Callable[[], datetime],
    deadline: float,
) -> SyncResult:
    with Session(engine, expire_on_commit=False) as session:
        source = session.get(Source, source_id)
        if source is None:
            raise JourneyError(f"There is no source with id {source_id}.")
        result = SyncResult(
            source=source.name,
            kind=source.kind,
            source_id=source_id,
            workspace_id=source.workspace_id,
        )
        if source.status == PAUSED:
            result.paused = result.skipped = True
            result.error = source.last_error
            return result
        if source.status == REMOVED:
            # Its key was deleted and its data kept: nothing to sync and no error to
            # record, only a way back.
            result.skipped = True
            result.error = (
                f"it was removed (its data is kept); connect it again with "
                f"`journey sources add {source.kind} --name {source.name}` or `/journey connect`."
            )
            return result
        try:
            built = _connector(source, cipher, connector, http)
        except JourneyError as exc:
            # A missing or changed JOURNEY_SECRET_KEY is the operator's to fix; the
            # stored credential may be fine, so the source is not paused.
            _record(session, source, error=str(exc))
            result.error = str(exc)
            return result
        workspace_id = source.workspace_id

    try:
        with net.deadline_scope(deadline):
            return _run(engine, built, source_id, workspace_id, result, progress, now, deadline)
    finally:
        if result.inserted or result.updated or result.deleted:
            _request_alert_check(engine, workspace_id)


def _run(
    engine: Engine,
    built: Connector,
    source_id: int,
    workspace_id: str,
    result: SyncResult,
    progress: ProgressFn | None,
    now: Callable[[], datetime],
    deadline: float,
) -> SyncResult:
    analyze = AnalyzeSchedule()  # one for the whole sync: every page is its own transaction
    empty = not _holds_events(engine, workspace_id, source_id)
    try:
        with built:
            for resource in _plan(built):
                _sync_resource(
                    engine,
                    built,
                    source_id,
                    workspace_id,
                    resource,
                    result,
                    progress,
                    analyze,
                    trust_first_reads=empty,
                    deadline=deadline,
                )
    except AuthError as exc:
        message = (
            f"{exc} The source is paused: store a working credential with "
            f"`journey sources add {result.kind} --name {result.source}`."
        )
        _finish(engine, source_id, error=message, paused=True)
        result.paused, result.error = True, message
        return result
    except SourceError as exc:
        _finish(engine, source_id, error=str(exc))
        result.error = str(exc)
        return result
    except Exception as exc:
        _finish(engine, source_id, error=f"the sync hit an unexpected error ({type(exc).__name__})")
        raise
    _finish(engine, source_id, synced_at=now())
    result.ok = True
    return result


def _request_alert_check(engine: Engine, workspace_id: str) -> None:
    """New data may show a drop: have the workspace's alert rules checked at the next
    scheduler tick ("checked after every sync"), not only at the daily check."""
    try:
        with Session(engine) as session:
            request_check(session, workspace_id)
            session.commit()
    except Exception:  # the sync's own result matters more than an early alert check
        log.exception("could not ask for an alert check after syncing %s", workspace_id)


def _connector(
    source: Source,
    cipher: Cipher | None,
    given: Connector | ConnectorFactory | None,
    http: HttpOptions | None,
) -> Connector:
    if isinstance(given, Connector):
        return given
    if source.credentials is None:
        raise JourneyError(
            f"The source {source.name!r} has no credential: add it with "
            f"`journey sources add {source.kind} --name {source.name}`."
        )
    credential = Credential.of_source(cipher or Cipher.from_env(), source)
    if given is not None:
        return given(source, credential)
    cls = connector_class(source.kind)
    if credential.guarded:  # its address was typed in Slack: public addresses only
        http = replace(http or HttpOptions(), guard=True)
    return cls(credential.secret, credential.settings, base_url=credential.base_url, http=http)


def _plan(connector: Connector) -> Iterator[Resource]:
    """Change feeds, then the lists, then the change feeds again."""
    changes = [r for r in connector.resources if r.changes]
    yield from changes
    yield from (r for r in connector.resources if not r.changes)
    yield from changes


def _sync_resource(
    engine: Engine,
    connector: Connector,
    source_id: int,
    workspace_id: str,
    resource: Resource,
    result: SyncResult,
    progress: ProgressFn | None,
    analyze: AnalyzeSchedule,
    *,
    trust_first_reads: bool = False,
    deadline: float | None = None,
) -> None:
    """Each page in its own transaction with the cursor after it. `trust_first_reads`:
    the source held no events when the sync began, so a page the connector calls a
    first read (`Page.first_read`) has nothing to take back (a source removed with its
    data kept and connected again holds events: its pages are checked)."""
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(SyncCursor, (source_id, resource.name))
        cursor = row.cursor if row else None
    for pages, page in enumerate(connector.fetch(resource, cursor), start=1):
        with Session(engine, expire_on_commit=False) as session:
            records = connector.to_records(resource, page.records)
            ingestor = Ingestor(session, workspace_id, source_id, analyze)
            stats = IngestStats()
            if records.customers:
                stats.add(ingestor.customers(records.customers, fields=records.customer_fields))
            if records.events:
                stats.add(ingestor.events(records.events))
            if records.retracts and not (page.first_read and trust_first_reads):
                stats.add(
                    ingestor.retract(
                        carried=[e.external_id for e in records.events],
                        families=records.families,
                        events=records.retracted,
                        forgotten=records.forgotten,
                        erased=records.erased,
                        derived=records.derived,
                    )
                )
            ingestor.refresh(stats)
            if page.reset:
                session.execute(
                    delete(SyncCursor).where(
                        SyncCursor.source_id == source_id,
                        SyncCursor.resource.in_(list(page.reset)),
                    )
                )
            _save_cursor(session, source_id, workspace_id, resource.name, page.cursor)
            if resource.defines_stages and cursor is not None and page.cursor != cursor:
                session.flush()  # the stage model reads the definitions just saved
                # New stage definitions move no record: the page's records were relinked.
                refresh_journeys(session, workspace_id, relink_people=False)
            cursor = page.cursor
            session.commit()
        result.pages += 1
        result.fetched += len(page.records)
        result.add(stats)
        result.pages_by_resource[resource.name] = result.pages_by_resource.get(resource.name, 0) + 1
        if progress is not None:
            progress(resource.name, pages, result.fetched)
        left = net.remaining()
        if left is not None and left <= 0:
            minutes = f"{deadline / 60:.0f} minutes" if deadline else "its time limit"
            raise OutOfTime(
                f"the sync stopped after {minutes} (JOURNEY_SYNC_DEADLINE) with what it had read "
                "stored; the next sync carries on from there.",
                service=connector.service,
            )


def _holds_events(engine: Engine, workspace_id: str, source_id: int) -> bool:
    with Session(engine) as session:
        found = session.execute(
            select(JourneyEvent.id)
            .where(JourneyEvent.workspace_id == workspace_id, JourneyEvent.source_id == source_id)
            .limit(1)
        ).first()
    return found is not None


def _save_cursor(
    session: Session, source_id: int, workspace_id: str, resource: str, cursor: str | None
) -> None:
    row = session.get(SyncCursor, (source_id, resource))
    if row is None:
        row = SyncCursor(source_id=source_id, resource=resource, workspace_id=workspace_id)
    row.cursor = cursor
    row.updated_at = datetime.now(UTC)
    session.add(row)


def _record(
    session: Session,
    source: Source,
    *,
    error: str | None = None,
    paused: bool = False,
    synced_at: datetime | None = None,
) -> None:
    if source.credentials is None and source.status == PAUSED and not paused:
        # Its key was deleted while this sync ran (the app was uninstalled, or the source
        # removed): the sync ending does not bring it back, nor hide why it stopped.
        if synced_at is not None:
            source.last_sync_at = synced_at
        session.add(source)
        session.commit()
        return
    source.last_error = error
    if paused:
        source.status = PAUSED
    elif error is None:
        source.status = ACTIVE
    if synced_at is not None:
        source.last_sync_at = synced_at
    session.add(source)
    session.commit()


def _finish(
    engine: Engine,
    source_id: int,
    *,
    error: str | None = None,
    paused: bool = False,
    synced_at: datetime | None = None,
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        source = session.get(Source, source_id)
        if source is not None:
            _record(session, source, error=error, paused=paused, synced_at=synced_at)
    if error:  # the CLI prints it, and `journey sources list` and the bot read it from the row
        log.info("sync of source %s: %s", source_id, error)
