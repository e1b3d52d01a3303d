"""One person per human across a workspace's sources (journey/people.py).

The measured case first, as a user runs it: leads in a CRM and buyers in a shop imported as
two sources, and the funnel by channel must tell the truth computed here from the files.
Then the rules and their hard cases through the real ingest path.
"""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta

from builders import NOW, Shop, make_shop, utc
from sqlalchemy import text

from journey.metrics.funnel import funnel_report
from journey.people import conflicts, count, decide_link, decide_unlink, show
from journey.periods import range_period

YEAR = range_period(date(2025, 6, 16), date(2026, 6, 15))


def test_crm_leads_and_shop_buyers_are_one_funnel(journey_cli, tmp_path):
    """200 leads in a CRM (even via facebook, odd via google); the 100 even ones buy in
    the shop. Before people: 300 entered, facebook 0%, google 0%, unknown 100%."""
    crm, shop = tmp_path / "crm_events.csv", tmp_path / "shop_orders.csv"
    leads = {}
    with crm.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer_email", "kind", "occurred_at", "channel"])
        for i in range(200):
            email = f"Person{i}@Example.com" if i % 3 == 0 else f"person{i}@example.com"
            channel = "facebook" if i % 2 == 0 else "google"
            leads[f"person{i}@example.com"] = channel
            out.writerow([email, "lead", f"2026-03-{1 + i % 28:02d}", channel])
    buyers = set()
    with shop.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["order_id", "customer_email", "ordered_at", "amount"])
        for i in range(0, 200, 2):
            # The shop writes the address as the customer typed it: spaces, capitals.
            out.writerow(
                [f"o{i}", f"  PERSON{i}@example.com ", f"2026-04-{1 + i % 28:02d}", "40.00"]
            )
            buyers.add(f"person{i}@example.com")

    assert journey_cli("import", str(crm), "--kind", "events", "--source", "crm")[0] == 0
    assert journey_cli("import", str(shop), "--kind", "orders", "--source", "shop")[0] == 0
    code, out, err = journey_cli(
        "report", "funnel", "--since", "2026-01-01", "--until", "2026-06-30", "--json"
    )
    assert code == 0, out + err
    report = json.loads(out)

    # The truth, from the files: people, and per channel the share who bought.
    truth = {}
    for email, channel in leads.items():
        entered, bought = truth.get(channel, (0, 0))
        truth[channel] = (entered + 1, bought + (email in buyers))
    assert report["entered"] == len(leads) == 200
    got = {c["channel"]: c for c in report["channels"]}
    assert set(got) == set(truth)  # no "unknown" channel of buyers nobody acquired
    purchase = [s["stage"] for s in report["stages"]].index("purchase")
    for channel, (entered, bought) in truth.items():
        assert got[channel]["entered"] == entered
        assert got[channel]["reached"][purchase] == bought
    assert got["facebook"]["reached"][purchase] == 100 and got["google"]["reached"][purchase] == 0

    code, out, err = journey_cli(
        "report", "funnel", "--since", "2026-01-01", "--until", "2026-06-30"
    )
    assert "300 records from 2 sources are 200 people" in out

    code, out, err = journey_cli("people", "show", "person4@example.com")
    assert code == 0, out + err
    assert "crm" in out and "shop" in out and "email person4@example.com" in out


def two_sources(session, workspace_id: str = "shop") -> tuple[Shop, Shop]:
    crm = make_shop(session, workspace_id)
    return crm, Shop(session, workspace_id, "store")


def person_of(session, shop: Shop, external_id: str) -> int:
    return int(
        session.execute(
            text("SELECT person_id FROM customer WHERE id = :id"), {"id": shop.id(external_id)}
        ).scalar_one()
    )


def test_case_and_space_variants_join_and_the_state_is_per_person(session):
    crm, store = two_sources(session)
    crm.customer("lead-1", ("lead", utc(2026, 5, 1)), email="Ann@Example.com", channel="ads")
    store.customer("9001", ("order", utc(2026, 5, 3), 5000), email=" ann@example.COM ")
    assert person_of(session, crm, "lead-1") == person_of(session, store, "9001")
    assert count(session, "shop").people == 1 and count(session, "shop").records == 2
    report = funnel_report(session, "shop", YEAR)
    assert report.entered == 1
    (ads,) = report.channels
    assert ads.channel == "ads" and ads.reached[-3] == 1  # purchase, in the default six stages
    rows = session.execute(text("SELECT COUNT(*) FROM customer_journey")).scalar_one()
    assert rows == 1


def test_a_shared_address_is_left_apart_and_listed(session):
    crm, store = two_sources(session)
    for n, name in enumerate(("Tom Hill", "Ann Hill", "Kim Hill")):
        store.customer(
            f"cus_{n}", ("order", utc(2026, 5, 1 + n), 3000), email="family@hill.com", name=name
        )
    crm.customer("lead-9", ("lead", utc(2026, 4, 1)), email="family@hill.com", name="Tom Hill")
    people = {person_of(session, store, f"cus_{n}") for n in range(3)}
    assert len(people) == 3 and person_of(session, crm, "lead-9") not in people
    (conflict,) = conflicts(session, "shop")
    assert conflict.email == "family@hill.com" and conflict.records == 4
    assert "different names" in conflict.reason
    assert funnel_report(session, "shop", YEAR).entered == 4


