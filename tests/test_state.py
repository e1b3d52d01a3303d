"""The per-customer journey state (customer_journey) rebuilt from raw events."""

from __future__ import annotations

from builders import count_rows, make_shop, utc

from journey import state
from journey.ingest import EventRecord
from journey.models.types import to_epoch
from journey.state import refresh_journeys

DEFAULT_REACHED = [f"reached_{i}" for i in range(8)]


def reached(row: dict) -> list[int | None]:
    return [row[c] for c in DEFAULT_REACHED]


def ts(*args: int) -> int:
    return to_epoch(utc(*args))


def test_backfill_and_recorded_mask(session):
    shop = make_shop(session)
    # A direct purchase went through awareness, consideration and decision.
    shop.customer("direct", ("order", utc(2026, 6, 1, 10), 5000))
    # Visit, then checkout (skipping a recorded consideration), then order.
    shop.customer(
        "walker",
        ("visit", utc(2026, 6, 1, 9)),
        ("checkout", utc(2026, 6, 2, 10)),
        ("order", utc(2026, 6, 3, 11), 2000),
    )
    # first_seen before any event sets awareness, but is not a recorded visit.
    shop.customer("seen", ("signup", utc(2026, 6, 1)), first_seen=utc(2026, 5, 20))
    shop.customer("browser", ("visit", utc(2026, 6, 2, 8)))
    shop.customer("reviewer", ("order", utc(2026, 6, 1), 900), ("review", utc(2026, 6, 5)))

    rows = shop.journeys()
    t = ts(2026, 6, 1, 10)
    assert reached(rows["direct"]) == [t, t, t, t, None, None, None, None]
    assert rows["direct"]["recorded_mask"] == 0b1000  # only purchase (bit 3) was seen

    visit, checkout, order = ts(2026, 6, 1, 9), ts(2026, 6, 2, 10), ts(2026, 6, 3, 11)
    # consideration is first reached at the checkout (a later stage implies it).
    assert reached(rows["walker"])[:5] == [visit, checkout, checkout, order, None]
    assert rows["walker"]["recorded_mask"] == 0b1101  # awareness, decision, purchase

    assert reached(rows["seen"])[:3] == [ts(2026, 5, 20), ts(2026, 6, 1), None]
    assert rows["seen"]["recorded_mask"] == 0b10  # consideration only

    browser = rows["browser"]
    assert reached(browser)[:2] == [ts(2026, 6, 2, 8), None]
    assert browser["recorded_mask"] == 0b1
    assert browser["first_purchase_at"] is None
    assert browser["purchase_days"] == 0
    assert browser["revenue_cents"] == 0
    assert browser["last_order_cents"] is None

    # The review reaches advocacy (5) and so implies retention (4) at the same time.
    review = ts(2026, 6, 5)
    assert reached(rows["reviewer"])[3:6] == [ts(2026, 6, 1), review, review]
    assert rows["reviewer"]["recorded_mask"] == 0b101000  # purchase + advocacy
    assert rows["reviewer"]["last_review_at"] == review


def test_purchase_days_and_second_purchase(session):
    shop = make_shop(session)
    shop.customer(
        "regular",
        ("order", utc(2026, 6, 1, 9), 1000),
        ("order", utc(2026, 6, 1, 17), 2000),  # same day: still one purchase day
        ("order", utc(2026, 6, 4, 10), 500),
        ("order", utc(2026, 6, 9, 8), 300),
    )
    shop.customer(
        "sameday", ("order", utc(2026, 6, 1, 9), 1000), ("order", utc(2026, 6, 1, 20), 1500)
    )
    rows = shop.journeys()

    regular = rows["regular"]
    assert regular["purchase_days"] == 3  # June 1, 4 and 9
    assert regular["first_purchase_at"] == ts(2026, 6, 1, 9)
    # The second purchase is the first one on a later day, not June 1 17:00.
    assert regular["second_purchase_at"] == ts(2026, 6, 4, 10)
    assert regular["last_purchase_at"] == ts(2026, 6, 9, 8)
    assert regular["revenue_cents"] == 1000 + 2000 + 500 + 300
    assert regular["last_order_cents"] == 300
    # Retention (4) is reached at the second purchase day and counts as recorded.
    assert regular["reached_4"] == ts(2026, 6, 4, 10)
    assert regular["recorded_mask"] == 0b11000

    sameday = rows["sameday"]
    assert sameday["purchase_days"] == 1
    assert sameday["second_purchase_at"] is None
    assert sameday["reached_4"] is None
    assert sameday["last_purchase_at"] == ts(2026, 6, 1, 20)
    assert sameday["last_order_cents"] == 1500
    assert sameday["revenue_cents"] == 2500


