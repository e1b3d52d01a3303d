"""The HubSpot connector and journey.sync against the fake HubSpot over real HTTP,
on SQLite and PostgreSQL. Sync tests end by comparing the whole store with what the
fake account should give (tests/fakes/hubspot_api.py: expected_store)."""

from __future__ import annotations

import itertools
import json
import logging
import statistics
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, text
from sqlmodel import Session

from journey.models import Customer, CustomerJourney, Source, SyncCursor, Workspace
from journey.secrets import Cipher
from journey.sources.base import Resource, Watermark
from journey.sources.http import NO_WAIT, HttpOptions, RateLimited, RetryPolicy, ScopeError
from journey.sources.hubspot import (
    SEARCH_INTERVAL,
    HubSpotConnector,
    RateWindow,
    contact_records,
    deal_records,
    interpret,
)
from journey.sources.manage import Credential, add_source
from journey.stages import DEFAULT_STAGES
from journey.state import refresh_journeys
from journey.sync import sync_source
from tests.fakes.hubspot_api import (
    ALL_FAULTS,
    ALL_SCOPES,
    DAY_MS,
    DEFAULT_TOKEN,
    RELAXED,
    START_MS,
    Call,
    FakeHubSpot,
    Limits,
    expected_store,
    populate,
)
from tests.source_store import Killed, assert_store_equals, kill_after, source_row, store

KEY = Cipher.generate_key()
FAST = HttpOptions(retry=NO_WAIT, timeout=httpx.Timeout(0.25))
PAGE = 7


@pytest.fixture
def cipher() -> Cipher:
    return Cipher([KEY])


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    # HubSpot's 10,000 results cap, small enough to reach here; rate limits: see "pacing"
    with FakeHubSpot(search_cap=25, limits=RELAXED) as f:
        populate(f)
        yield f


@pytest.fixture
def source_id(engine: Engine, fake: FakeHubSpot, cipher: Cipher) -> int:
    with Session(engine) as session:
        source, _ = add_source(
            session, "acme", "hubspot", "crm", Credential(DEFAULT_TOKEN, base_url=fake.url), cipher
        )
        session.commit()
        return int(source.id or 0)


def connector(fake: FakeHubSpot, token: str = DEFAULT_TOKEN, **kw: Any) -> HubSpotConnector:
    kw.setdefault("http", FAST)
    kw.setdefault("page_size", PAGE)
    kw.setdefault("search_interval", 0.0)
    return HubSpotConnector(token, base_url=fake.url, **kw)


def run(engine: Engine, source_id: int, cipher: Cipher, fake: FakeHubSpot, **kw: Any):
    progress = kw.pop("progress", None)
    return sync_source(
        engine, source_id, cipher=cipher, connector=connector(fake, **kw), progress=progress
    )


def assert_store_matches(engine: Engine, source_id: int, fake: FakeHubSpot) -> None:
    assert_store_equals(engine, source_id, expected_store(fake))


def reached(engine: Engine, contact: str) -> list[bool]:
    """Which of the workspace's stages the contact's journey reached."""
    with Session(engine) as session:
        cid = session.execute(
            select(Customer.id).where(Customer.external_id == contact)
        ).scalar_one()
        row = session.get(CustomerJourney, ("acme", cid))
        assert row is not None
        return [getattr(row, f"reached_{i}") is not None for i in range(6)]


# --- the whole account ---------------------------------------------------------------------


def test_full_sync_makes_the_store_equal_to_the_account(engine, fake, source_id, cipher):
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert_store_matches(engine, source_id, fake)
    assert result.pages_by_resource["contacts"] > 40 // PAGE
    # more contacts than one search may return: no request ever paged with `after`
    assert len(fake.all("contacts")) > fake.search_cap
    assert not [c for c in fake.calls if c.status == 400]
    assert all("after" not in (c.body or {}) for c in fake.searches("contacts"))
    source = source_row(engine, source_id)
    assert source.status == "active" and source.last_error is None and source.last_sync_at


