"""What a source's sync left in the store, in a form tests compare with a fake API's data.

Shared by the sync and connector tests so "the store equals the source" means
the same check for Stripe, HubSpot and WooCommerce.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, select
from sqlmodel import Session

from journey.models import Customer, JourneyEvent, Source
from journey.models.types import to_epoch

Store = tuple[dict[str, tuple], dict[str, tuple]]


def store(engine: Engine, source_id: int) -> Store:
    """Customers by external id (name, email, first seen, channel) and events by external
    id (customer's external id, kind, time, amount) of one source."""
    with Session(engine) as session:
        rows = session.exec(select(Customer).where(Customer.source_id == source_id)).scalars().all()
        customers = {
            c.external_id: (
                c.name,
                c.email,
                to_epoch(c.first_seen) if c.first_seen else None,
                c.channel,
            )
            for c in rows
        }
        ids = {c.id: c.external_id for c in rows}
        events = {
            e.external_id: (ids[e.customer_id], e.kind, to_epoch(e.occurred_at), e.amount_cents)
            for e in session.exec(select(JourneyEvent).where(JourneyEvent.source_id == source_id))
            .scalars()
            .all()
        }
    return customers, events


def assert_store_equals(engine: Engine, source_id: int, expected: Store) -> None:
    want_customers, want_events = expected
    got_customers, got_events = store(engine, source_id)
    assert got_customers == want_customers
    assert got_events == want_events


def source_row(engine: Engine, source_id: int) -> Source:
    with Session(engine) as session:
        source = session.get(Source, source_id)
        assert source is not None
        return source


class Killed(BaseException):
    """A sync process dying at a chosen point (a BaseException, so no handler swallows it)."""


def kill_after(n: int) -> Callable[[str, int, int], None]:
    """A sync progress callback that kills the sync at its `n`th page."""

    def progress(resource: str, pages: int, records: int) -> None:
        nonlocal n
        n -= 1
        if n == 0:
            raise Killed

    return progress