def test_purchase_month_mask(session):
    shop = make_shop(session)
    shop.customer(
        "monthly",
        ("order", utc(2026, 1, 20), 100),
        ("order", utc(2026, 1, 28), 100),
        ("visit", utc(2026, 2, 10)),  # not a purchase: no bit for February
        ("order", utc(2026, 3, 2), 100),
        ("order", utc(2026, 6, 1), 100),
    )
    shop.customer("newyear", ("order", utc(2025, 12, 31, 23), 100), ("order", utc(2026, 1, 1, 1)))
    rows = shop.journeys()
    # January 2026 = 2026 * 12 + 0; bits 0 (Jan), 2 (Mar), 5 (Jun) = 1 + 4 + 32.
    assert rows["monthly"]["first_purchase_month"] == 24312
    assert rows["monthly"]["purchase_month_mask"] == 37
    # December 2025 = 2025 * 12 + 11; then January 2026 is month +1: bits 0 and 1.
    assert rows["newyear"]["first_purchase_month"] == 24311
    assert rows["newyear"]["purchase_month_mask"] == 0b11
    assert rows["newyear"]["purchase_days"] == 2


def test_refunds_reduce_revenue_and_reach_no_stage(session):
    shop = make_shop(session)
    shop.customer(
        "partly",
        ("order", utc(2026, 6, 1), 10000),
        ("order", utc(2026, 6, 3), 4000),
        ("refund", utc(2026, 6, 4), 4000),
    )
    shop.customer(
        "cancelled", ("order", utc(2026, 6, 1), 2500), ("cancellation", utc(2026, 6, 2), 2500)
    )
    rows = shop.journeys()
    assert rows["partly"]["revenue_cents"] == 10000 + 4000 - 4000
    assert rows["partly"]["last_refund_at"] == ts(2026, 6, 4)
    assert rows["partly"]["last_order_cents"] == 4000
    assert rows["partly"]["purchase_days"] == 2
    assert rows["partly"]["last_purchase_at"] == ts(2026, 6, 3)
    assert rows["partly"]["recorded_mask"] == 0b11000  # purchase + retention; refund: nothing
    assert rows["cancelled"]["revenue_cents"] == 0
    assert rows["cancelled"]["last_refund_at"] == ts(2026, 6, 2)
    assert rows["cancelled"]["reached_4"] is None


def test_channel_comes_from_the_customer_else_the_first_event(session):
    shop = make_shop(session)
    shop.customer("tagged", ("visit", utc(2026, 6, 1), None, "email"), channel="ads")
    shop.events(
        "untagged",
        ("signup", utc(2026, 6, 2), None, "email"),
        ("visit", utc(2026, 6, 1), None, "seo"),
    )
    shop.customer("none", ("visit", utc(2026, 6, 1)))
    rows = shop.journeys()
    assert rows["tagged"]["channel"] == "ads"
    assert rows["untagged"]["channel"] == "seo"  # the earliest event's channel
    assert rows["none"]["channel"] is None


def test_custom_shorter_journey(session):
    shop = make_shop(session, stages=["awareness", "consideration", "decision", "retention"])
    shop.customer(
        "c1",
        ("visit", utc(2026, 6, 1)),
        ("order", utc(2026, 6, 2), 100),
        ("order", utc(2026, 6, 5), 100),
    )
    row = shop.journey("c1")
    # The order reaches decision (2); the second purchase day reaches retention (3).
    assert reached(row) == [
        ts(2026, 6, 1),
        ts(2026, 6, 2),
        ts(2026, 6, 2),
        ts(2026, 6, 5),
        None,
        None,
        None,
        None,
    ]
    assert row["recorded_mask"] == 0b1101


def test_stub_customer_is_completed_by_a_later_customer_record(session):
    shop = make_shop(session)
    shop.events("late", ("order", utc(2026, 6, 5), 700))
    assert shop.journey("late")["reached_0"] == ts(2026, 6, 5)
    stats = shop.customer("late", first_seen=utc(2026, 5, 1), channel="ads", name="Late")
    assert (stats.inserted, stats.updated, stats.unchanged) == (0, 1, 0)
    row = shop.journey("late")
    assert row["reached_0"] == ts(2026, 5, 1)
    assert row["reached_1"] == ts(2026, 6, 5)
    assert row["channel"] == "ads"
    assert count_rows(session, "customer") == 1


