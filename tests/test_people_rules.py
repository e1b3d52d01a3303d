"""The workspace's people rules (journey/matching.py, `journey settings`): emails with
`+tags` dropped or Gmail dots ignored, phone numbers in E.164, last touch as the channel.

Each rule is off by default (records stay apart), joins when turned on with the reason
shown by `people show`, survives a re-sync, and gives way to manual decisions.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from builders import Shop, make_shop, utc
from sqlalchemy import text

from journey.cli_people import people_settings
from journey.matching import email_key, phone_key
from journey.metrics.funnel import funnel_report
from journey.people import conflicts, decide_unlink, show
from journey.periods import range_period

YEAR = range_period(date(2025, 6, 16), date(2026, 6, 15))
DATA = Path(__file__).parent / "data" / "imports"


def two_sources(session, workspace_id: str = "shop") -> tuple[Shop, Shop]:
    return make_shop(session, workspace_id), Shop(session, workspace_id, "store")


def person_of(session, shop: Shop, external_id: str) -> int:
    return int(
        session.execute(
            text("SELECT person_id FROM customer WHERE id = :id"), {"id": shop.id(external_id)}
        ).scalar_one()
    )


def why(session, shop: Shop, external_id: str) -> tuple[str | None, str | None]:
    row = session.execute(
        text("SELECT link_rule, link_value FROM customer WHERE id = :id"),
        {"id": shop.id(external_id)},
    ).one()
    return row[0], row[1]


def test_the_email_keys():
    assert email_key(" Ann+Shop@X.com ") == "ann+shop@x.com"
    assert email_key("ann+shop@x.com", drop_tags=True) == "ann@x.com"
    assert email_key("+only@x.com", drop_tags=True) == "+only@x.com"
    assert email_key("a.n.n@GoogleMail.com", ignore_dots=True) == "ann@gmail.com"
    # Dots matter at most providers and company domains: kept there.
    assert email_key("jo.smith@company.com", ignore_dots=True) == "jo.smith@company.com"
    assert email_key("not an address") is None


def test_the_phone_keys():
    assert phone_key("06 12 34 56 78", "FR") == "+33612345678"
    assert phone_key("+33 (0)6 12-34-56-78", None) == "+33612345678"
    assert phone_key("(201) 555-0123", "US") == "+12015550123"
    # Without a country code and no workspace country, or not a valid number: no key.
    assert phone_key("06 12 34 56 78", None) is None
    assert phone_key("000 000 0000", "US") is None
    assert phone_key("call me", "FR") is None


def test_plus_tags_join_only_when_the_workspace_drops_them(session):
    crm, store = two_sources(session)
    crm.customer("lead-1", ("lead", utc(2026, 5, 1)), email="ann+news@x.com", channel="ads")
    store.customer("9001", ("order", utc(2026, 5, 3), 5000), email="Ann@x.com")
    assert person_of(session, crm, "lead-1") != person_of(session, store, "9001")
    assert funnel_report(session, "shop", YEAR).entered == 2

    lines = people_settings(session, "shop", email_tags="drop")
    assert "+tags dropped" in lines[0]
    assert "People rebuilt: 2 records from 2 source(s) are 1 people" in lines[1]
    assert person_of(session, crm, "lead-1") == person_of(session, store, "9001")
    assert why(session, store, "9001") == ("email", "ann@x.com")
    report = funnel_report(session, "shop", YEAR)
    assert report.entered == 1 and report.channels[0].channel == "ads"

    # A re-sync of both records keeps them one person.
    crm.customer("lead-1", ("lead", utc(2026, 5, 1)), email="ann+news@x.com", channel="ads")
    store.customer("9001", ("order", utc(2026, 5, 3), 5000), email="Ann@x.com")
    assert person_of(session, crm, "lead-1") == person_of(session, store, "9001")
    # A manual unlink wins over the rule, through a setting change too.
    decide_unlink(session, "shop", "store:9001")
    people_settings(session, "shop", email_tags="keep")
    people_settings(session, "shop", email_tags="drop")
    assert person_of(session, crm, "lead-1") != person_of(session, store, "9001")
    assert why(session, store, "9001") == ("manual", "unlinked")

    # Back to keeping tags: apart again, nothing lost.
    people_settings(session, "shop", email_tags="keep")
    assert session.execute(text("SELECT COUNT(*) FROM journey_event")).scalar_one() == 2


def test_gmail_dots_are_ignored_for_gmail_only(session):
    crm, store = two_sources(session)
    crm.customer("lead-1", ("lead", utc(2026, 5, 1)), email="a.nn@gmail.com")
    store.customer("9001", ("order", utc(2026, 5, 3), 5000), email="ann@googlemail.com")
    crm.customer("lead-2", ("lead", utc(2026, 5, 1)), email="jo.smith@company.com")
    store.customer("9002", ("order", utc(2026, 5, 3), 5000), email="josmith@company.com")
    assert person_of(session, crm, "lead-1") != person_of(session, store, "9001")
    people_settings(session, "shop", email_dots="ignore")
    assert person_of(session, crm, "lead-1") == person_of(session, store, "9001")
    assert why(session, crm, "lead-1") == ("email", "ann@gmail.com")
    assert person_of(session, crm, "lead-2") != person_of(session, store, "9002")
    # `people show` finds the person by any spelling the rule reads as the same.
    person = show(session, "shop", "an.n@gmail.com")
    assert {r.source for r in person.records} == {"test", "store"}


def test_phone_numbers_join_only_when_turned_on(session):
    crm, store = two_sources(session)
    crm.customer("lead-1", ("lead", utc(2026, 5, 1)), email="ann@work.fr", phone="06 12 34 56 78")
    store.customer(
        "9001", ("order", utc(2026, 5, 3), 5000), email="ann@home.fr", phone="+33 6 12 34 56 78"
    )
    crm.customer("lead-2", ("lead", utc(2026, 5, 1)), phone="000")
    store.customer("9002", ("order", utc(2026, 5, 3), 5000), phone="000")
    assert person_of(session, crm, "lead-1") != person_of(session, store, "9001")

    lines = people_settings(session, "shop", match_phone="on", country="fr")
    assert "phone numbers on (E.164" in lines[0] and "read as FR" in lines[0]
    assert person_of(session, crm, "lead-1") == person_of(session, store, "9001")
    assert why(session, crm, "lead-1") == ("phone", "+33612345678")
    # Not a valid number: never joined on it.
    assert person_of(session, crm, "lead-2") != person_of(session, store, "9002")
    assert show(session, "shop", "+33 6 12 34 56 78").id == person_of(session, crm, "lead-1")
    person = show(session, "shop", "ann@work.fr")
    assert {(r.source, r.rule, r.value) for r in person.records} == {
        ("test", "phone", "+33612345678"),
        ("store", "phone", "+33612345678"),
    }

    # A re-sync keeps them one; a number that changes in its source moves the record.
    store.customer(
        "9001", ("order", utc(2026, 5, 3), 5000), email="ann@home.fr", phone="+33 6 12 34 56 78"
    )
    assert person_of(session, crm, "lead-1") == person_of(session, store, "9001")
    store.customer("9001", phone="+33 6 99 99 99 99")
    assert person_of(session, crm, "lead-1") != person_of(session, store, "9001")

    # Turned off: apart again.
    store.customer("9001", phone="06 12 34 56 78")
    assert person_of(session, crm, "lead-1") == person_of(session, store, "9001")
    people_settings(session, "shop", match_phone="off")
    assert person_of(session, crm, "lead-1") != person_of(session, store, "9001")
    assert (
        session.execute(
            text("SELECT COUNT(*) FROM customer WHERE phone_key IS NOT NULL")
        ).scalar_one()
        == 0
    )


def test_a_shared_phone_number_is_left_apart_and_listed(session):
    crm = make_shop(session, "shop", match_phone=True, country="US")
    store = Shop(session, "shop", "store")
    for n, name in enumerate(("Tom Hill", "Ann Hill")):
        store.customer(
            f"cus_{n}", ("order", utc(2026, 5, 1 + n), 3000), name=name, phone="201-555-0123"
        )
    crm.customer("lead-9", ("lead", utc(2026, 4, 1)), name="Tom Hill", phone="+1 201 555 0123")
    people = {person_of(session, store, f"cus_{n}") for n in range(2)}
    assert len(people) == 2 and person_of(session, crm, "lead-9") not in people
    (conflict,) = conflicts(session, "shop")
    assert conflict.kind == "phone" and conflict.email == "+12015550123"
    assert conflict.records == 3 and "different names" in conflict.reason


def test_email_and_phone_together_say_email_first(session):
    crm = make_shop(session, "shop", match_phone=True, country="GB")
    store = Shop(session, "shop", "store")
    crm.customer("lead-1", ("lead", utc(2026, 5, 1)), email="kim@x.co.uk", phone="07400 123456")
    store.customer("9001", ("order", utc(2026, 5, 3), 5000), email="KIM@x.co.uk")
    store.customer("9002", ("order", utc(2026, 5, 4), 5000), phone="+44 7400 123456")
    crm_person = person_of(session, crm, "lead-1")
    assert person_of(session, store, "9001") == person_of(session, store, "9002") == crm_person
    assert why(session, crm, "lead-1") == ("email", "kim@x.co.uk")
    assert why(session, store, "9002") == ("phone", "+447400123456")


def test_last_touch_is_the_channel_before_the_first_purchase(session):
    crm, store = two_sources(session)
    crm.customer(
        "lead-1",
        ("lead", utc(2026, 5, 1), None, "facebook"),
        ("visit", utc(2026, 5, 10), None, "google"),
        ("visit", utc(2026, 5, 20), None, "newsletter"),  # after the purchase
        email="ann@x.com",
    )
    store.customer("9001", ("order", utc(2026, 5, 12), 5000), email="ann@x.com")
    crm.customer("lead-2", ("lead", utc(2026, 5, 2), None, "facebook"), email="bob@x.com")
    crm.events("lead-2", ("visit", utc(2026, 5, 25), None, "tiktok"))  # never bought

    def channels() -> dict[str, int]:
        report = funnel_report(session, "shop", YEAR)
        return {c.channel: c.entered for c in report.channels}

    assert channels() == {"facebook": 2}
    lines = people_settings(session, "shop", touch="last")
    assert "last touch before they first bought" in lines[0]
    assert channels() == {"google": 1, "tiktok": 1}
    # Kept through a sync that touches the person (the incremental refresh).
    store.customer("9001", ("order", utc(2026, 5, 12), 5000), email="ann@x.com")
    assert channels() == {"google": 1, "tiktok": 1}
    people_settings(session, "shop", touch="first")
    assert channels() == {"facebook": 2}


def test_journey_settings_people_options(journey_cli, tmp_path):
    crm, shop = tmp_path / "crm.csv", tmp_path / "shop.csv"
    crm.write_text("customer_email,kind,occurred_at,channel\nann+news@x.com,lead,2026-03-01,ads\n")
    shop.write_text("order_id,customer_email,ordered_at,amount\no1,Ann@x.com,2026-03-05,40.00\n")
    assert journey_cli("import", str(crm), "--kind", "events", "--source", "crm")[0] == 0
    assert journey_cli("import", str(shop), "--kind", "orders", "--source", "shop")[0] == 0
    code, out, err = journey_cli("settings")
    assert code == 0, out + err
    assert (
        "People: emails trimmed and case-folded; phone numbers off; a person's channel is "
        "their first touch." in out
    )
    assert "--email-tags" in out and "People rebuilt" not in out

    code, out, err = journey_cli(
        "settings",
        *("--email-tags", "drop", "--email-dots", "ignore", "--match-phone", "on"),
        *("--country", "gb", "--touch", "last"),
    )
    assert code == 0, out + err
    assert "+tags dropped, dots ignored in Gmail addresses" in out
    assert "phone numbers on (E.164, numbers without a country code read as GB)" in out
    assert "last touch before they first bought" in out
    assert "People rebuilt: 2 records from 2 source(s) are 1 people" in out
    code, out, err = journey_cli("people", "show", "ann@x.com")
    assert code == 0 and "crm" in out and "shop" in out and "same email ann@x.com" in out

    code, out, err = journey_cli("settings", "--country", "XX")
    assert code == 2 and "--country 'XX' is not a country code" in out + err
    code, out, err = journey_cli("settings", "--touch", "middle")
    assert code == 2 and "middle" in out + err


HUBSPOT = (
    "Record ID,First Name,Last Name,Email,Phone Number,Contact owner,Lifecycle Stage,"
    "Lead Status,Create Date,Became a Subscriber Date,Became a Lead Date,"
    "Became a Marketing Qualified Lead Date,Became a Sales Qualified Lead Date,"
    "Became an Opportunity Date,Became a Customer Date,Became an Evangelist Date,"
    "Original Traffic Source\n"
    "101,Kim,Lee,kim@work.com,(201) 555-0123,,Lead,,2026-03-01 10:00,,2026-03-01 10:00,"
    ",,,,,Paid Social\n"
    "102,Bob,Ng,bob@work.com,,,Lead,,2026-03-02 10:00,,2026-03-02 10:00,,,,,,Organic Search\n"
)
ACUITY = (
    "Start Time,End Time,First Name,Last Name,Phone,Email,Type,Calendar,Appointment Price,"
    "Date Scheduled,Label,Canceled,Appointment ID\n"
    '"March 8, 2026 10:00 am","March 8, 2026 10:30 am",Kim,Lee,201-555-0123,kim@home.com,'
    'Exam,Dr. Gray,85.00,"March 1, 2026 9:12 am",,no,1001\n'
    '"March 9, 2026 11:00 am","March 9, 2026 11:30 am",Bob,Ng,,bob@home.com,Exam,Dr. Kim,'
    '85.00,"March 5, 2026 4:00 pm",,no,1002\n'
)
SQUARE = (
    "Reference ID,First Name,Last Name,Email Address,Phone Number,Square Customer ID\n"
    ",Kim,Lee,,+1 201 555 0123,CUS1\n"
)
SHOPIFY = (
    "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Phone,Total Spent\n"
    "7001,Kim,Lee,kim@shop.com,no,'+12015550123,0.00\n"
)


def test_vendor_exports_carry_phone_numbers_and_people_join_on_them(journey_cli, tmp_path):
    """HubSpot contacts, Acuity appointments, Square and Shopify customers exports each
    write Kim's number their own way; with the phone rule on they are one person."""
    for name, body in (
        ("hubspot", HUBSPOT),
        ("acuity", ACUITY),
        ("square", SQUARE),
        ("shopify", SHOPIFY),
    ):
        path = tmp_path / f"{name}.csv"
        path.write_text(body)
        code, out, err = journey_cli("import", str(path), "--source", name)
        assert code == 0, out + err
    code, out, err = journey_cli("people", "show", "kim@home.com")
    assert "1 record(s)" in out  # the emails differ

    code, out, err = journey_cli("settings", "--match-phone", "on", "--country", "US")
    assert code == 0, out + err
    # Kim: 4 records, one person; Bob: 2 records without numbers, 2 people.
    assert "People rebuilt: 6 records from 4 source(s) are 3 people" in out
    code, out, err = journey_cli("people", "show", "kim@home.com")
    assert code == 0, out + err
    assert out.count("same phone number +12015550123") == 4
    assert {"hubspot", "acuity", "square", "shopify"} <= set(out.replace(":", " ").split())

    # Re-importing changes nothing and keeps Kim one person.
    for name in ("acuity", "hubspot"):
        code, out, err = journey_cli("import", str(tmp_path / f"{name}.csv"), "--source", name)
        assert code == 0, out + err
    code, out, err = journey_cli("people", "show", "kim@work.com")
    assert out.count("same phone number +12015550123") == 4