def test_an_email_change_moves_the_record_and_a_deletion_keeps_the_rest(session):
    crm, store = two_sources(session)
    crm.customer("lead-1", ("lead", utc(2026, 5, 1)), email="old@x.com")
    crm.customer("lead-2", ("lead", utc(2026, 5, 2)), email="new@x.com")
    store.customer("9001", ("order", utc(2026, 5, 3), 5000), email="old@x.com")
    assert person_of(session, store, "9001") == person_of(session, crm, "lead-1")
    # The shop's customer changes their address at the next sync.
    store.customer("9001", email="new@x.com")
    assert person_of(session, store, "9001") == person_of(session, crm, "lead-2")
    assert person_of(session, crm, "lead-1") != person_of(session, crm, "lead-2")
    report = funnel_report(session, "shop", YEAR)
    assert report.entered == 2 and report.stages[-3].reached == 1
    # The CRM deletes its record of the buyer: its events and profile go, the shop's stay.
    from journey.state import refresh_journeys

    lead = crm.id("lead-2")
    session.execute(text("DELETE FROM journey_event WHERE customer_id = :c"), {"c": lead})
    crm.ingestor._drop_customers([lead])
    refresh_journeys(session, "shop", [lead])
    report = funnel_report(session, "shop", YEAR)
    assert report.entered == 2 and report.stages[-3].reached == 1
    assert count(session, "shop").records == 2


def test_manual_link_and_unlink_survive_a_resync(session):
    crm, store = two_sources(session)
    crm.customer("lead-1", ("lead", utc(2026, 5, 1)), email="ann@work.com", name="Ann")
    store.customer("9001", ("order", utc(2026, 5, 3), 5000), email="ann@home.com", name="Ann")
    store.customer("9002", ("order", utc(2026, 5, 4), 2000), email="bob@x.com", name="Bob")
    crm.customer("lead-2", ("lead", utc(2026, 5, 2)), email="bob@x.com", name="Bob")
    assert person_of(session, crm, "lead-1") != person_of(session, store, "9001")
    decide_link(session, "shop", "ann@work.com", "ann@home.com")
    decide_unlink(session, "shop", f"#{store.id('9002')}")
    from journey.state import refresh_journeys

    refresh_journeys(session, "shop")  # what a full rebuild or a re-sync does
    # Re-sync: the same records arrive again.
    crm.customer("lead-1", ("lead", utc(2026, 5, 1)), email="ann@work.com", name="Ann")
    store.customer("9001", ("order", utc(2026, 5, 3), 5000), email="ann@home.com", name="Ann")
    store.customer("9002", ("order", utc(2026, 5, 4), 2000), email="bob@x.com", name="Bob")
    assert person_of(session, crm, "lead-1") == person_of(session, store, "9001")
    assert person_of(session, store, "9002") != person_of(session, crm, "lead-2")
    person = show(session, "shop", "ann@home.com")
    assert {r.source for r in person.records} == {"test", "store"}
    assert {r.rule for r in person.records} == {"manual"}
    # Unlinking lost nothing: both of Bob's records and their events are there.
    events = session.execute(text("SELECT COUNT(*) FROM journey_event")).scalar_one()
    assert events == 4
    assert funnel_report(session, "shop", YEAR).entered == 3


def test_two_workspaces_never_share_people(session):
    a, _ = two_sources(session, "ws-a")
    b, _ = two_sources(session, "ws-b")
    a.customer("1", ("order", utc(2026, 5, 1), 100), email="same@x.com")
    b.customer("1", ("order", utc(2026, 5, 1), 100), email="same@x.com")
    assert person_of(session, a, "1") != person_of(session, b, "1")
    assert count(session, "ws-a").people == count(session, "ws-b").people == 1


def test_old_workspaces_get_people_on_upgrade(engine):
    """Records stored before people each stay their own person until the upgrade builds
    people with the rules; nothing is lost."""
    from sqlmodel import Session

    from journey.db import build_missing_people

    with Session(engine) as session:
        crm, store = two_sources(session)
        crm.customer("lead-1", ("lead", NOW - timedelta(days=30)), email="a@x.com")
        store.customer("9001", ("order", NOW - timedelta(days=20), 5000), email="a@x.com")
        # As a database from before people looks: every record its own person.
        session.execute(
            text("UPDATE customer SET person_id = id, email_key = NULL, link_rule = NULL")
        )
        session.execute(text("UPDATE workspace SET people_built = :f"), {"f": False})
        session.commit()
    build_missing_people(engine)
    with Session(engine) as session:
        assert count(session, "shop").people == 1 and count(session, "shop").records == 2
        built = session.execute(text("SELECT people_built FROM workspace")).scalar_one()
        assert built


def test_the_digest_says_how_many_records_are_how_many_people(session):
    from bot.blocks.digest import digest_message
    from journey.schedule.digests import build_digest

    crm, store = two_sources(session)
    crm.customer("lead-1", ("lead", utc(2026, 6, 10)), email="a@x.com", channel="ads")
    store.customer("9001", ("order", utc(2026, 6, 12), 5000), email="a@x.com")
    store.customer("9002", ("order", utc(2026, 6, 13), 5000), email="b@x.com")
    period = range_period(date(2026, 6, 8), date(2026, 6, 14))
    digest = build_digest(session, "shop", period, now=NOW)
    texts = str(digest_message(digest).payload())
    assert "3 records from 2 sources are 2 people" in texts
