"""Review candidates and review-request tracking, checked by hand.

NOW is 2026-06-15 12:00 UTC. Defaults: candidates last bought 3 to 14 days ago
(inclusive), were not asked or skipped, did not review and had no refund within
the 90-day cooldown; repeat customers first, then the latest order's value.
"""

from __future__ import annotations

from datetime import date

from builders import NOW, days_ago, make_shop, utc

from journey.metrics.reviews import review_report, review_tracking
from journey.periods import parse_period, range_period

PERIOD = parse_period("30d", NOW)  # ends June 16 00:00, after NOW: candidates as of NOW
MAY = range_period(date(2026, 5, 1), date(2026, 5, 31))


def order(days: float, cents: int, hours: float = 0):
    return ("order", days_ago(days, hours), cents)


def build_candidates(shop):
    # In the window:
    shop.customer("one", order(5, 3000))
    shop.customer("repeat", order(40, 2000), order(7, 1000))  # two purchase days
    shop.customer("big", order(10, 9000))
    shop.customer("edge3", order(3, 4000))  # exactly 3 days: in
    shop.customer("edge14", order(14, 500))  # exactly 14 days: in
    # Two orders on June 10 (11:00 and 12:00): one purchase day, last order 3000,
    # revenue 8000 -> ranks before "one" (same last order, revenue 3000).
    shop.customer("tie_rich", order(5, 5000, hours=1), order(5, 3000))
    shop.customer("old_refund", ("refund", days_ago(120)), order(6, 2500))  # refund > 90d ago
    shop.customer("asked_long_ago", order(6, 1500))
    shop.ask("asked_long_ago", days_ago(100))
    shop.customer("reviewed_long_ago", order(8, 1200), ("review", days_ago(95)))
    # Not candidates:
    shop.customer("too_recent", order(2, 5000))
    shop.customer("too_old", order(15, 5000))
    shop.customer("refunded", order(6, 5000), ("refund", days_ago(4), 5000))
    shop.customer("asked", order(6, 5000))
    shop.ask("asked", days_ago(60))
    shop.customer("skipped", order(6, 5000))
    shop.ask("skipped", days_ago(30), status="skipped")
    shop.customer("asked_after", order(6, 5000))
    shop.ask("asked_after", days_ago(1))
    shop.customer("reviewed", order(8, 5000), ("review", days_ago(20)))
    shop.customer("visitor", ("visit", days_ago(5)))  # never bought


EXPECTED = [
    "repeat",  # repeat customer first, despite a 1000 last order
    "big",  # 9000
    "edge3",  # 4000
    "tie_rich",  # 3000, revenue 8000
    "one",  # 3000, revenue 3000
    "old_refund",  # 2500
    "asked_long_ago",  # 1500
    "reviewed_long_ago",  # 1200
    "edge14",  # 500
]


def test_candidates_window_exclusions_and_ranking(session):
    shop = make_shop(session)
    build_candidates(shop)
    report = review_report(session, shop.workspace_id, PERIOD, now=NOW)
    assert report.window_days == (3, 14)
    assert report.cooldown_days == 90
    assert report.total_candidates == 9
    assert [c.external_id for c in report.candidates] == EXPECTED

    by_id = {c.external_id: c for c in report.candidates}
    assert by_id["one"].days_since_purchase == 5.0
    assert by_id["edge14"].days_since_purchase == 14.0
    assert by_id["one"].last_purchase == days_ago(5)
    assert (by_id["repeat"].purchases, by_id["repeat"].last_order_cents) == (2, 1000)
    assert by_id["repeat"].revenue_cents == 3000
    assert (by_id["tie_rich"].purchases, by_id["tie_rich"].revenue_cents) == (1, 8000)


def test_candidate_list_is_limited_but_the_total_is_not(session):
    shop = make_shop(session)
    build_candidates(shop)
    report = review_report(session, shop.workspace_id, PERIOD, now=NOW, limit=3)
    assert report.total_candidates == 9
    assert [c.external_id for c in report.candidates] == EXPECTED[:3]


def test_window_and_cooldown_come_from_the_workspace(session):
    shop = make_shop(session, review_min_days=1, review_max_days=7, review_cooldown_days=30)
    shop.customer("d2", order(2, 100))  # in a 1..7 day window
    shop.customer("d8", order(8, 900))  # out
    shop.customer("asked40", order(4, 200))
    shop.ask("asked40", days_ago(40))  # before a 30-day cooldown: fine
    shop.customer("reviewed20", order(5, 300), ("review", days_ago(20)))  # within it: out
    report = review_report(session, shop.workspace_id, PERIOD, now=NOW)
    assert report.window_days == (1, 7)
    assert report.cooldown_days == 30
    assert [c.external_id for c in report.candidates] == ["asked40", "d2"]


def test_candidates_of_a_past_period_are_as_of_its_end(session):
    shop = make_shop(session)
    # As of June 1 00:00 the window is [May 18, May 29].
    shop.customer("may25", ("order", utc(2026, 5, 25), 100))
    shop.customer("may30", ("order", utc(2026, 5, 30), 100))  # 2 days before June 1
    shop.customer("june10", order(5, 100))
    report = review_report(session, shop.workspace_id, MAY, now=NOW)
    assert [c.external_id for c in report.candidates] == ["may25"]
    assert report.candidates[0].days_since_purchase == 7.0


def build_requests(shop):
    shop.customer("t1", order(60, 100), ("review", utc(2026, 5, 20)))
    shop.ask("t1", utc(2026, 5, 2, 10))  # reviewed 18 days later: answered
    shop.customer("t2", order(60, 100), ("review", utc(2026, 5, 1)))
    shop.ask("t2", utc(2026, 5, 3))  # the review came before the request: not an answer
    shop.customer("t3", order(60, 100), ("referral", utc(2026, 5, 10)))
    shop.ask("t3", utc(2026, 5, 4))  # a referral is not a review
    shop.customer("t4", order(60, 100), ("review", utc(2026, 6, 4, 10)))
    shop.ask("t4", utc(2026, 5, 5, 10))  # exactly 30 days later: too late
    shop.customer("t5", order(60, 100), ("review", utc(2026, 6, 4, 10)))
    shop.ask("t5", utc(2026, 5, 6, 10))  # 29 days later: answered
    shop.customer("s1", order(60, 100))
    shop.ask("s1", utc(2026, 5, 7), status="skipped")
    # Outside May:
    shop.customer("out1", order(60, 100), ("review", utc(2026, 5, 5)))
    shop.ask("out1", utc(2026, 4, 30))
    shop.customer("out2", order(60, 100))
    shop.ask("out2", utc(2026, 6, 1))  # the period's end is exclusive


def test_review_tracking(session):
    shop = make_shop(session)
    build_requests(shop)
    tracking = review_tracking(session, shop.workspace_id, MAY)
    # Asked in May: t1..t5 = 5; skipped: s1; answered within 30 days: t1, t5.
    assert (tracking.asked, tracking.skipped, tracking.answered) == (5, 1, 2)
    assert (tracking.conversion.numerator, tracking.conversion.denominator) == (2, 5)
    assert tracking.conversion.value == 0.4
    assert review_report(session, shop.workspace_id, MAY, now=NOW).tracking == tracking


def test_review_tracking_with_no_requests(session):
    shop = make_shop(session)
    tracking = review_tracking(session, shop.workspace_id, MAY)
    assert (tracking.asked, tracking.skipped, tracking.answered) == (0, 0, 0)
    assert tracking.conversion.value is None