def test_store_connectors_map_their_customers_phone_numbers():
    """Where each API puts a customer's number: Stripe's customer `phone` and a guest's
    `billing_details.phone`; WooCommerce's `billing.phone`; Shopify's
    `defaultPhoneNumber.phoneNumber` (validated against Shopify's schema in
    tests/test_shopify_queries.py)."""
    from journey.sources import stripe, woocommerce
    from journey.sources.shopify import mapping

    (c,) = stripe.customer_records(
        {"id": "cus_1", "created": 1767225600, "email": "a@x.com", "phone": "+33612345678"}
    ).customers
    assert c.phone == "+33612345678"
    _, guest = stripe._payer({"billing_details": {"email": "g@x.com", "phone": "0612345678"}})
    assert guest.customers[0].phone == "0612345678"
    (w,) = woocommerce.customer_records(
        {
            "id": 7,
            "date_created_gmt": "2026-01-01T00:00:00",
            "email": "w@x.com",
            "billing": {"phone": "06 12 34 56 78"},
        }
    ).customers
    assert w.phone == "06 12 34 56 78"
    (s,) = mapping.customer_records(
        {
            "id": "gid://shopify/Customer/5",
            "createdAt": "2026-01-01T00:00:00Z",
            "defaultPhoneNumber": {"phoneNumber": "+12015550123"},
        }
    ).customers
    assert s.phone == "+12015550123"


