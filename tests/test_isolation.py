"""Two workspaces in one store never see each other's rows.

Workspace B reuses A's customer and event external ids (its own source), has
different stages, more data, review requests and reviews. Every report of A must
be the same as when A was alone in the store.
"""

from __future__ import annotations

import dataclasses
from datetime import date

from builders import NOW, count_rows, days_ago, make_shop, utc

from journey.metrics.funnel import funnel_report
from journey.metrics.retention import retention_report
from journey.metrics.reviews import review_report
from journey.periods import range_period
from journey.state import refresh_journeys

JUNE = range_period(date(2026, 6, 1), date(2026, 6, 15))


def fill(shop, extra: bool = False):
    """The same external ids in both workspaces; `extra` adds more for B."""
    shop.customer(
        "c1",
        ("visit", utc(2026, 6, 1)),
        ("order", days_ago(12), 1000),
        ("order", days_ago(5), 2000),
        channel="ads",
    )
    shop.customer("c2", ("visit", utc(2026, 6, 2)), ("signup", utc(2026, 6, 3)))
    shop.customer("c3", ("order", days_ago(50), 3000))
    shop.ask("c2", days_ago(10))
    if extra:
        shop.customer("c2", ("order", days_ago(6), 9000), ("review", days_ago(4)))
        shop.customer("c3", ("order", days_ago(30), 500), ("refund", days_ago(29), 500))
        for i in range(5):
            shop.customer(f"b{i}", ("visit", utc(2026, 6, 3 + i)), ("order", days_ago(7), 700))
        shop.ask("c1", days_ago(9))
        shop.ask("c3", days_ago(8), status="skipped")


def reports(session, workspace_id):
    """A's reports without their generation time."""
    found = (
        funnel_report(session, workspace_id, JUNE),
        retention_report(session, workspace_id, JUNE),
        review_report(session, workspace_id, JUNE, now=NOW),
    )
    return [dataclasses.replace(r, generated_at=None) for r in found]


def test_reports_of_one_workspace_never_count_another(session):
    a = make_shop(session, "ws_a")
    fill(a)
    alone = reports(session, "ws_a")
    journeys_alone = a.journeys()

    b = make_shop(session, "ws_b", stages=["awareness", "consideration", "decision", "retention"])
    fill(b, extra=True)
    assert count_rows(session, "customer", "ws_a") == 3
    assert count_rows(session, "customer", "ws_b") == 8
    assert count_rows(session, "journey_event", "ws_a") == 6

    # B's data is really there and different...
    b_funnel, b_retention, b_reviews = reports(session, "ws_b")
    assert b_funnel.entered == 7
    assert b_funnel.purchase_stage == "decision"
    # ...and A's reports are exactly what they were.
    together = reports(session, "ws_a")
    assert together == alone
    funnel, retention, reviews = together
    # By hand, for A: c1 (visit June 1, orders June 3 and June 10) and c2 (visit
    # June 2, signup June 3) entered in June; c3's only order (April 26) is older.
    # c1 reached purchase on June 3 and retention on June 10 (second purchase day).
    # Buyers: c1, c3; repeat: c1. Review candidates as of NOW (3..14 days): c1
    # (June 10). Requests in June: c2 asked on June 5.
    assert funnel.entered == 2
    assert [s.reached for s in funnel.stages] == [2, 2, 1, 1, 1, 0]
    assert (retention.repeat_rate.numerator, retention.repeat_rate.denominator) == (1, 2)
    assert [c.external_id for c in reviews.candidates] == ["c1"]
    assert (reviews.tracking.asked, reviews.tracking.skipped) == (1, 0)
    assert (b_reviews.tracking.asked, b_reviews.tracking.skipped) == (2, 1)
    assert b_retention.repeat_rate.denominator == 8

    # Rebuilding B's state neither deletes nor changes A's.
    refresh_journeys(session, "ws_b")
    assert a.journeys() == journeys_alone
    assert reports(session, "ws_a") == alone


def test_reingesting_into_one_workspace_does_not_touch_the_other(session):
    a = make_shop(session, "ws_a")
    b = make_shop(session, "ws_b")
    fill(a)
    fill(b)
    assert a.id("c1") != b.id("c1")
    before = a.journeys()
    stats = b.customer("c1", ("order", days_ago(1), 5000), channel="ads")
    assert stats.touched_customers == {b.id("c1")}
    assert a.journeys() == before
    assert b.journey("c1")["revenue_cents"] == 1000 + 2000 + 5000
