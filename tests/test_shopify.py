"""The Shopify connector and journey.sync against the fake Shopify over real HTTP (paged
reads), on SQLite and PostgreSQL. Bulk operations: test_shopify_bulk.py.

The sync tests end by comparing the whole store with what the fake shop should
give (tests/fakes/shopify_api.py: expected_store), so a lost, duplicated or stale
record fails them. The fake validates every query against Shopify's real schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from journey.errors import JourneyError
from journey.models import Customer, JourneyEvent, SyncCursor
from journey.secrets import Cipher
from journey.sources import connector_class
from journey.sources.http import (
    NO_WAIT,
    AuthError,
    BadRequest,
    HttpOptions,
    RetryPolicy,
    ScopeError,
)
from journey.sources.manage import Credential, add_source
from journey.sources.shopify import ShopifyConnector, shop_domain
from journey.sources.shopify.bulk import Poller
from journey.sync import sync_source
from tests.conftest import CLI_SECRET_KEY
from tests.fakes.shopify_api import (
    DAY,
    ENDPOINT,
    INVALID_TOKEN,
    START,
    TOKEN,
    FakeShopify,
    expected_store,
    iso,
    parse_time,
    populate,
)
from tests.fakes.shopify_schema import schema_or_skip
from tests.source_store import Killed, assert_store_equals, kill_after, source_row, store

CIPHER_KEY = Cipher.generate_key()
# A read timeout well above a loaded machine's slowest honest answer (the fake validates
# every query against the Admin schema): a timeout there would retry and add a request
# that the tests counting requests do not expect. "slow" faults take longer still.
FAST = HttpOptions(retry=NO_WAIT, timeout=httpx.Timeout(1.5))
PAGES = {"customers": 7, "orders": 9, "abandoned_checkouts": 4}
ROOTS = {"customers": "customers", "orders": "orders", "abandoned_checkouts": "abandonedCheckouts"}


@pytest.fixture
def cipher() -> Cipher:
    return Cipher([CIPHER_KEY])


@pytest.fixture
def fake() -> Iterator[FakeShopify]:
    schema_or_skip()
    # A bucket too large to throttle: pacing has its own test.
    with FakeShopify(maximum=1e9, restore_rate=1e9, slow_seconds=2.0) as f:
        populate(f)
        yield f


@pytest.fixture
def source_id(engine: Engine, fake: FakeShopify, cipher: Cipher) -> int:
    with Session(engine) as session:
        source, _ = add_source(
            session,
            "acme",
            "shopify",
            "shop",
            Credential(TOKEN, {"shop": "example"}, fake.url),
            cipher,
        )
        session.commit()
        return int(source.id or 0)


def connector(fake: FakeShopify, token: str = TOKEN, **kw: Any) -> ShopifyConnector:
    kw.setdefault("http", FAST)
    kw.setdefault("page_sizes", PAGES)
    kw.setdefault("bulk", "never")
    kw.setdefault("poll", Poller(0.0, 0.0))
    return ShopifyConnector(token, {"shop": "example"}, base_url=fake.url, **kw)


def run(engine: Engine, source_id: int, cipher: Cipher, fake: FakeShopify, **kwargs: Any):
    made = connector(fake, clock=kwargs.pop("clock", fake.clock), **kwargs.pop("connector", {}))
    return sync_source(engine, source_id, cipher=cipher, connector=made, **kwargs)


def assert_store_matches(engine: Engine, source_id: int, fake: FakeShopify) -> None:
    assert_store_equals(engine, source_id, expected_store(fake))


def newest(fake: FakeShopify) -> int:
    return max(
        parse_time(o["updatedAt"]) for o in [*fake.orders.values(), *fake.customers.values()]
    )


# --- the whole store ---------------------------------------------------------------------


def test_full_sync_makes_the_store_equal_to_the_shop(engine, fake, source_id, cipher):
    result = run(engine, source_id, cipher, fake)
    assert result.ok and result.error is None, result.error
    assert_store_matches(engine, source_id, fake)
    customers, events = store(engine, source_id)
    kinds = {v[1] for v in events.values()}
    assert kinds == {
        "first_visit",
        "order",
        "refund",
        "cancellation",
        "abandoned_checkout",
        "checkout",
    }
    assert any(k.startswith("guest:") for k in customers)
    channels = {c[3] for c in customers.values()}
    assert {"google", "instagram", "newsletter", "direct"} <= channels
    assert "unknown" not in channels
    for name in ("customers", "orders", "abandoned_checkouts"):
        assert result.pages_by_resource[name] > 2
    # the run of 70 orders updated in one second was stepped through with Shopify's cursor
    assert any(c.variables.get("after") for c in fake.list_calls("orders"))
    # every request was a valid query within Shopify's page size
    assert all(not c.errors for c in fake.calls)
    assert all(c.variables.get("first", 1) <= 250 for c in fake.calls)
    source = source_row(engine, source_id)
    assert source.status == "active" and source.last_sync_at is not None


def test_a_resync_with_nothing_new_reads_one_page_per_resource(engine, fake, source_id, cipher):
    assert run(engine, source_id, cipher, fake).ok
    before = len(fake.calls)
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    roots = [r for c in fake.calls[before:] for r in c.roots]
    # one page per list, and one query for the order still waiting for its attribution
    assert sorted(roots) == ["abandonedCheckouts", "customers", "nodes", "orders"]
    assert result.inserted == 0 and result.updated == 0
    orders = next(c for c in fake.calls[before:] if c.roots == ["orders"])
    newest_order = max(parse_time(o["updatedAt"]) for o in fake.orders.values())
    assert orders.variables["query"] == f"updated_at:>='{iso(newest_order - 300)}'"
    assert_store_matches(engine, source_id, fake)


def test_new_records_and_changes_to_old_ones_arrive_incrementally(engine, fake, source_id, cipher):
    start = newest(fake)
    fake.clock = lambda: start  # the first pass's checkouts watermark
    assert run(engine, source_id, cipher, fake).ok
    later = start + DAY
    fake.clock = lambda: later + 500
    new = fake.add_customer(later, first="New", last="Buyer", email="new@example.com")
    visit = fake.visit(later - DAY, "Facebook", utm_source="FB-Ads")
    fake.add_order(later + 10, "42.00", customer=new, first_visit=visit, order_index=1)
    fake.add_checkout(later + 5, "42.00", customer=new)
    old = next(o for o in fake.orders.values() if o["displayFinancialStatus"] == "PAID")
    fake.refund(old, "3.00", later + 40)  # a partial refund of an old order
    pending = next(o for o in fake.orders.values() if o["displayFinancialStatus"] == "PENDING")
    fake.touch(pending, later + 30, displayFinancialStatus="PAID")  # paid at last
    gone = next(o for o in fake.orders.values() if o["displayFinancialStatus"] == "AUTHORIZED")
    fake.cancel(gone, later + 50)
    renamed = fake.customers[1001]
    fake.touch(renamed, later + 60, firstName="Renamed")
    result = run(engine, source_id, cipher, fake, clock=fake.clock)
    assert result.ok, result.error
    # one page per list; the orders' second is the order still waiting for its journey
    assert result.pages_by_resource == {"customers": 1, "orders": 2, "abandoned_checkouts": 1}
    assert_store_matches(engine, source_id, fake)
    customers, events = store(engine, source_id)
    assert customers[str(int(new["id"].rsplit("/", 1)[1]))][3] == "fb-ads"
    assert events[f"order:{pending['id'].rsplit('/', 1)[1]}"][1] == "order"


# --- failures ----------------------------------------------------------------------------


def test_a_fault_at_every_page_still_gives_the_whole_store(engine, fake, source_id, cipher):
    fake.fail_each_request_once()  # THROTTLED, 429, 500, slow, dropped, truncated JSON
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert {c.fault for c in fake.calls if c.fault} == {
        "throttled",
        "429",
        "500",
        "slow",
        "drop",
        "truncate",
    }
    assert_store_matches(engine, source_id, fake)


@pytest.mark.parametrize("status", [200, 429, 503])
def test_a_throttled_answer_waits_what_shopify_says(fake, status):
    sleeps: list[float] = []
    fake.maximum, fake.restore_rate = 1000.0, 50.0
    fake.fail("throttled")  # requested 1000 points with none available
    fake.fail("throttled")
    # Shopify reports it as 200 or 429, something in between may turn it into a 5xx: the
    # body decides, not the status
    fake.throttled_status = status
    policy = RetryPolicy(sleep=sleeps.append, initial=0.5, jitter=0.0)
    made = connector(fake, http=HttpOptions(retry=policy, timeout=httpx.Timeout(0.5)))
    made.check()
    assert sleeps == [1000 / 50, 1000 / 50]  # (requested - available) / restoreRate
    assert made.bucket.throttled == 2


def test_requests_are_paced_from_the_throttle_status_and_never_refused():
    schema_or_skip()
    # A small bucket that refills fast: without pacing, every other query is THROTTLED.
    with FakeShopify(maximum=400, restore_rate=4000) as fake:
        populate(fake)
        made = connector(fake, sleep=__import__("time").sleep, page_sizes={"orders": 25})
        pages = list(made.fetch(made.resource("orders"), None))
        assert sum(len(p.records) for p in pages) == len(fake.orders)
        assert made.bucket.throttled == 0
        assert made.bucket.waited > 0
        assert all(c.status == 200 for c in fake.calls)


def test_a_query_over_the_cost_limit_is_asked_again_smaller(fake):
    made = connector(fake, page_sizes={"orders": 250})  # 250 orders cost more than 1,000
    pages = list(made.fetch(made.resource("orders"), None))
    assert sum(len(p.records) for p in pages) == len(fake.orders)
    assert made.page_sizes["orders"] < 250


def test_killed_mid_sync_resumes_without_loss_or_duplicates(engine, fake, source_id, cipher):
    with pytest.raises(Killed):
        run(engine, source_id, cipher, fake, progress=kill_after(2))
    with Session(engine) as session:
        cursor = session.get(SyncCursor, (source_id, "customers"))
        assert cursor is not None and json.loads(cursor.cursor)["in_pass"] is True
    customer_pages = -(-len(fake.customers) // PAGES["customers"])
    with pytest.raises(Killed):  # killed again, inside the orders pass
        run(engine, source_id, cipher, fake, progress=kill_after(customer_pages + 2))
    with Session(engine) as session:
        cursor = session.get(SyncCursor, (source_id, "orders"))
        assert cursor is not None and json.loads(cursor.cursor)["in_pass"] is True
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert_store_matches(engine, source_id, fake)
    assert source_row(engine, source_id).last_error is None


def test_a_revoked_token_pauses_the_source_once(engine, fake, source_id, cipher):
    fake.revoked.add(TOKEN)
    result = run(engine, source_id, cipher, fake)
    assert result.paused and not result.ok
    assert "Shopify refused the access token" in (result.error or "")
    assert "journey sources add shopify --name shop" in (result.error or "")
    assert TOKEN not in (result.error or "")
    source = source_row(engine, source_id)
    assert source.status == "paused" and source.last_error == result.error
    calls = len(fake.calls)
    again = run(engine, source_id, cipher, fake)
    assert again.skipped and again.paused and len(fake.calls) == calls
    # a new token resumes it; the sync builds the connector from the stored credential
    fake.tokens["shpat_new"] = fake.tokens[TOKEN]
    with Session(engine) as session:
        add_source(
            session,
            "acme",
            "shopify",
            "shop",
            Credential("shpat_new", {"shop": "example"}, fake.url),
            cipher,
        )
        session.commit()
    result = sync_source(engine, source_id, cipher=cipher, http=FAST)
    assert result.ok, result.error
    assert_store_matches(engine, source_id, fake)


def test_a_missing_scope_is_named_and_pauses_the_source(engine, fake, source_id, cipher):
    fake.tokens[TOKEN] = frozenset({"read_customers"})
    with pytest.raises(ScopeError, match="read_orders") as info:
        connector(fake).check()
    assert info.value.scope == "read_orders"
    result = run(engine, source_id, cipher, fake)
    assert result.paused and "`read_orders` access scope" in (result.error or "")


def test_wrong_tokens_and_shops_get_plain_errors(fake):
    answer = httpx.post(f"{fake.url}{ENDPOINT}", json={"query": "{ shop { name } }"})
    assert answer.status_code == 401 and answer.json() == {"errors": INVALID_TOKEN}
    with pytest.raises(AuthError, match="refused the access token"):
        connector(fake, "shpat_wrong").check()
    wrong_version = connector(fake, api_version="2025-01")
    with pytest.raises(BadRequest, match=r"no Shopify store at example\.myshopify\.com"):
        wrong_version.check()


def test_the_fake_refuses_what_shopify_would(fake):
    made = connector(fake)
    with pytest.raises(BadRequest, match="Cannot query field 'financialStatus' on type 'Order'"):
        made.graphql("{ orders(first: 1) { nodes { financialStatus } } }")


def test_a_shop_and_a_token_are_checked_before_any_request():
    for given in ("my-store", "my-store.myshopify.com", "https://My-Store.myshopify.com/admin/"):
        assert shop_domain(given) == "my-store.myshopify.com"
    for bad in ("", "shop.example.com", "https://shop.example.com", "my store"):
        with pytest.raises(JourneyError, match=r"myshopify\.com"):
            shop_domain(bad)
    with pytest.raises(JourneyError, match="one word"):
        ShopifyConnector("shpat_a b", {"shop": "my-store"})
    with pytest.raises(JourneyError, match="API version"):
        ShopifyConnector(TOKEN, {"shop": "my-store", "api_version": "2026-02"})
    made = ShopifyConnector(TOKEN, {"shop": "my-store"})
    assert made.base_url == "https://my-store.myshopify.com"
    assert made.endpoint == "/admin/api/2026-10/graphql.json"
    assert TOKEN not in repr(made)
    assert connector_class("shopify") is ShopifyConnector


# --- changes while paging ------------------------------------------------------------------


def test_records_changed_between_pages_are_not_lost(engine, fake, source_id, cipher):
    late = newest(fake) + DAY
    changed: list[str] = []
    order_ids = sorted(fake.orders, key=lambda i: (fake.orders[i]["updatedAt"], i))

    def between(f: FakeShopify, root: str, call) -> None:
        if root == "orders" and len(changed) < 3:
            # an order already read is refunded (it jumps to the end), an unread one is
            # cancelled, and a customer is renamed while orders page
            read = f.orders[order_ids[len(changed)]]
            f.refund(read, "1.00", late + len(changed))
            f.cancel(f.orders[order_ids[-1 - len(changed)]], late + 10 + len(changed))
            f.touch(f.customers[sorted(f.customers)[1 + len(changed)]], late, lastName="Changed")
            changed.append(read["id"])

    fake.between_pages = between
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert len(changed) == 3
    fake.between_pages = None
    # the customers renamed after their pass are read by the next sync; orders in this one
    _, events = store(engine, source_id)
    want = expected_store(fake)[1]
    assert events == want
    assert run(engine, source_id, cipher, fake).ok
    assert_store_matches(engine, source_id, fake)


def test_orders_without_read_all_orders_are_the_last_60_days(engine, fake, source_id, cipher):
    # Shopify hides older orders without the scope; the check passes and says what is missed
    fake.tokens[TOKEN] = frozenset({"read_customers", "read_orders"})
    fake.clock = lambda: START + 100 * DAY
    made = connector(fake)
    [note] = made.check()
    assert "read_all_orders" in note and "last 60 days" in note
    assert made.scopes == frozenset({"read_customers", "read_orders"})
    pages = list(made.fetch(made.resource("orders"), None))
    got = sum(len(p.records) for p in pages)
    assert 0 < got < len(fake.orders)
    fake.tokens[TOKEN] = frozenset({"read_customers", "read_orders", "read_all_orders"})
    assert connector(fake).check() == []


def test_customers_keep_the_channel_orders_gave_them(engine, fake, source_id, cipher):
    assert run(engine, source_id, cipher, fake).ok
    customer = fake.customers[1001]
    fake.touch(customer, newest(fake) + DAY, lastName="Again")
    assert run(engine, source_id, cipher, fake).ok
    with Session(engine) as session:
        row = session.exec(
            select(Customer).where(Customer.source_id == source_id, Customer.external_id == "1001")
        ).scalar_one()
    assert row.name.endswith("Again")
    assert_store_matches(engine, source_id, fake)


# --- connecting it ---------------------------------------------------------------------------


def test_add_and_sync_from_the_command_line(sources_cli, fake, monkeypatch, tmp_path):
    add = ("sources", "add", "shopify", "--name", "shop", "--base-url", fake.url)
    code, _, err = sources_cli(*add, "--key-env", "SHOPIFY_TOKEN")
    assert code == 2 and "needs --shop my-store" in err
    code, _, err = sources_cli(*add, "--shop", "shop.example.com", "--key-env", "SHOPIFY_TOKEN")
    assert code == 2 and "myshopify.com name" in err
    monkeypatch.setenv("SHOPIFY_TOKEN", TOKEN)
    monkeypatch.setenv("REVOKED", "shpat_revoked")
    code, _, err = sources_cli(*add, "--shop", "example", "--key-env", "REVOKED")
    assert code == 2 and "The key was not stored: Shopify refused the access token" in err
    code, out, err = sources_cli(
        *add, "--shop", "https://Example.myshopify.com/admin", "--key-env", "SHOPIFY_TOKEN"
    )
    assert code == 0, err
    assert "Connected shopify source 'shop'" in out and "Note:" not in err
    code, out, err = sources_cli("sync")
    assert code == 0, err
    want_customers, want_events = expected_store(fake)
    code, out, _ = sources_cli("sources", "list")
    assert f"{len(want_customers)} customers, {len(want_events)} events" in out
    assert TOKEN.encode() not in (tmp_path / "cli.db").read_bytes()
    assert TOKEN not in out + err

    # A token that sees only 60 days of orders is stored, with a note saying so.
    fake.tokens[TOKEN] = frozenset({"read_customers", "read_orders"})
    code, out, err = sources_cli(*add, "--shop", "example", "--key-env", "SHOPIFY_TOKEN")
    assert code == 0 and "Updated the key" in out
    assert "Note: This token lacks the read_all_orders scope" in err


def test_the_slack_form_asks_for_the_shop_and_checks_it():
    from bot.blocks.connect import (
        A_KIND,
        A_NAME,
        A_SECRET,
        A_SETTING,
        B_KIND,
        B_NAME,
        B_SECRET,
        connect_modal,
        read_submission,
        setting_block,
    )

    modal = connect_modal("C1")
    blocks = {b.get("block_id"): b for b in modal["blocks"]}
    assert blocks[setting_block("shop")]["label"]["text"] == "Shop (Shopify)"

    def view(shop: str) -> dict[str, Any]:
        values = {
            B_KIND: {A_KIND: {"type": "static_select", "selected_option": {"value": "shopify"}}},
            B_NAME: {A_NAME: {"type": "plain_text_input", "value": "shop"}},
            B_SECRET: {A_SECRET: {"type": "plain_text_input", "value": TOKEN}},
            setting_block("shop"): {A_SETTING: {"type": "plain_text_input", "value": shop}},
        }
        return {"state": {"values": values}}

    good = read_submission(view("https://my-store.myshopify.com/"))
    assert not good.errors and good.credential is not None
    assert dict(good.credential.settings) == {"shop": "my-store.myshopify.com"}
    bad = read_submission(view("shop.example.com"))
    assert set(bad.errors) == {setting_block("shop")}
    assert "shop.example.com" not in bad.errors[setting_block("shop")]
    missing = read_submission(view(""))
    assert "Shopify needs this" in missing.errors[setting_block("shop")]


def test_an_incremental_pass_starts_small_and_grows_while_pages_are_full(fake):
    # Shopify reserves `first` x a node's cost before a query runs: a re-sync that finds two
    # changed orders must not pay for fifty.
    made = connector(fake, page_sizes={"orders": 50})
    pages = list(made.fetch(made.resource("orders"), None))
    assert fake.list_calls("orders")[0].variables["first"] == 50  # a first sync: full pages
    later = newest(fake) + DAY
    for order in list(fake.orders.values())[:45]:
        fake.touch(order, later)
    before = len(fake.calls)
    again = list(made.fetch(made.resource("orders"), pages[-1].cursor))
    sizes = [c.variables["first"] for c in fake.calls[before:] if c.roots == ["orders"]]
    assert sizes[:3] == [10, 40, 50]
    assert {r["id"] for p in again for r in p.records} >= {
        o["id"] for o in list(fake.orders.values())[:45]
    }


def test_connecting_from_slack_warns_when_only_60_days_are_visible(fake, tmp_path, monkeypatch):
    from bot.listeners.views.connect import connect_source
    from journey.db import make_engine, upgrade

    monkeypatch.setenv("JOURNEY_SECRET_KEY", CLI_SECRET_KEY)
    engine = make_engine(f"sqlite:///{tmp_path / 'slack.db'}")
    upgrade(engine)
    fake.tokens[TOKEN] = frozenset({"read_customers", "read_orders"})
    credential = Credential(TOKEN, {"shop": "example"})
    ok, text = connect_source(engine, "T1", "shopify", "shop", credential, fake.url, FAST)
    assert ok and "Connected Shopify source *shop*" in text
    assert ":warning: This token lacks the read_all_orders scope" in text and TOKEN not in text
    engine.dispose()


def test_an_order_attributed_after_it_was_read_gets_its_visit_later(
    engine, fake, source_id, cipher
):
    """Shopify can finish a journey after the order was read, without a new updatedAt: the
    order is asked for again by id until its journey is ready."""
    [pending] = [
        o
        for o in fake.orders.values()
        if o["customerJourneySummary"] and not o["customerJourneySummary"]["ready"]
    ]
    assert run(engine, source_id, cipher, fake).ok
    oid = pending["id"].rsplit("/", 1)[1]
    _, events = store(engine, source_id)
    assert f"visit:{oid}" not in events
    assert run(engine, source_id, cipher, fake).ok  # still not ready: asked again, nothing new
    visit = fake.visit(parse_time(pending["createdAt"]) - 3600, "google", utm_source="newsletter")
    fake.attribute(pending, visit)
    before = len(fake.calls)
    assert run(engine, source_id, cipher, fake).ok
    asked = [c for c in fake.calls[before:] if c.operation == "JourneyLateAttribution"]
    assert len(asked) == 1 and asked[0].variables["ids"] == [pending["id"]]
    _, events = store(engine, source_id)
    assert events[f"visit:{oid}"][1] == "first_visit"
    assert_store_matches(engine, source_id, fake)
    before = len(fake.calls)
    assert run(engine, source_id, cipher, fake).ok  # attributed: never asked again
    assert not [c for c in fake.calls[before:] if c.operation == "JourneyLateAttribution"]


def test_an_order_waiting_for_its_journey_survives_a_kill_after_the_orders_pass(
    engine, fake, source_id, cipher
):
    """The ids of orders whose journey is not ready are committed with the orders cursor, so
    a sync killed later (here at the first page of abandoned checkouts) does not forget
    them: the next sync still asks for them and adds the visit once Shopify has it."""
    [pending] = [
        o
        for o in fake.orders.values()
        if o["customerJourneySummary"] and not o["customerJourneySummary"]["ready"]
    ]

    def kill_in_checkouts(resource: str, pages: int, records: int) -> None:
        if resource == "abandoned_checkouts":
            raise Killed

    with pytest.raises(Killed):
        run(engine, source_id, cipher, fake, progress=kill_in_checkouts)
    visit = fake.visit(parse_time(pending["createdAt"]) - 3600, "google", utm_source="newsletter")
    fake.attribute(pending, visit)
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    _, events = store(engine, source_id)
    assert events[f"visit:{pending['id'].rsplit('/', 1)[1]}"][1] == "first_visit"
    assert_store_matches(engine, source_id, fake)


def test_ids_an_older_version_left_in_the_late_attribution_cursor_are_still_asked(
    engine, fake, source_id, cipher
):
    [pending] = [
        o
        for o in fake.orders.values()
        if o["customerJourneySummary"] and not o["customerJourneySummary"]["ready"]
    ]
    assert run(engine, source_id, cipher, fake).ok
    with Session(engine) as session:  # where the version before kept them
        orders = session.get(SyncCursor, (source_id, "orders"))
        state = json.loads(orders.cursor)
        waiting = state.pop("pending")
        assert list(waiting) == [pending["id"]]
        orders.cursor = json.dumps(state)
        session.add(orders)
        session.add(
            SyncCursor(
                source_id=source_id,
                resource="late_attribution",
                workspace_id="acme",
                cursor=json.dumps({"pending": waiting}),
                updated_at=datetime.now(UTC),
            )
        )
        session.commit()
    fake.attribute(pending, fake.visit(parse_time(pending["createdAt"]) - 60, "google"))
    assert run(engine, source_id, cipher, fake).ok
    assert_store_matches(engine, source_id, fake)
    with Session(engine) as session:
        legacy = session.get(SyncCursor, (source_id, "late_attribution"))
        assert json.loads(legacy.cursor) == {"pending": {}}
    before = len(fake.calls)
    assert run(engine, source_id, cipher, fake).ok  # nothing left anywhere: never asked again
    assert not [c for c in fake.calls[before:] if c.operation == "JourneyLateAttribution"]


def test_records_that_stop_implying_events_take_them_away(engine, fake, source_id, cipher):
    """Every order and checkout read says which events it implies now (its family), so a
    re-read one replaces what it implied before: the store stays equal to the shop."""
    guest_visit = fake.visit(START + 49 * DAY, "google")
    guest = fake.add_order(
        START + 50 * DAY,
        "20.00",
        customer=None,
        email="only@example.com",
        first_visit=guest_visit,
        order_index=1,
    )
    later = newest(fake) + DAY
    fake.clock = lambda: later - DAY  # the checkouts' watermark is the shop's clock
    assert run(engine, source_id, cipher, fake, clock=fake.clock).ok
    assert_store_matches(engine, source_id, fake)
    _, events = store(engine, source_id)
    fake.clock = lambda: later + 500
    paid = [o for o in fake.orders.values() if o["displayFinancialStatus"] == "PAID"]
    voided, refunded, tested, orphaned = paid[0], paid[1], paid[2], paid[3]
    fake.touch(voided, later, displayFinancialStatus="VOIDED")  # paid, then voided
    fake.refund(refunded, "1.00", later)
    assert run(engine, source_id, cipher, fake, clock=fake.clock).ok
    assert_store_matches(engine, source_id, fake)
    refunded["refunds"].pop()  # a refund gone
    fake.touch(refunded, later + 1, displayFinancialStatus="PAID")
    fake.touch(tested, later + 2, test=True)  # marked as a test: nothing of it counts
    fake.cancel(orphaned, later + 3)
    assert run(engine, source_id, cipher, fake, clock=fake.clock).ok
    assert_store_matches(engine, source_id, fake)
    fake.touch(orphaned, later + 4, customer=None, email=None)  # its buyer erased
    fake.touch(guest, later + 5, displayFinancialStatus="VOIDED", customerJourneySummary=None)
    fake.clock = lambda: later + 1000
    checkout = next(x for x in fake.checkouts.values() if x["customer"])
    checkout.update(customer=None, updatedAt=iso(later + 900))  # it lost its customer
    assert run(engine, source_id, cipher, fake, clock=fake.clock).ok
    assert_store_matches(engine, source_id, fake)
    customers, after = store(engine, source_id)
    assert "guest:only@example.com" not in customers  # nothing left of the guest
    oid = voided["id"].rsplit("/", 1)[1]
    assert f"order:{oid}" in events and f"order:{oid}" not in after
    assert f"checkout:{checkout['id'].rsplit('/', 1)[1]}" not in after


def test_refunds_stored_under_their_old_ids_are_replaced(engine, fake, source_id, cipher):
    """Refunds were `refund:<id>` before they joined their order's family
    (`order:<order>:refund:<id>`): reading the order again replaces the old ids."""
    assert run(engine, source_id, cipher, fake).ok
    order = next(o for o in fake.orders.values() if o["refunds"] and not o["test"])
    oid, rid = order["id"].rsplit("/", 1)[1], order["refunds"][0]["id"].rsplit("/", 1)[1]
    with Session(engine) as session:  # as the version before stored it
        event = session.exec(
            select(JourneyEvent).where(
                JourneyEvent.source_id == source_id,
                JourneyEvent.external_id == f"order:{oid}:refund:{rid}",
            )
        ).scalar_one()
        event.external_id = f"refund:{rid}"
        session.add(event)
        session.commit()
    fake.touch(order, newest(fake) + DAY)
    assert run(engine, source_id, cipher, fake).ok
    _, events = store(engine, source_id)
    assert f"refund:{rid}" not in events and f"order:{oid}:refund:{rid}" in events
    assert_store_matches(engine, source_id, fake)