def test_customer_lists_name_each_persons_sources(session):
    """The overdue, at-risk and review lists (text, Slack, CSV) say which sources each
    person appears in, once the workspace has more than one."""
    from datetime import timedelta

    from builders import NOW

    from bot.blocks.reports import churn_message, retention_message, reviews_message
    from journey.render.csv_export import at_risk_csv
    from journey.render.text import render_churn_text, render_retention_text, render_review_text
    from journey.reporting import build_report

    crm, store = two_sources(session)
    store.customer(
        "9001",
        ("order", NOW - timedelta(days=100), 5000),
        ("order", NOW - timedelta(days=70), 5000),
        email="ann@x.com",
        name="Ann Lee",
    )
    store.customer("9002", ("order", NOW - timedelta(days=5), 3000), email="bo@x.com", name="Bo")

    def lists() -> tuple[str, str, str, str, str]:
        retention = build_report(session, "shop", "retention", YEAR, now=NOW)
        churn = build_report(session, "shop", "churn", YEAR, now=NOW)
        reviews = build_report(session, "shop", "reviews", YEAR, now=NOW)
        return (
            render_retention_text(retention) + render_churn_text(churn),
            render_review_text(reviews),
            str(retention_message(retention).payload()) + str(churn_message(churn).payload()),
            str(reviews_message(reviews).payload()),
            at_risk_csv(retention) + at_risk_csv(churn),
        )

    # One source: nothing to say (the test source has no records yet, but exists).
    text, reviews, blocks, review_blocks, csv_text = lists()
    assert "Ann Lee (" not in text and "Ann Lee (" not in blocks

    crm.customer("lead-1", ("lead", NOW - timedelta(days=300)), email="ann@x.com")
    text, reviews, blocks, review_blocks, csv_text = lists()
    assert text.count("Ann Lee (store + test)") == 2  # overdue, and at risk
    assert "Bo (store)" in reviews
    assert blocks.count("Ann Lee (store + test)") == 2
    assert "Bo* · bo@x.com · store" in review_blocks
    rows = [line for line in csv_text.splitlines() if "Ann Lee" in line]
    assert len(rows) == 2 and all(r.endswith(",store + test") for r in rows)
    assert csv_text.splitlines()[0].endswith(",sources")


