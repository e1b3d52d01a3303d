"""Retraction: a page takes away what its source no longer implies (journey.ingest.Ingestor.retract
and journey.sync), on SQLite and PostgreSQL.

The connector here is a toy: its API is a dict of records, each implying some
events, read in one page. What the tests check is what every connector relies
on: stale events go, carried ones stay, other sources and workspaces are never
touched, customers deleted at the source go (or stay as empty stubs when
journey's own review requests refer to them), and the journey state follows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session

from journey.ingest import CustomerRecord, EventFamily, EventRecord, Ingestor
from journey.models import ReviewRequest
from journey.sources.base import Connector, Page, Raw, Records, Resource
from journey.sync import sync_source
from journey.workspaces import ensure_source, ensure_workspace
from tests.source_store import store

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(day: int) -> datetime:
    return T0.replace(day=day)


class ToyConnector(Connector):
    """Orders with refunds, like a shop: `api` maps an order id to its current state."""

    kind = "toy"
    service = "Toy"
    default_base_url = "memory://"
    resources = (Resource("orders", "/orders"),)

    def __init__(self, api: dict[str, dict[str, Any]], deleted: Sequence[str] = ()) -> None:
        super().__init__("secret")
        self.api = api
        self.deleted = list(deleted)

    def fetch(self, resource: Resource, cursor: str | None) -> Iterator[Page]:
        yield Page([{"id": k, **v} for k, v in self.api.items()], None)

    def to_records(self, resource: Resource, raw: Sequence[Raw]) -> Records:
        records = Records(forgotten=list(self.deleted))
        for order in raw:
            oid, who = order["id"], order["customer"]
            records.customers.append(CustomerRecord(who, name=who.title()))
            if order["paid"]:
                records.events.append(
                    EventRecord(f"order:{oid}", who, "order", at(2), amount_cents=1000)
                )
            for rid in order["refunds"]:
                records.events.append(
                    EventRecord(f"order:{oid}:refund:{rid}", who, "refund", at(3), None, 100)
                )
            records.families.append(EventFamily(f"order:{oid}", (who,)))
        return records


def make_source(engine: Engine, workspace: str = "acme", name: str = "toy") -> int:
    with Session(engine) as session:
        ensure_workspace(session, workspace)
        sid = int(ensure_source(session, workspace, "toy", name).id or 0)
        session.commit()
        return sid


def journey_row(engine: Engine, source_id: int, customer: str) -> dict[str, Any] | None:
    with Session(engine) as session:
        row = (
            session.execute(
                text(
                    "SELECT cj.revenue_cents, cj.first_purchase_at FROM customer_journey cj "
                    "JOIN customer c ON c.id = cj.customer_id "
                    "WHERE c.source_id = :src AND c.external_id = :ext"
                ),
                {"src": source_id, "ext": customer},
            )
            .mappings()
            .first()
        )
        return dict(row) if row else None


def test_a_record_that_stops_implying_events_takes_them_away(engine):
    sid = make_source(engine)
    api = {
        "1": {"customer": "ann", "paid": True, "refunds": ["r1", "r2"]},
        "2": {"customer": "bob", "paid": True, "refunds": []},
    }
    assert sync_source(engine, sid, connector=ToyConnector(api)).ok
    assert set(store(engine, sid)[1]) == {
        "order:1",
        "order:1:refund:r1",
        "order:1:refund:r2",
        "order:2",
    }
    assert journey_row(engine, sid, "ann")["revenue_cents"] == 800

    api["1"]["refunds"] = ["r2"]  # a refund deleted
    api["2"]["paid"] = False  # an order moved back to pending
    result = sync_source(engine, sid, connector=ToyConnector(api))
    assert result.ok and result.deleted == 2
    assert set(store(engine, sid)[1]) == {"order:1", "order:1:refund:r2"}
    # the journey state follows: Bob bought nothing any more, Ann's revenue is back up
    assert journey_row(engine, sid, "bob")["first_purchase_at"] is None
    assert journey_row(engine, sid, "ann")["revenue_cents"] == 900

    # reading the same source again changes nothing
    again = sync_source(engine, sid, connector=ToyConnector(api))
    assert again.deleted == 0 and again.inserted == 0


def test_a_connector_that_says_nothing_retracts_nothing(engine):
    sid = make_source(engine)
    with Session(engine) as session:
        ingest = Ingestor(session, "acme", sid)
        ingest.events([EventRecord("order:9", "cat", "order", at(2), amount_cents=5)])
        session.commit()

    class Silent(ToyConnector):
        def to_records(self, resource: Resource, raw: Sequence[Raw]) -> Records:
            return Records(customers=[CustomerRecord("cat", name="Cat")])

    assert sync_source(engine, sid, connector=Silent({"9": {}})).ok
    assert "order:9" in store(engine, sid)[1]


def test_retraction_never_reaches_another_source_or_workspace(engine):
    mine = make_source(engine)
    other_source = make_source(engine, name="other")
    other_workspace = make_source(engine, workspace="elsewhere")
    for sid, ws in ((other_source, "acme"), (other_workspace, "elsewhere")):
        with Session(engine) as session:
            Ingestor(session, ws, sid).events(
                [EventRecord("order:1", "ann", "order", at(2), amount_cents=1000)]
            )
            session.commit()
    api = {"1": {"customer": "ann", "paid": False, "refunds": []}}
    assert sync_source(engine, mine, connector=ToyConnector(api, deleted=["ann"])).ok
    assert "order:1" in store(engine, other_source)[1]
    assert "order:1" in store(engine, other_workspace)[1]
    assert "ann" in store(engine, other_source)[0]


def test_a_family_is_found_by_its_own_id_even_when_its_customer_changed(engine):
    sid = make_source(engine)
    with Session(engine) as session:
        Ingestor(session, "acme", sid).events(
            [EventRecord("order:1", "guest:ann@example.com", "order", at(2), amount_cents=10)]
        )
        session.commit()
    # the order now names a registered customer and is no longer paid
    api = {"1": {"customer": "ann", "paid": False, "refunds": []}}
    assert sync_source(engine, sid, connector=ToyConnector(api)).ok
    assert store(engine, sid)[1] == {}


def test_forgotten_customers_go_with_their_events_but_review_requests_stay(engine):
    sid = make_source(engine)
    api = {
        "1": {"customer": "ann", "paid": True, "refunds": []},
        "2": {"customer": "bob", "paid": True, "refunds": []},
    }
    assert sync_source(engine, sid, connector=ToyConnector(api)).ok
    with Session(engine) as session:
        bob = session.execute(
            text("SELECT id FROM customer WHERE source_id = :s AND external_id = 'bob'"),
            {"s": sid},
        ).scalar_one()
        session.add(ReviewRequest(workspace_id="acme", customer_id=bob, asked_at=at(5)))
        session.commit()

    gone = {"3": {"customer": "cat", "paid": True, "refunds": []}}  # Ann and Bob were deleted
    result = sync_source(engine, sid, connector=ToyConnector(gone, deleted=["ann", "bob"]))
    assert result.ok
    customers, events = store(engine, sid)
    assert set(events) == {"order:3"}
    # Ann is gone entirely; Bob stays as an empty stub because journey asked him for a review
    assert customers == {"bob": (None, None, None, None), "cat": ("Cat", None, None, None)}
    with Session(engine) as session:
        assert session.execute(text("SELECT COUNT(*) FROM review_request")).scalar_one() == 1
    assert journey_row(engine, sid, "ann") is None
    assert journey_row(engine, sid, "bob")["first_purchase_at"] is None


def test_erased_customers_keep_their_events_and_lose_their_profile(engine):
    sid = make_source(engine)
    with Session(engine) as session:
        ingest = Ingestor(session, "acme", sid)
        ingest.customers(
            [
                CustomerRecord("ann", "Ann", "ann@example.com", at(1), "google"),
                CustomerRecord("dan", "Dan", "dan@example.com", at(1), "google"),
            ]
        )
        ingest.events([EventRecord("charge:1", "ann", "order", at(2), amount_cents=10)])
        stats = ingest.retract(erased=["ann", "dan", "nobody"])
        ingest.refresh(stats)
        session.commit()
    customers, events = store(engine, sid)
    assert customers == {"ann": (None, None, None, None)}  # Dan had nothing left: gone
    assert set(events) == {"charge:1"}
    assert journey_row(engine, sid, "ann")["revenue_cents"] == 10
