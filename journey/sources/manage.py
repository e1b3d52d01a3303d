"""Connected sources: adding one with its encrypted credential, listing their health, removing one.

The credential is stored only as Fernet ciphertext (journey.secrets.Cipher) in
Source.credentials: a small JSON object with the secret, the connector's
non-secret settings and an optional base URL. Nothing here prints, logs or
repeats the secret; `Credential`'s repr hides it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, func
from sqlmodel import Session, select

from journey.errors import JourneyError, NotFound
from journey.models import Customer, CustomerJourney, JourneyEvent, ReviewRequest, Source
from journey.models.source import SyncCursor
from journey.secret_rows import source_identity
from journey.secrets import Cipher
from journey.sources import CONNECTORS, connector_class
from journey.workspaces import ensure_workspace

ACTIVE, PAUSED, REMOVED = "active", "paused", "removed"


@dataclass(frozen=True)
class Credential:
    """What a connector needs to log in. Sealed as one encrypted blob.

    `guarded`: its addresses were typed in Slack, so every request of every sync may
    reach public internet addresses only (journey/sources/net.py). Sealed with the
    rest, so it cannot be switched off by editing the database.
    """

    secret: str = field(repr=False)
    settings: Mapping[str, str] = field(default_factory=dict)
    base_url: str | None = None
    guarded: bool = False

    def seal(self, cipher: Cipher, *, bound_to: str) -> bytes:
        """The encrypted blob, bound to its source row (journey.secret_rows)."""
        payload: dict[str, object] = {"secret": self.secret, "settings": dict(self.settings)}
        if self.base_url:
            payload["base_url"] = self.base_url
        if self.guarded:
            payload["guarded"] = True
        return cipher.encrypt(json.dumps(payload), bound_to=bound_to)

    @classmethod
    def open(cls, cipher: Cipher, blob: bytes, *, bound_to: str) -> Credential:
        """The credential in `blob`; SecretMisplaced if it was sealed for another row."""
        data = json.loads(cipher.decrypt(bytes(blob), bound_to=bound_to))
        return cls(
            secret=data["secret"],
            settings=dict(data.get("settings") or {}),
            base_url=data.get("base_url"),
            guarded=bool(data.get("guarded")),
        )

    @classmethod
    def of_source(cls, cipher: Cipher, source: Source) -> Credential:
        """The credential stored on `source` (which must have one)."""
        if source.credentials is None:
            raise JourneyError(f"The source {source.name!r} has no credential.")
        identity = source_identity(source.workspace_id, source.kind, source.name)
        return cls.open(cipher, source.credentials, bound_to=identity)


@dataclass(frozen=True)
class SourceHealth:
    name: str
    kind: str
    status: str
    last_sync_at: datetime | None
    last_error: str | None
    customers: int
    events: int
    has_credential: bool
    created_at: datetime | None = None  # when it was added (an import: its first import)


def add_source(
    session: Session,
    workspace_id: str,
    kind: str,
    name: str,
    credential: Credential,
    cipher: Cipher,
    added_by: str | None = None,
) -> tuple[Source, bool]:
    """Store a source's credential, encrypted. An existing source of that name gets the
    new credential and is resumed if it was paused. `added_by` (a chat user id) is who
    is told if a sync later pauses it. Returns (source, created)."""
    connector_class(kind)  # an unknown kind fails before anything is written
    name = name.strip()
    if not name or len(name) > 200:
        raise JourneyError("A source name needs 1 to 200 characters, e.g. --name shop.")
    ensure_workspace(session, workspace_id)
    source = session.exec(
        select(Source).where(
            Source.workspace_id == workspace_id, Source.kind == kind, Source.name == name
        )
    ).first()
    created = source is None
    if source is None:
        source = Source(workspace_id=workspace_id, kind=kind, name=name, created_at=_now())
    source.credentials = credential.seal(cipher, bound_to=source_identity(workspace_id, kind, name))
    source.status = ACTIVE
    source.last_error = None
    source.added_by = added_by[:32] if added_by else None
    session.add(source)
    session.flush()
    return source, created


def api_sources(session: Session, workspace_id: str, name: str | None = None) -> list[Source]:
    """The workspace's connector sources (not CSV or demo), optionally one name."""
    query = select(Source).where(
        Source.workspace_id == workspace_id, Source.kind.in_(list(CONNECTORS))
    )
    if name is not None:
        query = query.where(Source.name == name)
    return list(session.exec(query.order_by(Source.kind, Source.name)).all())


def connected_sources(session: Session, workspace_id: str) -> list[Source]:
    """The sources a sync of "everything" goes through: a source removed with its data
    kept has no key left, so syncing it could only fail and overwrite its last error."""
    return [s for s in api_sources(session, workspace_id) if s.status != REMOVED]


def find_source(session: Session, workspace_id: str, name: str, kind: str | None = None) -> Source:
    found = [s for s in api_sources(session, workspace_id, name) if kind in (None, s.kind)]
    if not found:
        known = ", ".join(s.name for s in api_sources(session, workspace_id)) or "none yet"
        raise NotFound(
            f"There is no connected source {name!r} in workspace {workspace_id!r} "
            f"(connected: {known}). Add one with `journey sources add stripe --name {name}`."
        )
    if len(found) > 1:
        kinds = ", ".join(s.kind for s in found)
        raise JourneyError(f"Several sources are named {name!r} ({kinds}); add --kind to choose.")
    return found[0]


def remove_source(session: Session, source: Source, *, keep_data: bool) -> tuple[int, int]:
    """Delete a source's credential and cursors; with `keep_data=False` also its customers
    and events. Returns the (customers, events) deleted."""
    session.execute(delete(SyncCursor).where(SyncCursor.source_id == source.id))
    if keep_data:
        source.credentials = None
        source.status = REMOVED
        source.last_error = None
        session.add(source)
        session.flush()
        return 0, 0
    ws = source.workspace_id
    customers = select(Customer.id).where(
        Customer.workspace_id == ws, Customer.source_id == source.id
    )
    for model in (ReviewRequest, CustomerJourney):
        session.execute(
            delete(model).where(model.workspace_id == ws, model.customer_id.in_(customers))
        )
    events = session.execute(
        delete(JourneyEvent).where(
            JourneyEvent.workspace_id == ws, JourneyEvent.source_id == source.id
        )
    ).rowcount
    gone = session.execute(
        delete(Customer).where(Customer.workspace_id == ws, Customer.source_id == source.id)
    ).rowcount
    session.delete(source)
    session.flush()
    return int(gone or 0), int(events or 0)


def source_health(session: Session, workspace_id: str) -> list[SourceHealth]:
    """Every source of the workspace (connectors, CSV, demo) with its health and row counts."""
    sources = session.exec(
        select(Source).where(Source.workspace_id == workspace_id).order_by(Source.kind, Source.name)
    ).all()
    counts: dict[tuple[str, int], int] = {}
    for model, label in ((Customer, "customers"), (JourneyEvent, "events")):
        rows = session.execute(
            select(model.source_id, func.count())
            .where(model.workspace_id == workspace_id)
            .group_by(model.source_id)
        ).all()
        counts.update({(label, int(sid)): int(n) for sid, n in rows})
    return [
        SourceHealth(
            name=s.name,
            kind=s.kind,
            status=s.status,
            last_sync_at=s.last_sync_at,
            last_error=s.last_error,
            customers=counts.get(("customers", s.id or 0), 0),
            events=counts.get(("events", s.id or 0), 0),
            has_credential=s.credentials is not None,
            created_at=s.created_at,
        )
        for s in sources
    ]


def _now() -> datetime:
    return datetime.now(UTC)