def _load(shop):
    """Four customers and 8 events, one builder call per customer; returns their stats."""
    return [
        shop.customer(
            "c1", ("visit", utc(2026, 5, 1)), ("order", utc(2026, 5, 2), 1000), channel="ads"
        ),
        shop.customer(
            "c2",
            ("visit", utc(2026, 5, 3)),
            ("checkout", utc(2026, 5, 4)),
            ("order", utc(2026, 5, 10), 3000),
        ),
        shop.customer("c3", ("signup", utc(2026, 5, 5)), first_seen=utc(2026, 5, 4)),
        shop.customer(
            "c4", ("order", utc(2026, 5, 6), 500), ("order", utc(2026, 5, 20), 800), email="x@y"
        ),
    ]


def test_incremental_refresh_equals_full_rebuild(session, monkeypatch):
    # Refresh touched customers two at a time, so the chunking is exercised too.
    monkeypatch.setattr(state, "_CHUNK", 2)
    shop = make_shop(session)
    _load(shop)
    # Second batch touches only some customers, in every way an import can:
    shop.events("c1", ("order", utc(2026, 5, 12), 1500))  # a later purchase
    shop.events("c2", ("refund", utc(2026, 5, 11), 3000))  # a refund
    shop.customer("c3", first_seen=utc(2026, 4, 1))  # first_seen moves earlier
    shop.ingest(
        events=[
            # c4's May 20 order was really c1's: the event moves to another customer.
            EventRecord(
                "c4/order/" + str(ts(2026, 5, 20)), "c1", "order", utc(2026, 5, 20), None, 800
            ),
            # c2's checkout was really an order.
            EventRecord(
                "c2/checkout/" + str(ts(2026, 5, 4)), "c2", "order", utc(2026, 5, 4), None, 200
            ),
            # And a review by c3: this batch touches four customers, two chunks.
            EventRecord("c3-review", "c3", "review", utc(2026, 5, 25)),
        ]
    )
    shop.events("c5", ("visit", utc(2026, 5, 30)))  # a new stub customer
    incremental = shop.journeys()

    # The incremental state moved as expected...
    assert incremental["c1"]["purchase_days"] == 3  # May 2, 12, 20
    assert incremental["c1"]["revenue_cents"] == 1000 + 1500 + 800
    assert incremental["c4"]["purchase_days"] == 1
    assert incremental["c4"]["second_purchase_at"] is None
    assert incremental["c4"]["revenue_cents"] == 500
    assert incremental["c2"]["first_purchase_at"] == ts(2026, 5, 4)
    assert incremental["c2"]["revenue_cents"] == 200 + 3000 - 3000
    assert incremental["c3"]["reached_0"] == ts(2026, 4, 1)
    assert incremental["c3"]["last_review_at"] == ts(2026, 5, 25)

    # ...and equals a rebuild of the whole workspace from the events.
    refresh_journeys(session, shop.workspace_id)
    assert shop.journeys() == incremental
    assert count_rows(session, "customer_journey") == 5


def test_reingesting_the_same_records_changes_nothing(session):
    shop = make_shop(session)
    first = _load(shop)
    # c1: 1 customer + 2 events, c2: 1 + 3, c3: 1 + 1, c4: 1 + 2.
    assert [s.inserted for s in first] == [3, 4, 2, 3]
    before = shop.journeys()
    counts = [count_rows(session, t) for t in ("customer", "journey_event", "customer_journey")]
    assert counts == [4, 8, 4]

    again = _load(shop)
    assert [(s.inserted, s.updated, s.unchanged) for s in again] == [
        (0, 0, 3),
        (0, 0, 4),
        (0, 0, 2),
        (0, 0, 3),
    ]
    assert all(not s.touched_customers for s in again)
    assert [
        count_rows(session, t) for t in ("customer", "journey_event", "customer_journey")
    ] == counts
    assert shop.journeys() == before


def test_a_changed_record_updates_only_its_customer(session):
    shop = make_shop(session)
    _load(shop)
    before = shop.journeys()
    stats = shop.customer("c4", ("order", utc(2026, 5, 20), 900), email="x@y")  # was 800
    assert (stats.inserted, stats.updated, stats.unchanged) == (0, 1, 1)
    assert stats.touched_customers == {shop.id("c4")}
    after = shop.journeys()
    assert after["c4"]["revenue_cents"] == 500 + 900
    assert after["c4"]["last_order_cents"] == 900
    assert {k: v for k, v in after.items() if k != "c4"} == {
        k: v for k, v in before.items() if k != "c4"
    }
    assert count_rows(session, "journey_event") == 8


def test_duplicate_ids_in_one_batch_keep_the_last(session):
    shop = make_shop(session)
    stats = shop.ingest(
        events=[
            EventRecord("e1", "c1", "order", utc(2026, 6, 1), None, 100),
            EventRecord("e1", "c1", "order", utc(2026, 6, 1), None, 250),
        ]
    )
    assert stats.inserted == 1
    assert count_rows(session, "journey_event") == 1
    assert shop.journey("c1")["revenue_cents"] == 250