def test_lifecycle_stages_reach_the_default_journey_stages(engine, fake, source_id, cipher):
    t = START_MS + 300 * DAY_MS
    lead = fake.add_contact(t, email="lead@example.com", stages={"lead": t})
    sql = fake.add_contact(t, stages={"subscriber": t, "salesqualifiedlead": t + DAY_MS})
    won = fake.add_contact(t, stages={"opportunity": t, "customer": t + DAY_MS})
    fan = fake.add_contact(t, stages={"evangelist": t + 5 * DAY_MS})
    other = fake.add_contact(t, stages={"other": t})
    assert run(engine, source_id, cipher, fake).ok
    # awareness, consideration, decision, purchase, retention, advocacy
    assert reached(engine, lead["id"]) == [True, False, False, False, False, False]
    assert reached(engine, sql["id"]) == [True, True, False, False, False, False]
    assert reached(engine, won["id"]) == [True, True, True, True, False, False]
    assert reached(engine, fan["id"]) == [True, True, True, True, True, True]
    # every customer is aware from first seen on; `other` adds nothing
    assert reached(engine, other["id"]) == [True, False, False, False, False, False]


def test_custom_lifecycle_stages_reach_a_default_stage_the_workspace_can_change(
    engine, fake, source_id, cipher
):
    fake.add_stage("1234567", "Onboarding", after="customer")  # by its place: purchase
    fake.add_stage("7654321", "MQL", after="lead")  # by its label: consideration
    fake.add_stage("5555555", "Churned")  # by its label: no stage
    t = START_MS + 300 * DAY_MS
    onboarding = fake.add_contact(t, email="new@example.com", stages={"1234567": t + DAY_MS})
    mql = fake.add_contact(t, stages={"7654321": t})
    churned = fake.add_contact(t, stages={"5555555": t})
    assert run(engine, source_id, cipher, fake).ok
    assert_store_matches(engine, source_id, fake)
    _, events = store(engine, source_id)
    assert events[f"lifecycle:{onboarding['id']}:1234567"][1] == "hubspot_stage:1234567"
    # awareness, consideration, decision, purchase, retention, advocacy
    assert reached(engine, onboarding["id"]) == [True, True, True, True, False, False]
    assert reached(engine, mql["id"]) == [True, True, False, False, False, False]
    assert reached(engine, churned["id"]) == [True, False, False, False, False, False]
    with Session(engine) as session:  # what `journey stages set ... --map` stores
        workspace = session.get(Workspace, "acme")
        workspace.stage_map = {"hubspot_stage:1234567": "decision"}
        session.add(workspace)
        session.flush()
        refresh_journeys(session, "acme")
        session.commit()
    assert reached(engine, onboarding["id"]) == [True, True, True, False, False, False]


def test_a_changed_stage_list_moves_contacts_synced_before(engine, fake, source_id, cipher):
    fake.add_stage("1234567", "Onboarding", after="customer")  # by its place: purchase
    t = START_MS + 300 * DAY_MS
    contact = fake.add_contact(t, stages={"1234567": t + DAY_MS})
    assert run(engine, source_id, cipher, fake).ok
    assert reached(engine, contact["id"]) == [True, True, True, True, False, False]
    # the account moves the stage before Opportunity; the contact itself does not change,
    # so it is not read again: only the new list can move it
    with fake.lock:
        fake.stages.remove(("1234567", "Onboarding"))
    fake.add_stage("1234567", "Onboarding", after="salesqualifiedlead")  # now: consideration
    assert run(engine, source_id, cipher, fake).ok
    assert reached(engine, contact["id"]) == [True, True, False, False, False, False]


