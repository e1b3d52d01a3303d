"""Writing customers and events into the store: the one path every source uses.

CSV imports, the demo generator and the API connectors all hand records to
`Ingestor`, which upserts them keyed on the source's own ids (so a re-import
changes nothing), creates a stub customer for an event whose customer has not
arrived yet, and refreshes the journey state of exactly the customers touched.

A sync must also *remove* what the source no longer says: a refund that failed,
an order moved back to pending, a deal archived, a customer deleted.
`Ingestor.retract` does that, in the caller's transaction, from what a page
declares (see `EventFamily` and journey.sources.base.Records): events are
deleted by their source ids, never by a guess, and only within one workspace
and one source. Journey's own data (review requests) is never deleted: a
customer it refers to stays as an empty stub.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, exists, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from journey.models import Customer, CustomerJourney, JourneyEvent, ReviewRequest
from journey.models.types import to_epoch
from journey.state import refresh_journeys

BATCH = 1000


@dataclass(frozen=True)
class CustomerRecord:
    external_id: str
    name: str | None = None
    email: str | None = None
    first_seen: datetime | None = None
    channel: str | None = None
    # As the source gives it; people may join on it in E.164 (journey/matching.py).
    phone: str | None = None


@dataclass(frozen=True)
class EventRecord:
    external_id: str
    customer_external_id: str
    kind: str
    occurred_at: datetime
    channel: str | None = None
    amount_cents: int | None = None


@dataclass(frozen=True)
class EventFamily:
    """Every event one source record implies now: the page carries all of them.

    A record's events share an id prefix (`subscription:sub_1` and
    `subscription:sub_1:cancellation`; `order:17`, `order:17:cancellation` and
    `order:17:refund:20`). Each stored event of the source whose id is `prefix`,
    or starts with `prefix:`, and that the page does not carry is deleted: the
    record stopped implying it (a refund that failed, an order moved back to
    pending, a deal no longer won).

    They are found by id (`prefix` itself, whoever its customer) and among the
    events of `customers` (the record's customers, as source ids), so the
    look-up stays on indexes however large the store is. A child event of a
    customer the record no longer names is not found: name that customer too
    when the connector knows it.

    `anywhere`: no customer is known (an archived CRM deal, whose contacts the
    API no longer gives), so the events are looked for across the source's
    events by id pattern. On PostgreSQL that scans the source's ids (LIKE
    cannot use the index under a non-C collation): keep it for rare records.
    """

    prefix: str
    customers: tuple[str, ...] = ()
    anywhere: bool = False


@dataclass
class IngestStats:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # events removed because the source no longer implies them
    touched_customers: set[int] = field(default_factory=set)

    def add(self, other: IngestStats) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        self.touched_customers |= other.touched_customers


def _upsert(session: Session, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """INSERT ... ON CONFLICT DO UPDATE, one fixed statement executed for many rows.

    A fixed statement with the rows as parameters (not a new 1,000-row VALUES
    statement per batch) is what keeps large imports fast on SQLite.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    update_cols = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update_cols), rows)


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class AnalyzeSchedule:
    """When to refresh PostgreSQL's statistics as a large write grows: at 2k, 8k, 32k...
    rows written.

    Why: a large first import or sync fills tables the planner believes empty (until
    autovacuum, which may be off or late, samples them), so it stops using the
    external-id index and each batch's look-up scans every earlier row. A few cheap
    ANALYZEs keep the plans right. One schedule must span the whole write: a sync
    commits every page in a transaction (and an Ingestor) of its own, and a counter
    that restarted per page would never reach its first mark.
    """

    written: int = 0
    next_at: int = 2 * BATCH

    def due(self, rows: int) -> bool:
        self.written += rows
        if self.written < self.next_at:
            return False
        while self.next_at <= self.written:
            self.next_at *= 4
        return True


