"""Build a workspace and its data in a few lines, through the real ingest path.

    shop = make_shop(session)
    shop.customer("c1", ("visit", days_ago(9)), ("order", days_ago(8), 5000), channel="ads")
    shop.journey("c1")["purchase_days"]  # -> 1

Every record goes through `journey.ingest.Ingestor` (upsert + refresh of the
touched customers), exactly like an import. Event external ids default to
"<customer>/<kind>/<epoch>", so calling the same builder twice re-sends the same
records. Times are either absolute (`utc(2026, 6, 1, 10)`) or relative to the
fixed NOW (`days_ago(3)`), never to the wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from journey.ingest import CustomerRecord, EventRecord, Ingestor, IngestStats
from journey.models import ReviewRequest, Workspace
from journey.models.types import to_epoch
from journey.workspaces import ensure_source, ensure_workspace

# Same instant as conftest.NOW: Monday 2026-06-15 12:00 UTC.
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
DAY = 86400
HOUR = 3600


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def days_ago(days: float, hours: float = 0) -> datetime:
    """NOW minus some days (and hours); negative values are in the future."""
    return NOW - timedelta(days=days, hours=hours)


@dataclass(frozen=True)
class Ev:
    """One event; a plain tuple (kind, when[, amount_cents]) works too."""

    kind: str
    when: datetime
    amount: int | None = None
    channel: str | None = None
    id: str | None = None


def _ev(spec: Ev | tuple[Any, ...]) -> Ev:
    return spec if isinstance(spec, Ev) else Ev(*spec)


class Shop:
    """One workspace with one source, and shortcuts to fill and inspect it."""

    def __init__(self, session: Session, workspace_id: str, source_name: str = "test") -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.source_id = ensure_source(session, workspace_id, "csv", source_name).id
        self.ingestor = Ingestor(session, workspace_id, self.source_id)

    @property
    def workspace(self) -> Workspace:
        workspace = self.session.get(Workspace, self.workspace_id)
        assert workspace is not None
        return workspace

    def _event_records(self, external_id: str, events: tuple[Ev | tuple, ...]) -> list[EventRecord]:
        records = []
        for spec in events:
            ev = _ev(spec)
            records.append(
                EventRecord(
                    external_id=ev.id or f"{external_id}/{ev.kind}/{to_epoch(ev.when)}",
                    customer_external_id=external_id,
                    kind=ev.kind,
                    occurred_at=ev.when,
                    channel=ev.channel,
                    amount_cents=ev.amount,
                )
            )
        return records

    def ingest(
        self, customers: Sequence[CustomerRecord] = (), events: Sequence[EventRecord] = ()
    ) -> IngestStats:
        """Upsert records and refresh the journeys they touched, like an import does."""
        stats = IngestStats()
        if customers:
            stats.add(self.ingestor.customers(list(customers)))
        if events:
            stats.add(self.ingestor.events(list(events)))
        self.ingestor.refresh(stats)
        return stats

    def customer(
        self,
        external_id: str,
        *events: Ev | tuple,
        first_seen: datetime | None = None,
        channel: str | None = None,
        name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
    ) -> IngestStats:
        """Upsert a customer record and its events."""
        record = CustomerRecord(external_id, name, email, first_seen, channel, phone)
        return self.ingest([record], self._event_records(external_id, events))

    def many(
        self, customers: dict[str, Sequence[Ev | tuple]], channel: str | None = None
    ) -> IngestStats:
        """Several customers (all with this channel) and their events in one import."""
        records = [CustomerRecord(ext, channel=channel) for ext in customers]
        events = [r for ext, evs in customers.items() for r in self._event_records(ext, evs)]
        return self.ingest(records, events)

    def events(self, external_id: str, *events: Ev | tuple) -> IngestStats:
        """Upsert events only (the customer becomes a stub if it is new)."""
        return self.ingest(events=self._event_records(external_id, events))

    def ask(self, external_id: str, when: datetime, status: str = "asked") -> None:
        """Record a review request (or a deliberate skip) for a customer."""
        self.session.add(
            ReviewRequest(
                workspace_id=self.workspace_id,
                customer_id=self.id(external_id),
                asked_at=when,
                status=status,
            )
        )
        self.session.flush()

    def id(self, external_id: str) -> int:
        return int(
            self.session.execute(
                text(
                    "SELECT id FROM customer WHERE workspace_id = :ws AND source_id = :src "
                    "AND external_id = :ext"
                ),
                {"ws": self.workspace_id, "src": self.source_id, "ext": external_id},
            ).scalar_one()
        )

    def journey(self, external_id: str) -> dict[str, Any]:
        """The customer's customer_journey row, read fresh from the database."""
        return self.journeys()[external_id]

    def journeys(self) -> dict[str, dict[str, Any]]:
        """Every customer_journey row of this workspace, keyed by external id."""
        rows = self.session.execute(
            text(
                "SELECT c.external_id, cj.* FROM customer_journey cj "
                "JOIN customer c ON c.id = cj.customer_id WHERE cj.workspace_id = :ws"
            ),
            {"ws": self.workspace_id},
        ).mappings()
        return {row["external_id"]: dict(row) for row in rows}


def make_shop(session: Session, workspace_id: str = "shop", **settings: Any) -> Shop:
    """Create a workspace (with any Workspace field set, e.g. stages=[...]) and a source."""
    workspace = ensure_workspace(session, workspace_id)
    for key, value in settings.items():
        if not hasattr(workspace, key):
            raise TypeError(f"Workspace has no field {key!r}")
        setattr(workspace, key, value)
    session.add(workspace)
    session.flush()
    return Shop(session, workspace_id)


def count_rows(session: Session, table: str, workspace_id: str | None = None) -> int:
    sql = f"SELECT COUNT(*) FROM {table}"
    if workspace_id is None:
        return int(session.execute(text(sql)).scalar_one())
    return int(
        session.execute(text(sql + " WHERE workspace_id = :ws"), {"ws": workspace_id}).scalar_one()
    )