def test_stages_show_lists_the_accounts_stages_and_where_they_lead(sources_cli, fake, monkeypatch):
    fake.add_stage("1234567", "Onboarding", after="customer")
    monkeypatch.setenv("HUBSPOT_TOKEN", DEFAULT_TOKEN)
    code, _, err = sources_cli("sources", "add", "hubspot", "--name", "crm", "--key-env",
                               "HUBSPOT_TOKEN", "--base-url", fake.url)  # fmt: skip
    assert code == 0, err
    assert sources_cli("sync", "crm")[0] == 0
    code, out, err = sources_cli("stages", "show")
    assert code == 0, err
    purchase = next(line for line in out.splitlines() if line.startswith("4. purchase:"))
    assert "hubspot_stage:1234567" in purchase  # a kind of the stage it reaches by default
    assert "HubSpot lifecycle stages of 'crm'" in out
    assert "  Lead (hubspot_stage:lead): awareness (default: HubSpot's meaning)" in out
    assert "  Onboarding (hubspot_stage:1234567): purchase (default: follows Customer)" in out
    assert "  Other (hubspot_stage:other): no stage (default: HubSpot's meaning)" in out
    code, _, err = sources_cli("stages", "set", ",".join(DEFAULT_STAGES), "--map",
                               "hubspot_stage:1234567=decision")  # fmt: skip
    assert code == 0, err
    out = sources_cli("stages", "show")[1]
    assert "  Onboarding (hubspot_stage:1234567): decision (mapped here)" in out


def test_a_resync_with_nothing_new_reads_one_page_per_object(engine, fake, source_id, cipher):
    assert run(engine, source_id, cipher, fake).ok
    before = len(fake.calls)
    result = run(engine, source_id, cipher, fake)
    assert result.ok and result.inserted == 0 and result.updated == 0
    paths = [c.path for c in fake.calls[before:]]
    assert paths.count("/crm/v3/objects/contacts/search") == 1
    assert paths.count("/crm/v3/objects/deals/search") == 1
    assert paths.count("/crm/v3/properties/contacts/lifecyclestage") == 1
    # each search starts 10 minutes below the last modification read
    newest = max(int(c["updatedAt"] and _ms(c["updatedAt"])) for c in fake.all("contacts"))
    contacts = fake.searches("contacts")[-1].body["filterGroups"][0]["filters"]
    gte = next(f for f in contacts if f["operator"] == "GTE")
    assert int(gte["value"]) == newest - 600_000
    assert_store_matches(engine, source_id, fake)


def _ms(value: str) -> int:
    from tests.fakes.hubspot_api import parse_ms

    return int(parse_ms(value) or 0)


def test_new_records_and_changes_arrive_incrementally(engine, fake, source_id, cipher):
    assert run(engine, source_id, cipher, fake).ok
    contacts = sorted(fake.all("contacts"), key=lambda c: int(c["id"]))
    old = contacts[0]["id"]
    fake.enter_stage(old, "evangelist")
    fake.update_contact(contacts[1]["id"], email="moved@example.com", firstname="Renamed")
    new = fake.add_contact(fake.now_ms(), email="new@example.com", stages={"lead": fake.now_ms()})
    fake.add_deal("42.00", "closedwon", contacts=[new["id"], old], created=fake.now_ms(),
                  closed=fake.now_ms())  # fmt: skip
    open_deal = next(
        d for d in fake.all("deals") if d["properties"]["dealstage"] == "qualifiedtobuy"
    )
    fake.move_deal(open_deal["id"], "closedwon", closed=fake.now_ms())
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert_store_matches(engine, source_id, fake)
    _, events = store(engine, source_id)
    assert events[f"lifecycle:{old}:evangelist"][1] == "hubspot_stage:evangelist"
    assert any(k.startswith(f"deal:{open_deal['id']}:") for k in events)