class Ingestor:
    """Upserts one source's records into one workspace inside the caller's transaction.

    `analyze`: the statistics schedule of the whole import or sync this transaction
    belongs to (see AnalyzeSchedule); a new one when the write is this transaction alone.
    """

    def __init__(
        self,
        session: Session,
        workspace_id: str,
        source_id: int,
        analyze: AnalyzeSchedule | None = None,
    ) -> None:
        self.session = session
        self.workspace_id = workspace_id
        self.source_id = source_id
        self.analyze = analyze or AnalyzeSchedule()

    def _wrote(self, rows: int) -> None:
        if not self.analyze.due(rows):
            return
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("ANALYZE customer"))
            self.session.execute(text("ANALYZE journey_event"))
            # The state refresh deletes and re-inserts these rows by customer id: planned
            # for an empty table it scans the whole workspace's state on every page.
            self.session.execute(text("ANALYZE customer_journey"))

    def _existing(
        self, table: Table, external_ids: Iterable[str], columns: list[str]
    ) -> dict[str, tuple[Any, ...]]:
        ids = list(dict.fromkeys(external_ids))
        found: dict[str, tuple[Any, ...]] = {}
        for chunk in _chunks(ids):
            rows = self.session.execute(
                select(table.c.external_id, table.c.id, *(table.c[c] for c in columns)).where(
                    table.c.workspace_id == self.workspace_id,
                    table.c.source_id == self.source_id,
                    table.c.external_id.in_(chunk),
                )
            ).all()
            found.update({r[0]: tuple(r[1:]) for r in rows})
        return found

    def customers(
        self, records: Sequence[CustomerRecord], fields: Collection[str] | None = None
    ) -> IngestStats:
        """Upsert customers. `fields` limits which of name, email, first_seen, channel
        and phone the records carry: the others keep their stored values (a CSV
        without a channel column must not erase the channels already known)."""
        table = Customer.__table__  # type: ignore[attr-defined]
        columns = ["name", "email", "first_seen", "channel", "phone"]
        kept = [c for c in columns if fields is not None and c not in fields]
        stats = IngestStats()
        for chunk in _chunks(records):
            latest = {r.external_id: r for r in chunk}  # last one wins within a batch
            existing = self._existing(table, latest, columns)
            rows = []
            for record in latest.values():
                values = {
                    "name": record.name,
                    "email": record.email,
                    "first_seen": to_epoch(record.first_seen) if record.first_seen else None,
                    "channel": record.channel,
                    "phone": record.phone[:64] if record.phone else None,
                }
                old = existing.get(record.external_id)
                if old is not None:
                    old_values = dict(zip(columns, old[1:], strict=True))
                    if old_values["first_seen"] is not None:
                        old_values["first_seen"] = to_epoch(old_values["first_seen"])
                    values.update({c: old_values[c] for c in kept})
                    if old_values == values:
                        stats.unchanged += 1
                        continue
                    stats.updated += 1
                    stats.touched_customers.add(int(old[0]))
                else:
                    stats.inserted += 1
                rows.append(
                    {
                        "workspace_id": self.workspace_id,
                        "source_id": self.source_id,
                        "external_id": record.external_id,
                        **values,
                    }
                )
            _upsert(self.session, table, rows, ["workspace_id", "source_id", "external_id"])
            self._wrote(len(rows))
            if rows:
                ids = self._existing(table, [r["external_id"] for r in rows], [])
                stats.touched_customers |= {int(v[0]) for v in ids.values()}
        return stats

    def customer_ids(self, external_ids: Iterable[str]) -> dict[str, int]:
        """Ids of these customers, creating stubs for the ones not seen yet."""
        table = Customer.__table__  # type: ignore[attr-defined]
        wanted = list(dict.fromkeys(external_ids))
        found = {k: int(v[0]) for k, v in self._existing(table, wanted, []).items()}
        missing = [e for e in wanted if e not in found]
        if missing:
            self.customers([CustomerRecord(external_id=e) for e in missing])
            found.update({k: int(v[0]) for k, v in self._existing(table, missing, []).items()})
        return found

    def phones(self, numbers: dict[str, str]) -> IngestStats:
        """Set the phone number of existing customers (by source id) where it changed: a
        bookings file names its clients by email and carries their number on each row."""
        table = Customer.__table__  # type: ignore[attr-defined]
        stats = IngestStats()
        existing = self._existing(table, numbers, ["phone"])
        changed = [
            {"i": int(old[0]), "p": numbers[ext][:64]}
            for ext, old in existing.items()
            if old[1] != numbers[ext][:64]
        ]
        if changed:
            self.session.execute(text("UPDATE customer SET phone = :p WHERE id = :i"), changed)
            stats.touched_customers |= {c["i"] for c in changed}
        return stats

    def events(self, records: Sequence[EventRecord]) -> IngestStats:
        table = JourneyEvent.__table__  # type: ignore[attr-defined]
        columns = ["customer_id", "kind", "occurred_at", "channel", "amount_cents"]
        stats = IngestStats()
        for chunk in _chunks(records):
            latest = {r.external_id: r for r in chunk}
            customer_ids = self.customer_ids(r.customer_external_id for r in latest.values())
            existing = self._existing(table, latest, columns)
            rows = []
            for record in latest.values():
                values = {
                    "customer_id": customer_ids[record.customer_external_id],
                    "kind": record.kind,
                    "occurred_at": to_epoch(record.occurred_at),
                    "channel": record.channel,
                    "amount_cents": record.amount_cents,
                }
                old = existing.get(record.external_id)
                if old is not None:
                    old_values = dict(zip(columns, old[1:], strict=True))
                    old_values["occurred_at"] = to_epoch(old_values["occurred_at"])
                    if old_values == values:
                        stats.unchanged += 1
                        continue
                    stats.updated += 1
                    stats.touched_customers.add(int(old_values["customer_id"]))
                else:
                    stats.inserted += 1
                stats.touched_customers.add(values["customer_id"])
                rows.append(
                    {
                        "workspace_id": self.workspace_id,
                        "source_id": self.source_id,
                        "external_id": record.external_id,
                        **values,
                    }
                )
            _upsert(self.session, table, rows, ["workspace_id", "source_id", "external_id"])
            self._wrote(len(rows))
        return stats

    def retract(
        self,
        *,
        carried: Collection[str] = (),
        families: Sequence[EventFamily] = (),
        events: Sequence[str] = (),
        forgotten: Sequence[str] = (),
        erased: Sequence[str] = (),
        derived: Sequence[str] = (),
    ) -> IngestStats:
        """Delete what the source no longer implies (see the module docstring).

        `carried`: the event ids this page upserts (never deleted here).
        `families`: records whose events the page carries in full.
        `events`: event ids the source no longer implies, outright.
        `forgotten`: customers the source deleted with everything it knew of
        them (an archived CRM contact): their events of this source go, and the
        customer row too unless journey's own data refers to it.
        `erased`: customers the source deleted while keeping the records that
        imply their events (Stripe keeps a deleted customer's charges): the
        name, email, first-seen and channel are erased, the events stay, and the
        row goes once no event or review request refers to it.
        `derived`: customers that exist only through their events (a guest made
        from an order's email): removed, profile and all, once no event or
        review request refers to them; kept untouched otherwise.
        """
        table = JourneyEvent.__table__  # type: ignore[attr-defined]
        keep = set(carried)
        doomed: dict[int, int] = {}  # event id -> customer id

        exact = list(dict.fromkeys([*events, *(f.prefix for f in families)]))
        for chunk in _chunks([e for e in exact if e not in keep]):
            rows = self.session.execute(
                select(table.c.id, table.c.customer_id).where(
                    table.c.workspace_id == self.workspace_id,
                    table.c.source_id == self.source_id,
                    table.c.external_id.in_(chunk),
                )
            ).all()
            doomed.update({int(r[0]): int(r[1]) for r in rows})

        prefixes: dict[str, list[str]] = {}
        for family in families:
            for customer in family.customers:
                prefixes.setdefault(customer, []).append(family.prefix + ":")
        everything = list(dict.fromkeys(forgotten))
        ids = self._customer_ids(list(dict.fromkeys([*prefixes, *everything])))
        wanted = {ids[c]: tuple(prefixes.get(c, ())) for c in prefixes if c in ids}
        whole = {ids[c] for c in everything if c in ids}
        for chunk in _chunks(sorted(set(wanted) | whole)):
            rows = self.session.execute(
                select(table.c.id, table.c.customer_id, table.c.external_id).where(
                    table.c.workspace_id == self.workspace_id,
                    table.c.source_id == self.source_id,
                    table.c.customer_id.in_(chunk),
                )
            ).all()
            for event_id, customer_id, external_id in rows:
                if external_id in keep:
                    continue
                if int(customer_id) in whole or external_id.startswith(
                    wanted.get(int(customer_id), ())
                ):
                    doomed[int(event_id)] = int(customer_id)

        for family in families:
            if not family.anywhere:
                continue
            pattern = _like_escape(family.prefix + ":") + "%"
            rows = self.session.execute(
                select(table.c.id, table.c.customer_id, table.c.external_id).where(
                    table.c.workspace_id == self.workspace_id,
                    table.c.source_id == self.source_id,
                    table.c.external_id.like(pattern, escape="\\"),
                )
            ).all()
            for event_id, customer_id, external_id in rows:
                # SQLite's LIKE ignores ASCII case: the exact test is here.
                if external_id.startswith(family.prefix + ":") and external_id not in keep:
                    doomed[int(event_id)] = int(customer_id)

        stats = IngestStats()
        for chunk in _chunks(sorted(doomed)):
            self.session.execute(
                delete(table).where(
                    table.c.workspace_id == self.workspace_id,
                    table.c.source_id == self.source_id,
                    table.c.id.in_(chunk),
                )
            )
        stats.deleted = len(doomed)
        stats.touched_customers |= set(doomed.values())

        gone = list(dict.fromkeys([*everything, *erased]))
        if gone:
            gone_ids = self._customer_ids(gone)
            stats.touched_customers |= self._drop_customers(sorted(set(gone_ids.values())))
        if derived:
            ids = self._customer_ids(list(dict.fromkeys(derived)))
            stats.touched_customers |= self._drop_customers(sorted(set(ids.values())), erase=False)
        return stats

    def _customer_ids(self, external_ids: Sequence[str]) -> dict[str, int]:
        """Ids of the customers of this source that exist (no stubs are made)."""
        table = Customer.__table__  # type: ignore[attr-defined]
        return {k: int(v[0]) for k, v in self._existing(table, external_ids, []).items()}

    def _drop_customers(self, ids: Sequence[int], erase: bool = True) -> set[int]:
        """Erase these customers' profiles (with `erase`), then delete the rows nothing
        refers to.

        A row an event or a review request still refers to stays as an empty
        stub: the events are the source's to remove, the review requests are
        journey's own history. Returns the ids whose state needs refreshing.
        """
        customer = Customer.__table__  # type: ignore[attr-defined]
        event = JourneyEvent.__table__  # type: ignore[attr-defined]
        review = ReviewRequest.__table__  # type: ignore[attr-defined]
        journey = CustomerJourney.__table__  # type: ignore[attr-defined]
        for chunk in _chunks(ids):
            scope = (
                customer.c.workspace_id == self.workspace_id,
                customer.c.source_id == self.source_id,
                customer.c.id.in_(chunk),
            )
            if erase:
                self.session.execute(
                    update(customer)
                    .where(*scope)
                    .values(name=None, email=None, first_seen=None, channel=None)
                )
            unused = select(customer.c.id).where(
                *scope,
                ~exists().where(
                    event.c.workspace_id == self.workspace_id,
                    event.c.customer_id == customer.c.id,
                ),
                ~exists().where(
                    review.c.workspace_id == self.workspace_id,
                    review.c.customer_id == customer.c.id,
                ),
            )
            dropped = [int(r[0]) for r in self.session.execute(unused).all()]
            if dropped:
                self.session.execute(
                    delete(journey).where(
                        journey.c.workspace_id == self.workspace_id,
                        journey.c.customer_id.in_(dropped),
                    )
                )
                self.session.execute(
                    delete(customer).where(
                        customer.c.workspace_id == self.workspace_id,
                        customer.c.source_id == self.source_id,
                        customer.c.id.in_(dropped),
                    )
                )
        return set(ids)

    def refresh(self, stats: IngestStats) -> None:
        """Bring the journey state of every touched customer up to date."""
        if stats.touched_customers:
            refresh_journeys(self.session, self.workspace_id, stats.touched_customers)
