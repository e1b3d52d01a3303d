"""Writing parsed rows into the store in batches, committed as they go.

Why commit per batch (issue 18): one transaction for a whole file held
SQLite's write lock for the whole import (78 s for 1M orders), and the bot's
writes failed with "database is locked" meanwhile. Each batch is now its own
short transaction, and a file imported again after a crash is an upsert that
finds the written rows unchanged.

The journey state of the touched customers is refreshed once, at the end
(journey.state.refresh_in_steps, itself committed in steps), not per batch:
per batch, relinking and recomputing took most of a large import's time and
grew with the store. While a large import runs, the reports therefore show
its customers' state as it was before the import; an import interrupted
before its end leaves that state stale until it is run again, and the run
that resumes it refreshes every customer of the source (`refresh_source`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Table, func, select
from sqlmodel import Session

from journey.imports.common import SOURCE_KIND
from journey.imports.generic import _Event, _Parsed
from journey.imports.spool import FlatCustomer, FlatEvent, flat_events
from journey.imports.staged import StagedEvent, upsert_events
from journey.ingest import BATCH, CustomerRecord, Ingestor, IngestStats
from journey.models import Customer
from journey.models.types import to_epoch
from journey.state import refresh_in_steps
from journey.workspaces import ensure_source, ensure_workspace


class _Writer:
    """Buffers parsed rows and upserts them in batches through the Ingestor.

    The workspace and source are created on the first write, so an import that
    writes nothing leaves no trace.
    """

    def __init__(
        self,
        session: Session,
        workspace_id: str,
        source_name: str,
        commit: Callable[[], None] | None = None,
        batch: int = BATCH,
    ) -> None:
        self.session = session
        self.commit = commit
        self.batch = batch
        self.committed = 0  # batches committed
        self.workspace_id = workspace_id
        self.source_name = source_name
        self.stats = IngestStats()
        self._ingestor: Ingestor | None = None
        # Customer fields the file has columns for; the others keep their stored values.
        self.customer_fields: frozenset[str] | None = None
        self._customers: list[CustomerRecord] = []
        self._events: list[FlatEvent] = []
        # Emails of the customer records this import wrote (lower-case -> external id),
        # and whether the source holds customers whose email_key is not set yet.
        self._emails: dict[str, str] = {}
        self._unkeyed: bool | None = None
        # Resuming an interrupted import: the customers its earlier run touched are
        # not known, so every customer of the source is refreshed at the end.
        self.refresh_source = False

    @property
    def source_id(self) -> int | None:
        return self._ingestor.source_id if self._ingestor is not None else None

    @property
    def records(self) -> int:
        """Records written or found unchanged so far (the marker's count)."""
        return self.stats.inserted + self.stats.updated + self.stats.unchanged

    @property
    def wrote(self) -> bool:
        return self._ingestor is not None

    def _get_ingestor(self) -> Ingestor:
        if self._ingestor is None:
            ensure_workspace(self.session, self.workspace_id)
            source = ensure_source(self.session, self.workspace_id, SOURCE_KIND, self.source_name)
            assert source.id is not None
            self._ingestor = Ingestor(self.session, self.workspace_id, source.id)
        return self._ingestor

    def add(self, parsed: _Parsed) -> None:
        if isinstance(parsed, CustomerRecord):
            self._add_customer(parsed)
        else:
            self._events.extend(flat_events(parsed))
        if len(self._customers) >= self.batch or len(self._events) >= self.batch:
            self.flush()

    def add_bundle(self, customer: CustomerRecord | None, events: tuple[_Event, ...]) -> None:
        """A vendor row: an optional customer record and its events."""
        if customer is not None:
            self._add_customer(customer)
        self._events.extend(flat_events(events))
        if len(self._customers) >= self.batch or len(self._events) >= self.batch:
            self.flush()

    def add_flat(self, customer: FlatCustomer | None, events: tuple[FlatEvent, ...]) -> None:
        """A row as the spool keeps it (journey.imports.spool)."""
        if customer is not None:
            self._add_customer(CustomerRecord(*customer))
        self._events.extend(events)
        if len(self._customers) >= self.batch or len(self._events) >= self.batch:
            self.flush()

    def _add_customer(self, record: CustomerRecord) -> None:
        self._customers.append(record)
        if record.email:
            self._emails.setdefault(record.email.lower(), record.external_id)

    def flush(self) -> None:
        if self._customers:
            self.stats.add(
                self._get_ingestor().customers(self._customers, fields=self.customer_fields)
            )
            self._customers = []
        if self._events:
            ingestor = self._get_ingestor()
            ids = self._resolve_emails({e[1] for e in self._events if e[2]})
            staged: list[StagedEvent] = [
                (
                    external_id,
                    ids[ref] if by_email else ref,
                    kind,
                    to_epoch(occurred_at),
                    channel,
                    amount,
                )
                for external_id, ref, by_email, kind, occurred_at, channel, amount, _ in self._events
            ]
            self.stats.add(upsert_events(ingestor, staged))
            phones = {
                ids[ref] if by_email else ref: phone
                for _, ref, by_email, _, _, _, _, phone in self._events
                if phone
            }
            if phones:
                self.stats.add(ingestor.phones(phones))
            self._events = []
        if self.commit is not None and self._ingestor is not None:
            # Commit the batch: the write lock is held for one batch. The touched
            # customers' state is refreshed at the end (see the module docstring).
            self.commit()
            self.committed += 1

    def _resolve_emails(self, emails: set[str]) -> dict[str, str]:
        """External ids of the customers these emails belong to in this source.

        An orders export often names customers by email only; matching them to
        the customers imported with an id keeps one customer per person. An
        email nobody has yet becomes the id of a new (stub) customer.

        The stored customers are found through their normalised email (email_key,
        indexed, kept by journey.people), then compared as before (lower-case);
        the ones this import wrote are known here. Only when the source has
        customers whose email is not keyed yet (people not built) are the emails
        compared over the source's customers, which reads all of them.
        """
        found: dict[str, str] = {}
        if not emails:
            return found
        ingestor = self._get_ingestor()
        table: Table = Customer.__table__  # type: ignore[attr-defined]
        scope = (
            table.c.workspace_id == self.workspace_id,
            table.c.source_id == ingestor.source_id,
        )
        if self._unkeyed is None:
            self._unkeyed = (
                self.session.execute(
                    select(table.c.id)
                    .where(*scope, table.c.email_key.is_(None), table.c.email.is_not(None))
                    .limit(1)
                ).first()
                is not None
            )
        wanted = sorted(emails)
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            if self._unkeyed:
                where = func.lower(table.c.email).in_(chunk)
            else:
                where = table.c.email_key.in_(sorted({e.casefold() for e in chunk}))
            rows = self.session.execute(
                select(table.c.external_id, table.c.email).where(*scope, where).order_by(table.c.id)
            ).all()
            for external_id, email in rows:
                if email is not None and email.lower() in emails:
                    found.setdefault(email.lower(), external_id)
        for email in emails:
            written = self._emails.get(email)
            if written is not None:
                found.setdefault(email, written)
        return {e: found.get(e, e) for e in emails}

    def finish(self, commit: Callable[[], None] | None = None) -> IngestStats:
        """Write what is left, then refresh the touched customers' journey state,
        committing between steps with `commit`."""
        self.flush()
        touched = self.stats.touched_customers
        if self.refresh_source:
            source_id = self._get_ingestor().source_id
            table: Table = Customer.__table__  # type: ignore[attr-defined]
            touched |= {
                int(i)
                for i in self.session.execute(
                    select(table.c.id).where(
                        table.c.workspace_id == self.workspace_id,
                        table.c.source_id == source_id,
                    )
                ).scalars()
            }
        if self._ingestor is not None:
            refresh_in_steps(self.session, self.workspace_id, touched, commit)
        return self.stats