def test_what_the_crm_takes_back_leaves_the_store(engine, fake, source_id, cipher):
    """Deals moved out of closed won or archived, contacts archived or merged, a lifecycle
    date cleared: after the next sync the store equals the account again."""
    assert run(engine, source_id, cipher, fake).ok
    _, before = store(engine, source_id)
    won = [
        d
        for d in fake.all("deals")
        if d["properties"]["dealstage"] == "closedwon" and fake.associations[d["id"]]
    ]
    lost, archived_deal = won[0], won[1]
    fake.move_deal(lost["id"], "closedlost")
    fake.archive("deals", archived_deal["id"])
    on_deals = {c for d in fake.all("deals") for c in fake.associations[d["id"]]}
    alone = [c["id"] for c in fake.all("contacts") if c["id"] not in on_deals]
    staged = [c for c in alone if any(k.startswith(f"lifecycle:{c}:") for k in before)]
    archived, merged, primary, cleared = staged[0], staged[1], staged[2], staged[3]
    fake.archive("contacts", archived)
    fake.merge_contacts(primary, merged)
    stage = next(k.split(":")[2] for k in before if k.startswith(f"lifecycle:{cleared}:"))
    fake.update_contact(cleared, **{fake.stage_date_property(stage): None})

    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert_store_matches(engine, source_id, fake)
    customers, events = store(engine, source_id)
    for deal in (lost, archived_deal):
        assert not any(k.startswith(f"deal:{deal['id']}:") for k in events)
    assert archived not in customers and merged not in customers
    assert f"lifecycle:{cleared}:{stage}" not in events
    assert result.deleted > 3
    again = run(engine, source_id, cipher, fake)
    assert again.ok and again.deleted == 0 and again.inserted == 0


def test_deals_count_their_money_once_across_contacts():
    deal = {"id": "9", "properties": {"amount": "100.01", "closedate": "2026-03-01T10:00:00Z",
            "dealstage": "closedwon"}, "_contacts": ["5", "7", "8"]}  # fmt: skip
    events = deal_records(deal).events
    assert [e.amount_cents for e in events] == [3334, 3334, 3333]
    assert {e.kind for e in events} == {"order"}
    assert [e.external_id for e in events] == ["deal:9:5", "deal:9:7", "deal:9:8"]
    assert not deal_records({**deal, "_contacts": []}).events
    assert (
        deal_records({**deal, "properties": {**deal["properties"], "amount": None}})
        .events[0]
        .amount_cents
        is None
    )
    contact = {"id": "5", "properties": {"firstname": "Ada", "lastname": None,
               "createdate": "1767225600000", "hs_analytics_source": "PAID_SOCIAL",
               "hs_lifecyclestage_lead_date": "2026-01-02T00:00:00.000Z",
               "hs_v2_date_entered_555": "2026-01-03T00:00:00Z"}}  # fmt: skip
    records = contact_records(contact, ("lead", "customer", "555"))
    (customer,) = records.customers
    assert (customer.name, customer.channel) == ("Ada", "paid_social")
    assert [e.kind for e in records.events] == ["hubspot_stage:lead", "hubspot_stage:555"]


# --- failures ------------------------------------------------------------------------------


def test_a_fault_at_every_request_still_gives_the_whole_account(engine, fake, source_id, cipher):
    fake.fail_each_request_once()
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert {c.fault for c in fake.calls if c.fault} == set(ALL_FAULTS)
    assert_store_matches(engine, source_id, fake)


def test_both_429_shapes_are_retried_after_hubspots_pause(fake):
    sleeps: list[float] = []
    options = HttpOptions(retry=RetryPolicy(sleep=sleeps.append), timeout=httpx.Timeout(0.25))
    for kind in ("429-secondly", "429-ten", "429-plain"):
        fake.fail(kind)
    c = connector(fake, http=options)
    c.check()
    assert sleeps == [1.0, 10.0, 1.0]


def test_the_daily_limit_stops_the_sync_and_says_so(engine, fake, source_id, cipher):
    fake.fail("429-daily", path="/crm/v3/objects/deals/search")
    calls = len(fake.calls)
    result = run(engine, source_id, cipher, fake)
    assert not result.ok and not result.paused
    assert "HubSpot's daily API limit for this account is used up" in (result.error or "")
    assert len([c for c in fake.calls[calls:] if c.status == 429]) == 1  # not retried
    assert source_row(engine, source_id).status == "active"
    assert run(engine, source_id, cipher, fake).ok
    assert source_row(engine, source_id).last_error is None
    assert_store_matches(engine, source_id, fake)