def test_a_country_change_reads_every_number_again(session):
    """Stored E.164 keys are reused by later builds (reading a number is slow), so a change
    of country must read them all again: a national number then means another number."""
    from journey.state import refresh_journeys

    crm, store = two_sources(session)
    crm.customer("lead-1", ("lead", utc(2026, 5, 1)), phone="(201) 555-0123")
    store.customer("9001", ("order", utc(2026, 5, 3), 5000), phone="+1 201 555 0123")
    # The country alone, with the rule off, changes no key: nothing to rebuild.
    assert len(people_settings(session, "shop", country="US")) == 1
    people_settings(session, "shop", match_phone="on")
    assert person_of(session, crm, "lead-1") == person_of(session, store, "9001")
    refresh_journeys(session, "shop")  # a full rebuild with the keys kept
    assert person_of(session, crm, "lead-1") == person_of(session, store, "9001")
    people_settings(session, "shop", country="GB")  # (201) 555-0123 is no GB number
    assert person_of(session, crm, "lead-1") != person_of(session, store, "9001")
    assert why(session, crm, "lead-1") == (None, None)


def test_generic_files_and_shopify_orders_carry_phone_numbers(journey_cli, tmp_path):
    """A generic customers file's `phone` column, and the Shopify orders export's `Phone`
    (on the order's first line; its customer is named by email)."""
    crm = tmp_path / "crm.csv"
    crm.write_text("id,name,email,phone\nc1,Kim Lee,kim@work.com,+33 6 12 34 56 78\n")
    orders = tmp_path / "orders.csv"
    header = (DATA / "shopify_orders_export.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    columns = header.split(",")
    row = dict.fromkeys(columns, "")
    row.update(
        {
            "Name": "#2001",
            "Email": "kim@home.com",
            "Financial Status": "paid",
            "Currency": "USD",
            "Total": "40.00",
            "Created at": "2026-03-02 10:15:00 +0100",
            "Lineitem quantity": "1",
            "Lineitem name": "Leash",
            "Lineitem price": "40.00",
            "Phone": "06 12 34 56 78",
        }
    )
    orders.write_text(header + "\n" + ",".join(row[c] for c in columns) + "\n")
    for path, source in ((crm, "crm"), (orders, "shop")):
        code, out, err = journey_cli("import", str(path), "--source", source)
        assert code == 0, out + err
    code, out, err = journey_cli("settings", "--match-phone", "on", "--country", "FR")
    assert "People rebuilt: 2 records from 2 source(s) are 1 people" in out, out + err
    code, out, err = journey_cli("people", "show", "kim@home.com")
    assert out.count("same phone number +33612345678") == 2


def test_the_digest_names_each_persons_sources(session):
    from datetime import timedelta

    from builders import NOW

    from bot.blocks.digest import digest_message
    from journey.schedule.digests import build_digest

    crm, store = two_sources(session)
    crm.customer("lead-1", ("lead", NOW - timedelta(days=30)), email="ann@x.com", name="Ann")
    store.customer("9001", ("order", NOW - timedelta(days=5), 5000), email="ann@x.com")
    store.customer("9002", ("order", NOW - timedelta(days=6), 5000), email="bo@x.com", name="Bo")
    period = range_period(date(2026, 6, 8), date(2026, 6, 14))
    digest = build_digest(session, "shop", period, now=NOW)
    said = json.dumps(digest_message(digest).payload())
    assert "Ann (store + test)" in said and "Bo (store)" in said
