"""The WooCommerce connector and journey.sync against the fake WooCommerce over real HTTP,
on SQLite and PostgreSQL.

The sync tests end by comparing the whole store with what the fake store should
give (tests/fakes/woocommerce_api.py: expected_store), so a lost, duplicated or
stale record fails them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, text
from sqlmodel import Session

from journey.errors import JourneyError
from journey.models import JourneyEvent, Source, SyncCursor
from journey.secrets import Cipher
from journey.sources import connector_class
from journey.sources.http import NO_WAIT, AuthError, HttpOptions, RetryPolicy, ScopeError
from journey.sources.manage import Credential, add_source
from journey.sources.woocommerce import (
    CUSTOMER_REFRESH,
    WooCommerceConnector,
    minor_units,
    order_records,
)
from journey.sync import sync_source
from tests.fakes.woocommerce_api import (
    API,
    DAY,
    KEY,
    SECRET,
    FakeWoo,
    channels,
    expected_store,
    gmt,
    populate,
)
from tests.source_store import Killed, assert_store_equals, kill_after, source_row, store

CIPHER_KEY = Cipher.generate_key()
FAST = HttpOptions(retry=NO_WAIT, timeout=httpx.Timeout(0.25))
PAGE = 7
SECRET_PAIR = f"{KEY}:{SECRET}"


@pytest.fixture
def cipher() -> Cipher:
    return Cipher([CIPHER_KEY])


@pytest.fixture
def fake() -> Iterator[FakeWoo]:
    with FakeWoo(slow_seconds=0.4) as f:
        populate(f)
        yield f


@pytest.fixture
def source_id(engine: Engine, fake: FakeWoo, cipher: Cipher) -> int:
    with Session(engine) as session:
        source, _ = add_source(
            session,
            "acme",
            "woocommerce",
            "shop",
            Credential(SECRET_PAIR, {"url": fake.url}),
            cipher,
        )
        session.commit()
        return int(source.id or 0)


def connector(fake: FakeWoo, secret: str = SECRET_PAIR, **kw: Any) -> WooCommerceConnector:
    kw.setdefault("http", FAST)
    kw.setdefault("page_size", PAGE)
    return WooCommerceConnector(secret, {"url": fake.url}, **kw)


def run(engine: Engine, source_id: int, cipher: Cipher, fake: FakeWoo, **kwargs: Any):
    made = connector(fake, clock=kwargs.pop("clock", fake.clock))
    return sync_source(engine, source_id, cipher=cipher, connector=made, **kwargs)


def assert_store_matches(engine: Engine, source_id: int, fake: FakeWoo) -> None:
    assert_store_equals(engine, source_id, expected_store(fake))


# --- the whole store ---------------------------------------------------------------------


def test_full_sync_makes_the_store_equal_to_the_shop(engine, fake, source_id, cipher):
    result = run(engine, source_id, cipher, fake)
    assert result.ok and result.error is None, result.error
    assert_store_matches(engine, source_id, fake)
    _, events = store(engine, source_id)
    kinds = {v[1] for v in events.values()}
    assert kinds == {"order", "refund", "cancellation"}
    assert any(k.startswith("guest:") for k, *_ in [(v[0],) for v in events.values()])
    assert result.pages_by_resource["orders"] > 3 and result.pages_by_resource["customers"] > 3
    # the order attribution's UTM source is the order's channel
    with Session(engine) as session:
        got = dict(
            session.execute(
                select(JourneyEvent.external_id, JourneyEvent.channel).where(
                    JourneyEvent.kind == "order"
                )
            ).all()
        )
    want = channels(fake)
    assert got == {k: want[k] for k in got}
    assert "google" in got.values() and "newsletter" in got.values()
    source = source_row(engine, source_id)
    assert source.status == "active" and source.last_sync_at is not None
    # every list request stayed within WooCommerce's per_page limit and asked GMT dates
    for call in fake.calls:
        if call.path == f"{API}/orders" and call.param("modified_after"):
            assert call.param("dates_are_gmt") == "true"
        assert int(call.param("per_page") or 10) <= 100


def test_a_resync_with_nothing_new_reads_one_page_per_resource(engine, fake, source_id, cipher):
    assert run(engine, source_id, cipher, fake).ok
    before = len(fake.calls)
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    lists = [c for c in fake.calls[before:] if c.path in (f"{API}/orders", f"{API}/customers")]
    assert [c.path for c in lists].count(f"{API}/customers") == 1
    # one request for the orders, one for the trash
    assert [(c.path, c.param("status")) for c in lists].count((f"{API}/orders", "any")) == 1
    assert [(c.path, c.param("status")) for c in lists].count((f"{API}/orders", "trash")) == 1
    assert result.inserted == 0 and result.updated == 0 and result.deleted == 0
    orders = next(c for c in lists if c.path == f"{API}/orders")
    newest = max(to_epoch_str(o["date_modified_gmt"]) for o in fake.orders.values())
    assert orders.param("modified_after") == gmt(newest - 300 - 1)  # 5 minutes of overlap
    assert orders.param("orderby") == "modified" and orders.param("order") == "asc"
    assert_store_matches(engine, source_id, fake)


def to_epoch_str(value: str) -> int:
    from tests.fakes.woocommerce_api import parse

    return parse(value)


def test_new_orders_and_changes_to_old_ones_arrive_incrementally(engine, fake, source_id, cipher):
    assert run(engine, source_id, cipher, fake).ok
    later = max(to_epoch_str(o["date_modified_gmt"]) for o in fake.orders.values()) + DAY
    fake.clock = lambda: later + 500
    new = fake.add_customer(later, email="new@example.com", first_name="New", last_name="Buyer")
    fake.add_order(later + 10, "42.00", customer_id=new["id"])
    fake.add_order(later + 20, "10.00", email="fresh.guest@example.com", first_name="Fresh")
    pending = next(o for o in fake.orders.values() if o["status"] == "pending")
    fake.set_status(pending["id"], "processing", later + 30)  # paid at last
    done = next(o for o in fake.orders.values() if o["status"] == "completed" and not o["refunds"])
    fake.refund(done["id"], "3.00", later + 40)  # a partial refund of an old order
    gone = next(o for o in fake.orders.values() if o["status"] == "on-hold")
    fake.set_status(gone["id"], "cancelled", later + 50)
    result = run(engine, source_id, cipher, fake, clock=fake.clock)
    assert result.ok, result.error
    assert result.pages_by_resource == {"customers": 1, "orders": 1, "trashed_orders": 1}
    assert_store_matches(engine, source_id, fake)
    _, events = store(engine, source_id)
    assert events[f"order:{pending['id']}"][1] == "order"
    assert events[f"order:{gone['id']}:cancellation"][1] == "cancellation"


def test_orders_taken_back_at_the_shop_leave_the_store(engine, fake, source_id, cipher):
    """Trashed orders, orders moved back to pending or failed, deleted refunds: after the
    next sync the store equals the shop, and guests with nothing left are gone."""
    assert run(engine, source_id, cipher, fake).ok
    _, before = store(engine, source_id)
    later = max(to_epoch_str(o["date_modified_gmt"]) for o in fake.orders.values()) + DAY
    fake.clock = lambda: later + 500
    paid = [o for o in fake.orders.values() if o["status"] == "completed" and o["customer_id"]]
    fake.trash_order(paid[0]["id"], later)
    fake.set_status(paid[1]["id"], "pending", later + 10)
    fake.set_status(paid[2]["id"], "failed", later + 20)
    refunded = next(o for o in fake.orders.values() if o["refunds"])
    gone_refund = refunded["refunds"][0]["id"]
    fake.delete_refund(gone_refund, later + 30)
    # a guest whose only order is trashed disappears with it
    guests: dict[str, list[dict]] = {}
    for o in fake.orders.values():
        if not o["customer_id"] and o["billing"]["email"]:
            guests.setdefault(o["billing"]["email"].lower(), []).append(o)
    email, (lone,) = next((e, os) for e, os in guests.items() if len(os) == 1)
    fake.trash_order(lone["id"], later + 40)

    result = run(engine, source_id, cipher, fake, clock=fake.clock)
    assert result.ok, result.error
    assert_store_matches(engine, source_id, fake)
    customers, events = store(engine, source_id)
    for order in paid[:3]:
        assert f"order:{order['id']}" in before and f"order:{order['id']}" not in events
    assert f"order:{refunded['id']}:refund:{gone_refund}" not in events
    assert f"guest:{email}" not in customers
    assert result.deleted >= 5
    again = run(engine, source_id, cipher, fake, clock=fake.clock)
    assert again.deleted == 0 and again.inserted == 0
    # an order restored from the trash comes back
    fake.set_status(paid[0]["id"], "completed", later + 600)
    fake.clock = lambda: later + 1200
    assert run(engine, source_id, cipher, fake, clock=fake.clock).ok
    assert_store_matches(engine, source_id, fake)


def test_refunds_stored_under_their_old_ids_are_replaced(engine, fake, source_id, cipher):
    from journey.ingest import EventRecord, Ingestor
    from journey.models.types import from_epoch

    order = next(o for o in fake.orders.values() if o["refunds"] and o["customer_id"])
    rid = order["refunds"][0]["id"]
    with Session(engine) as session:
        Ingestor(session, "acme", source_id).events(
            [
                EventRecord(
                    f"refund:{rid}", str(order["customer_id"]), "refund", from_epoch(1), None, 1
                )
            ]
        )
        session.commit()
    assert run(engine, source_id, cipher, fake).ok
    assert_store_matches(engine, source_id, fake)  # no refund counted twice


# --- failures ----------------------------------------------------------------------------


def test_a_fault_at_every_page_still_gives_the_whole_store(engine, fake, source_id, cipher):
    fake.fail_each_request_once()  # 429 with Retry-After, 500, slow, dropped, truncated JSON
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert {c.fault for c in fake.calls if c.fault} == {"429", "500", "slow", "drop", "truncate"}
    assert_store_matches(engine, source_id, fake)


def test_retry_after_from_the_host_is_honoured(fake):
    sleeps: list[float] = []
    fake.fail("429", retry_after="7")
    fake.fail("500")
    policy = RetryPolicy(sleep=sleeps.append, initial=0.5, jitter=0.0)
    made = connector(fake, http=HttpOptions(retry=policy, timeout=httpx.Timeout(0.5)))
    made.check()
    assert sleeps == [7.0, 1.0]


def test_killed_mid_sync_resumes_without_loss_or_duplicates(engine, fake, source_id, cipher):
    customer_pages = -(-sum(c["role"] == "customer" for c in fake.customers.values()) // PAGE)
    with pytest.raises(Killed):
        run(engine, source_id, cipher, fake, progress=kill_after(customer_pages - 1))
    with Session(engine) as session:
        cursor = session.get(SyncCursor, (source_id, "customers"))
        assert cursor is not None and json.loads(cursor.cursor)["in_pass"] is True
    with pytest.raises(Killed):  # killed again, inside the orders pass
        run(engine, source_id, cipher, fake, progress=kill_after(4))
    with Session(engine) as session:
        cursor = session.get(SyncCursor, (source_id, "orders"))
        assert cursor is not None and json.loads(cursor.cursor)["in_pass"] is True
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert_store_matches(engine, source_id, fake)
    # the customers pass went on where it stopped: each page was read once, the last twice
    pages = [int(c.param("page") or 0) for c in fake.list_calls("customers")]
    assert sorted(pages) == sorted([*range(1, customer_pages + 1), customer_pages])
    assert source_row(engine, source_id).last_error is None


def test_a_revoked_key_pauses_the_source_once(engine, fake, source_id, cipher):
    fake.revoked.add(KEY)
    result = run(engine, source_id, cipher, fake)
    assert result.paused and not result.ok
    assert "WooCommerce refused the key" in (result.error or "")
    assert "journey sources add woocommerce --name shop" in (result.error or "")
    assert KEY not in (result.error or "") and SECRET not in (result.error or "")
    source = source_row(engine, source_id)
    assert source.status == "paused" and source.last_error == result.error
    calls = len(fake.calls)
    again = run(engine, source_id, cipher, fake)
    assert again.skipped and again.paused and len(fake.calls) == calls  # no retry storm
    # a new key resumes it; the sync builds the connector from the stored credential
    new_key, new_secret = "ck_" + "1" * 40, "cs_" + "2" * 40
    fake.keys[new_key] = (new_secret, "read_write")
    with Session(engine) as session:
        add_source(
            session,
            "acme",
            "woocommerce",
            "shop",
            Credential(f"{new_key}:{new_secret}", {"url": fake.url}),
            cipher,
        )
        session.commit()
    result = sync_source(engine, source_id, cipher=cipher, http=FAST)
    assert result.ok, result.error
    assert_store_matches(engine, source_id, fake)


def test_a_key_without_read_permission_and_a_missing_key_are_told_apart(fake):
    fake.keys["ck_writeonly"] = ("cs_writeonly", "write")
    with pytest.raises(ScopeError, match="Read permission") as info:
        connector(fake, "ck_writeonly:cs_writeonly").check()
    assert info.value.scope == "read"
    with pytest.raises(AuthError, match="refused the key"):
        connector(fake, f"{KEY}:cs_wrong").check()
    anonymous = httpx.get(f"{fake.url}{API}/orders")
    assert anonymous.status_code == 401
    assert anonymous.json() == {
        "code": "woocommerce_rest_cannot_view",
        "message": "Sorry, you cannot list resources.",
        "data": {"status": 401},
    }


def test_a_key_and_a_store_address_are_checked_before_any_request():
    with pytest.raises(JourneyError, match="joined by a colon"):
        WooCommerceConnector("ck_only", {"url": "https://shop.example"})
    with pytest.raises(JourneyError, match="HTTPS only"):
        WooCommerceConnector(SECRET_PAIR, {"url": "http://shop.example"})
    with pytest.raises(JourneyError, match="needs its address"):
        WooCommerceConnector(SECRET_PAIR, {})
    made = WooCommerceConnector(SECRET_PAIR, {"url": "https://shop.example/blog/wp-json/wc/v3/"})
    assert made.base_url == "https://shop.example/blog"
    assert SECRET not in repr(made)
    assert connector_class("woocommerce") is WooCommerceConnector


# --- changes while paging ------------------------------------------------------------------


def test_orders_changed_between_pages_are_not_lost(engine, fake, source_id, cipher):
    order_ids = sorted(fake.orders, key=lambda i: (fake.orders[i]["date_modified_gmt"], i))
    moved: list[int] = []
    late = max(to_epoch_str(o["date_modified_gmt"]) for o in fake.orders.values()) + DAY

    slides = fake.orders[order_ids[PAGE]]  # first of page 2, slides back into page 1
    slides["status"] = "completed"  # so that losing it shows in the store

    def between(f: FakeWoo, resource: str, call) -> None:
        if resource == "orders" and not moved:
            # the oldest order (read on page 1) is completed now: it jumps to the end of
            # the list, and offset paging would skip the order it pushed into page 1
            moved.append(order_ids[0])
            f.set_status(order_ids[0], "completed", late)
            f.add_order(late + 5, "11.00", email="during@example.com")

    fake.between_pages = between
    result = run(engine, source_id, cipher, fake)
    assert result.ok and moved
    assert_store_matches(engine, source_id, fake)
    # the pass never asked for a page number past 1 except inside a run of ties
    orders = fake.list_calls("orders")
    assert all(
        c.param("page") == "1" or c.param("modified_after") == orders[i - 1].param("modified_after")
        for i, c in enumerate(orders)
    )


def test_a_run_of_orders_modified_in_one_second_longer_than_a_page(engine, fake, source_id, cipher):
    tie = max(to_epoch_str(o["date_modified_gmt"]) for o in fake.orders.values()) + DAY
    for oid in sorted(fake.orders)[: PAGE * 3 + 2]:
        fake.touch(oid, tie)
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert_store_matches(engine, source_id, fake)
    stepped = [c for c in fake.list_calls("orders") if c.param("page") not in (None, "1")]
    assert stepped  # it stepped through the run by page number


def test_deleted_customers_do_not_hide_new_ones(engine, fake, source_id, cipher):
    assert run(engine, source_id, cipher, fake).ok
    for cid in [c["id"] for c in fake.customers.values() if c["role"] == "customer"][: PAGE + 2]:
        fake.delete_customer(cid)  # the list moves back by more than a page
    new = fake.add_customer(1790000000, email="late@example.com", first_name="Late")
    assert run(engine, source_id, cipher, fake).ok
    got, _ = store(engine, source_id)
    assert got[str(new["id"])] == ("Late", "late@example.com", 1790000000, None)


def test_edits_to_old_customers_arrive_with_the_weekly_full_read(engine, fake, source_id, cipher):
    now = 1790000000
    assert run(engine, source_id, cipher, fake, clock=lambda: now).ok
    first = min(fake.customers)
    fake.update_customer(first, email="moved@example.com")
    assert run(engine, source_id, cipher, fake, clock=lambda: now + DAY).ok
    assert store(engine, source_id)[0][str(first)][1] == "person0@example.com"  # not yet
    later = now + int(CUSTOMER_REFRESH.total_seconds()) + DAY
    assert run(engine, source_id, cipher, fake, clock=lambda: later).ok
    assert_store_matches(engine, source_id, fake)


# --- mapping -------------------------------------------------------------------------------


def test_orders_map_as_documented():
    base = {
        "id": 5,
        "customer_id": 0,
        "currency": "EUR",
        "total": "19.99",
        "date_created_gmt": "2026-03-01T10:00:00",
        "date_modified_gmt": "2026-03-04T10:00:00",
        "date_paid_gmt": None,
        "billing": {"first_name": "Ana", "last_name": "Lima", "email": "Ana@Example.com"},
        "refunds": [],
        "meta_data": [],
    }
    for status in ("pending", "on-hold", "failed", "trash", "checkout-draft"):
        assert len(order_records({**base, "status": status})) == 0
    done = order_records({**base, "status": "completed"})
    assert [(e.external_id, e.kind, e.amount_cents) for e in done.events] == [
        ("order:5", "order", 1999)
    ]
    assert done.customers[0].external_id == "guest:ana@example.com"
    assert done.customers[0].name == "Ana Lima"
    cancelled = order_records({**base, "status": "cancelled", "customer_id": 9})
    assert [(e.external_id, e.customer_external_id, e.kind) for e in cancelled.events] == [
        ("order:5:cancellation", "9", "cancellation")
    ]
    assert not cancelled.customers
    refunded = order_records(
        {
            **base,
            "status": "refunded",
            "date_paid_gmt": "2026-03-01T10:00:00",
            "_refunds": [{"id": 8, "amount": "19.99", "date_created_gmt": "2026-03-02T00:00:00"}],
        }
    )
    assert [(e.kind, e.amount_cents) for e in refunded.events] == [
        ("order", 1999),
        ("refund", 1999),
    ]
    assert not order_records({**base, "status": "completed", "billing": {"email": ""}}).events
    assert minor_units("9000", "JPY") == 9000 and minor_units("0.005", "EUR") == 1
    assert minor_units("-3.50", "usd") == 350 and minor_units("n/a", "EUR") is None


# --- the commands ---------------------------------------------------------------------------


def test_add_sync_and_list_from_the_command_line(sources_cli, fake, monkeypatch, tmp_path):
    code, _, err = sources_cli(
        "sources", "add", "woocommerce", "--name", "shop", "--key-env", "WOO"
    )
    assert code == 2 and "needs --url https://" in err  # the store's address comes first
    code, _, err = sources_cli(
        "sources", "add", "woocommerce", "--name", "shop", "--url", fake.url, "--key-env", "WOO"
    )
    assert code == 2 and "WOO is not set" in err
    monkeypatch.setenv("WOO", SECRET_PAIR)
    monkeypatch.setenv("BAD", f"{KEY}:cs_wrong")
    code, _, err = sources_cli(
        "sources", "add", "woocommerce", "--name", "shop", "--url", fake.url, "--key-env", "BAD"
    )
    assert code == 2 and "The key was not stored: WooCommerce refused the key" in err
    code, out, err = sources_cli(
        "sources", "add", "woocommerce", "--name", "shop", "--url", fake.url, "--key-env", "WOO"
    )
    assert code == 0, err
    assert "Connected woocommerce source 'shop'" in out
    code, out, err = sources_cli("sync")
    assert code == 0, err
    assert "shop (woocommerce):" in out and "new" in out
    want_customers, want_events = expected_store(fake)
    code, out, _ = sources_cli("sources", "list")
    assert "shop (woocommerce): active, last success 20" in out
    assert f"{len(want_customers)} customers, {len(want_events)} events" in out
    code, out, _ = sources_cli("sync", "shop")
    assert code == 0 and "0 new, 0 changed" in out
    stored = (tmp_path / "cli.db").read_bytes()
    assert KEY.encode() not in stored and SECRET.encode() not in stored
    assert SECRET not in out + err


def test_the_store_holds_only_ciphertext(engine, fake, source_id, cipher):
    with engine.connect() as conn:
        raw = bytes(
            conn.execute(
                text("SELECT credentials FROM source WHERE id = :id"), {"id": source_id}
            ).scalar_one()
        )
    assert SECRET.encode() not in raw and KEY.encode() not in raw
    with Session(engine) as session:
        credential = Credential.of_source(cipher, session.get(Source, source_id))
    assert credential.secret == SECRET_PAIR and credential.settings == {"url": fake.url}