def test_a_revoked_token_pauses_the_source_once(engine, fake, source_id, cipher):
    fake.revoked.add(DEFAULT_TOKEN)
    result = run(engine, source_id, cipher, fake)
    assert result.paused and not result.ok
    assert "HubSpot refused the access token" in (result.error or "")
    assert "journey sources add hubspot --name crm" in (result.error or "")
    assert DEFAULT_TOKEN not in (result.error or "")
    assert source_row(engine, source_id).status == "paused"
    calls = len(fake.calls)
    again = run(engine, source_id, cipher, fake)
    assert again.skipped and len(fake.calls) == calls
    new = "pat-na1-99999999-2222-3333-4444-555555555555"
    fake.tokens[new] = ALL_SCOPES
    with Session(engine) as session:
        add_source(session, "acme", "hubspot", "crm", Credential(new, base_url=fake.url), cipher)
        session.commit()
    result = sync_source(engine, source_id, cipher=cipher, http=FAST)  # built from the store
    assert result.ok, result.error
    assert_store_matches(engine, source_id, fake)


def test_a_missing_scope_is_named_and_pauses_the_source(engine, fake, source_id, cipher):
    limited = "pat-na1-00000000-2222-3333-4444-555555555555"
    fake.tokens[limited] = ALL_SCOPES - {"crm.objects.deals.read"}
    with pytest.raises(ScopeError) as info:
        connector(fake, limited).check()
    assert info.value.scope == "crm.objects.deals.read"
    result = run(engine, source_id, cipher, fake, token=limited)
    assert result.paused
    assert "lacks the scope crm.objects.deals.read" in (result.error or "")


def test_killed_mid_sync_resumes_without_loss_or_duplicates(engine, fake, source_id, cipher):
    with pytest.raises(Killed):
        run(engine, source_id, cipher, fake, progress=kill_after(3))
    with Session(engine) as session:
        row = session.get(SyncCursor, (source_id, "contacts"))
        assert row is not None and Watermark.load(row.cursor).in_pass
    with pytest.raises(Killed):
        run(engine, source_id, cipher, fake, progress=kill_after(7))
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert_store_matches(engine, source_id, fake)
    # the resumed runs went on where the killed ones stopped: each first-pass page once
    first_pass = fake.searches("contacts")
    assert len(first_pass) <= -(-len(fake.all("contacts")) // PAGE) + 2


def test_records_changed_between_pages_are_not_lost(engine, fake, source_id, cipher):
    done: list[str] = []

    def between(f: FakeHubSpot, kind: str, call) -> None:
        if kind == "contacts" and not done:
            # the oldest contact (on the page just read) changes and jumps to the end
            oldest = min(f.all("contacts"), key=lambda c: _ms(c["updatedAt"]))
            f.update_contact(oldest["id"], firstname="Changed")
            done.append(oldest["id"])

    fake.between_pages = between
    result = run(engine, source_id, cipher, fake)
    assert result.ok and done
    want_customers, want_events = expected_store(fake)
    got_customers, got_events = store(engine, source_id)
    assert set(got_customers) == set(want_customers)  # nobody skipped
    assert {k: v for k, v in got_customers.items() if k != done[0]} == {
        k: v for k, v in want_customers.items() if k != done[0]
    }
    assert got_events == want_events
    assert run(engine, source_id, cipher, fake).ok  # the change itself: next sync
    assert_store_matches(engine, source_id, fake)


def test_more_records_at_one_millisecond_than_the_cap_are_all_read(engine, fake, source_id, cipher):
    at = START_MS + 310 * DAY_MS
    for n in range(fake.search_cap + 15):  # a bulk import: one modification time
        fake.add_contact(at - DAY_MS, email=f"bulk{n}@example.com", modified=at)
    result = run(engine, source_id, cipher, fake)
    assert result.ok, result.error
    assert not [c for c in fake.calls if c.status == 400]
    assert_store_matches(engine, source_id, fake)


def test_the_fake_refuses_to_page_past_the_cap(fake):
    r = httpx.post(
        f"{fake.url}/crm/v3/objects/contacts/search",
        json={"limit": 10, "after": str(fake.search_cap)},
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
    )
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
    r = httpx.post(f"{fake.url}/crm/v3/objects/contacts/search", json={"limit": 10})
    assert r.status_code == 401 and r.json()["category"] == "INVALID_AUTHENTICATION"


def test_interpret_reads_hubspots_error_bodies():
    def answer(status: int, body: dict, **headers: str) -> Exception | None:
        return interpret(httpx.Response(status, json=body, headers=headers))

    daily = answer(429, {"errorType": "RATE_LIMIT", "policyName": "DAILY", "message": "x"})
    assert isinstance(daily, RateLimited) and "daily API limit" in str(daily)
    plain_daily = answer(
        429, {"category": "RATE_LIMITS", "message": "You have reached your daily limit."}
    )
    assert isinstance(plain_daily, RateLimited)
    assert answer(200, {}) is None and answer(503, {}) is None


# --- pacing: HubSpot's window and search limit, kept ahead of time ---------------------------


class FakeTime:
    """A monotonic timer and a sleep that only moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 4))
        self.now += seconds


def rate_headers(maximum: int, remaining: int, interval_ms: int) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Max": str(maximum),
        "X-HubSpot-RateLimit-Remaining": str(remaining),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(interval_ms),
    }


def resource(c: HubSpotConnector, name: str) -> Resource:
    return next(r for r in c.resources if r.name == name)


def read_everything(c: HubSpotConnector) -> int:
    """Every page of every resource, as a sync reads them (without a store)."""
    pages = 0
    for resource in c.resources:
        for page in c.fetch(resource, None):
            c.to_records(resource, page.records)
            pages += 1
    return pages


def share_of_limit(calls: list[Call], limit: int, interval: float) -> float:
    """Requests sent in the whole windows the read spanned, as a share of what the
    limit allows in them (a rolling window admits at most `limit` in any interval)."""
    start = calls[0].at
    windows = int((calls[-1].at - start) // interval)
    assert windows >= 2, "too short a read to measure"
    sent = sum(1 for c in calls if c.at < start + windows * interval)
    return sent / (windows * limit)


def test_the_fake_enforces_hubspots_limits_with_its_429_bodies_and_headers():
    limits = Limits(window=5, window_ms=60_000, search=2, search_ms=60_000)
    auth = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    with FakeHubSpot(limits=limits) as fake, httpx.Client(base_url=fake.url, headers=auth) as http:
        searches = [http.post("/crm/v3/objects/contacts/search", json={}) for _ in range(3)]
        assert [r.status_code for r in searches] == [200, 200, 429]
        assert not [
            h for r in searches for h in r.headers if h.lower().startswith("x-hubspot-ratelimit")
        ]
        assert searches[2].json()["policyName"] == "SECONDLY"
        assert searches[2].json()["errorType"] == "RATE_LIMIT"
        # the two searches count in the app's window too (the stricter reading)
        reads = [http.get("/crm/v3/objects/contacts", params={"limit": 1}) for _ in range(4)]
        assert [r.status_code for r in reads] == [200, 200, 200, 429]
        assert [r.headers["X-HubSpot-RateLimit-Remaining"] for r in reads] == ["2", "1", "0", "0"]
        refused = reads[3]
        assert refused.headers["X-HubSpot-RateLimit-Max"] == "5"
        assert refused.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "60000"
        assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        assert refused.json()["message"] == "You have reached your ten_secondly_rolling limit."


def test_the_window_takes_hubspots_limit_from_the_headers_and_waits_before_it_is_spent():
    t = FakeTime()
    window = RateWindow(timer=t, sleep=t.sleep)
    window.observe(rate_headers(20, 20, 1000))  # an account whose window is 20 per second
    assert (window.limit, window.interval, window.reserve) == (20, 1.0, 1)
    for n in range(19):
        window.acquire()
        window.observe(rate_headers(20, 19 - n, 1000))
    assert t.sleeps == []
    window.acquire()  # the 20th waits for the first to leave the window (plus 1 %)
    assert t.sleeps == [1.01]
    # a steady stream then runs at 19 per 1.01 s: 94 % of the limit
    for _ in range(19 * 9):
        window.acquire()
    assert (19 * 10) / t.now == pytest.approx(19 / 1.01, rel=0.01)


def test_the_window_counts_the_requests_of_the_apps_other_clients():
    t = FakeTime()
    window = RateWindow(timer=t, sleep=t.sleep)
    window.acquire()
    t.now = 0.2
    # someone else has used the window: HubSpot says 3 left, our own log says 99
    window.observe(rate_headers(100, 3, 10_000))
    assert window.reserve == 4
    # no room by HubSpot's count: wait for our one request to leave the window, then
    # for the others counted in that answer (their times unknown: the answer's window)
    window.acquire()
    assert t.sleeps == [9.9, 0.2]
    t.sleeps.clear()
    t.now = 30.0  # an answer older than the window says nothing any more
    window.acquire()
    assert t.sleeps == []


class SlowTransport(httpx.HTTPTransport):
    """Each request takes `seconds` on a fake timer."""

    def __init__(self, t: FakeTime, seconds: float) -> None:
        super().__init__()
        self.t, self.seconds = t, seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.t.now += self.seconds
        return super().handle_request(request)


def test_searches_start_at_fixed_intervals_whatever_they_take(fake):
    t = FakeTime()
    http = HttpOptions(retry=NO_WAIT, transport=SlowTransport(t, 0.15))  # 150 ms a request
    c = connector(fake, http=http, search_interval=SEARCH_INTERVAL, timer=t, sleep=t.sleep)
    pages = sum(1 for _ in c.fetch(resource(c, "contacts"), None))
    assert pages > 3
    # start to start: only what is left of the interval after each search is waited
    assert t.sleeps == [round(SEARCH_INTERVAL - 0.15, 4)] * (pages - 1)
    assert 1 / SEARCH_INTERVAL >= 0.9 * 5


def test_searches_keep_90_percent_of_the_search_limit_without_a_429():
    with FakeHubSpot(limits=Limits()) as fake:  # 5 searches a second, HubSpot's limit
        populate(fake, contacts=12)
        c = connector(fake, page_size=2, search_interval=SEARCH_INTERVAL)
        list(c.fetch(resource(c, "contacts"), None))
        searches = [x for x in fake.calls if x.path.endswith("/search")]
        assert len(searches) >= 10
        assert not [x for x in fake.calls if x.status == 429]
        # the typical start-to-start gap (one late start on a busy machine says nothing)
        gap = statistics.median(b.at - a.at for a, b in itertools.pairwise(searches))
        assert 0.9 * 5 <= 1 / gap <= 5


def test_a_whole_read_keeps_90_percent_of_the_window_without_a_429():
    """On one fake clock shared by the connector and the fake HubSpot (each request takes
    20 ms of it), so the figure measures the pacing, not how busy the test machine is."""
    t = FakeTime()
    limits = Limits(window=100, window_ms=10_000, search=100_000)  # Free and Starter
    with FakeHubSpot(limits=limits, clock=t) as fake:
        populate(fake, contacts=120)
        http = HttpOptions(retry=NO_WAIT, transport=SlowTransport(t, 0.02))
        c = connector(fake, http=http, page_size=2, timer=t, sleep=t.sleep)
        read_everything(c)
        assert not [x for x in fake.calls if x.status == 429]
        assert c.window.waited > 0
        assert share_of_limit(fake.calls, 100, 10.0) >= 0.9


def test_a_window_spent_by_another_client_is_waited_for_not_refused():
    limits = Limits(window=30, window_ms=1000, search=100_000)
    auth = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    with FakeHubSpot(limits=limits) as fake, httpx.Client(base_url=fake.url, headers=auth) as http:
        populate(fake, contacts=10)
        for _ in range(26):  # another client of the same app
            assert http.get("/crm/v3/objects/contacts", params={"limit": 1}).status_code == 200
        c = connector(fake)
        for _ in range(6):
            c.check()  # three requests each
        assert not [x for x in fake.calls if x.status == 429]
        assert c.window.waited > 0


def test_a_sync_against_tight_limits_sees_no_429(engine, cipher):
    limits = Limits(window=10, window_ms=1000)  # and HubSpot's 5 searches a second
    with FakeHubSpot(search_cap=25, limits=limits) as fake:
        populate(fake)
        with Session(engine) as session:
            source, _ = add_source(session, "acme", "hubspot", "crm",
                                   Credential(DEFAULT_TOKEN, base_url=fake.url), cipher)  # fmt: skip
            session.commit()
            source_id = int(source.id or 0)
        result = run(engine, source_id, cipher, fake, search_interval=SEARCH_INTERVAL)
        assert result.ok, result.error
        assert not [x for x in fake.calls if x.status == 429]
        assert_store_matches(engine, source_id, fake)


# --- the commands and the credential ---------------------------------------------------------


def test_sources_add_hubspot_then_sync(sources_cli, fake, monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-na1-wrong")
    code, _, err = sources_cli("sources", "add", "hubspot", "--name", "crm", "--key-env",
                           "HUBSPOT_TOKEN", "--base-url", fake.url)  # fmt: skip
    assert code == 2 and "The key was not stored: HubSpot refused the access token" in err
    monkeypatch.setenv("HUBSPOT_TOKEN", DEFAULT_TOKEN)
    code, out, err = sources_cli("sources", "add", "hubspot", "--name", "crm", "--key-env",
                             "HUBSPOT_TOKEN", "--base-url", fake.url)  # fmt: skip
    assert code == 0, err
    assert "Connected hubspot source 'crm'" in out
    code, out, err = sources_cli("sync", "crm")
    assert code == 0, err
    assert "crm (hubspot):" in out and "new" in out
    code, out, _ = sources_cli("sources", "list")
    assert "crm (hubspot): active, last success" in out
    everything = out + err + caplog.text + (tmp_path / "cli.db").read_bytes().decode("latin-1")
    assert DEFAULT_TOKEN not in everything


def test_the_token_is_stored_encrypted(engine, fake, source_id, cipher):
    assert run(engine, source_id, cipher, fake).ok
    with engine.connect() as conn:
        raw = conn.execute(
            text("SELECT credentials FROM source WHERE id = :id"), {"id": source_id}
        ).scalar_one()
        assert DEFAULT_TOKEN.encode() not in bytes(raw)
        for table in ("source", "sync_cursor", "customer", "journey_event"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                assert DEFAULT_TOKEN not in repr(tuple(row)), table
    with Session(engine) as session:
        stored = session.get(Source, source_id)
        assert Credential.of_source(cipher, stored).secret == DEFAULT_TOKEN
    with Session(engine) as session:
        row = session.get(SyncCursor, (source_id, "deals"))
        assert row is not None
        cursor = json.loads(row.cursor or "{}")
    assert cursor["in_pass"] is False and cursor["since"] > 0


def test_contacts_phone_numbers_are_stored_and_join_people_when_asked(
    engine, fake, source_id, cipher
):
    """A contact's `phone` (else `mobilephone`) is kept as HubSpot writes it; with the
    workspace's phone rule on, it joins the shop's customer with another email."""
    from journey.cli_people import people_settings
    from journey.people import show
    from tests.builders import Shop

    kim = fake.add_contact(fake.now_ms(), email="kim@work.com", phone="(201) 555-0123")
    lee = fake.add_contact(fake.now_ms(), email="lee@work.com", mobilephone="+44 7400 123456")
    assert run(engine, source_id, cipher, fake).ok
    with Session(engine) as session:
        phones = dict(
            session.execute(
                select(Customer.external_id, Customer.phone).where(
                    Customer.external_id.in_([kim["id"], lee["id"]])
                )
            ).all()
        )
        assert phones == {kim["id"]: "(201) 555-0123", lee["id"]: "+44 7400 123456"}
        shop = Shop(session, "acme", "shop")
        shop.customer("9001", email="kim@home.com", phone="+1 201 555 0123")
        people_settings(session, "acme", match_phone="on", country="US")
        person = show(session, "acme", "kim@home.com")
        assert {(r.source, r.rule) for r in person.records} == {
            ("crm", "phone"),
            ("shop", "phone"),
        }
        session.commit()
    # The next sync of the CRM keeps them one person.
    fake.update_contact(kim["id"], firstname="Kim")
    assert run(engine, source_id, cipher, fake).ok
    with Session(engine) as session:
        assert len(show(session, "acme", "kim@work.com").records) == 2
