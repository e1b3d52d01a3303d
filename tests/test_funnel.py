"""The funnel report, checked against cohorts worked out by hand."""

from __future__ import annotations

from datetime import date

import pytest
from builders import make_shop, utc

from journey.metrics.funnel import TOP_CHANNELS, funnel_report
from journey.periods import range_period

# June 1..10 inclusive = [June 1 00:00, June 11 00:00); its previous period has
# the same 10 days: [May 22, June 1).
PERIOD = range_period(date(2026, 6, 1), date(2026, 6, 10))
STAGES = ["awareness", "consideration", "decision", "purchase", "retention", "advocacy"]


def rate(r):
    return (r.numerator, r.denominator)


def build_main_cohort(shop):
    shop.customer(
        "a1",
        ("visit", utc(2026, 6, 1, 10)),
        ("signup", utc(2026, 6, 1, 12)),
        ("checkout", utc(2026, 6, 2, 10)),
        ("order", utc(2026, 6, 2, 14), 4000),
    )
    shop.customer(
        "a2",
        ("visit", utc(2026, 6, 2, 8)),
        ("signup", utc(2026, 6, 2, 11, 50)),
        ("checkout", utc(2026, 6, 3, 8)),
    )
    shop.customer("a3", ("visit", utc(2026, 6, 3, 9)), ("signup", utc(2026, 6, 4, 9)))
    shop.customer("a4", ("visit", utc(2026, 6, 4, 10)))
    shop.customer("a5", ("order", utc(2026, 6, 5, 10), 2500))  # direct purchase
    # Orders after the period ends: a6 counts at awareness only.
    shop.customer("a6", ("visit", utc(2026, 6, 6, 10)), ("order", utc(2026, 6, 12, 10), 900))
    shop.customer(
        "a7",
        ("visit", utc(2026, 6, 3, 10)),
        ("order", utc(2026, 6, 3, 13, 40), 1000),
        ("order", utc(2026, 6, 7, 10), 1000),
        ("review", utc(2026, 6, 8, 10)),
    )
    # Entered in the previous period; its purchase is after that period's end.
    shop.customer("b0", ("visit", utc(2026, 5, 30, 10)), ("order", utc(2026, 6, 2, 10), 500))
    # First seen exactly when the period ends: not in it (periods are half-open).
    shop.customer("z1", ("visit", utc(2026, 6, 11)))


def test_funnel_counts_conversions_and_medians(session):
    shop = make_shop(session)
    build_main_cohort(shop)
    report = funnel_report(session, shop.workspace_id, PERIOD)

    # Entered in [June 1, June 11): a1..a7 = 7 (not b0, not z1).
    assert report.entered == 7
    assert [s.stage for s in report.stages] == STAGES
    # awareness:     all 7
    # consideration: a1, a2, a3 (signups), a5 and a7 (their order implies it) = 5
    # decision:      a1, a2 (checkouts), a5, a7 (orders)                        = 4
    # purchase:      a1, a5, a7 (a6 ordered after the period)                   = 3
    # retention:     a7 (second purchase day, June 7)                           = 1
    # advocacy:      a7 (review June 8)                                          = 1
    assert [s.reached for s in report.stages] == [7, 5, 4, 3, 1, 1]
    # Inferred = counted only thanks to a later stage:
    # awareness a5; consideration a5, a7; decision a5, a7; nothing after.
    assert [s.inferred for s in report.stages] == [1, 2, 2, 0, 0, 0]
    assert [rate(s.overall) for s in report.stages] == [
        (7, 7),
        (5, 7),
        (4, 7),
        (3, 7),
        (1, 7),
        (1, 7),
    ]
    assert report.stages[0].step is None
    assert [rate(s.step) for s in report.stages[1:]] == [(5, 7), (4, 5), (3, 4), (1, 3), (1, 1)]
    assert report.stages[3].overall.value == pytest.approx(3 / 7)

    # Hours from the previous stage, floored to the hour, lower median, counting only
    # customers with both stages recorded (awareness may be first seen): a5 and a7
    # have consideration and decision inferred, so they are not timed there.
    # ->consideration: a1 2h, a2 3h50 -> 3, a3 24h; 2,3,24 -> 3
    # ->decision:      a1 22h, a2 20h10 -> 20; 20,22 -> 20
    # ->purchase:      a1 checkout -> order 4h -> 4
    # ->retention:     a7 June 3 13:40 -> June 7 10:00 = 92h20 -> 92
    # ->advocacy:      a7 June 7 10:00 -> June 8 10:00 = 24
    assert [s.median_hours_from_previous for s in report.stages] == [
        None,
        3.0,
        20.0,
        4.0,
        92.0,
        24.0,
    ]

    # Previous period [May 22, June 1): only b0, whose order (June 2) came after its end.
    assert report.previous_entered == 1
    assert report.previous_period.start == utc(2026, 5, 22)
    first = report.changes[0]
    assert (first.from_stage, first.to_stage) == ("awareness", "consideration")
    assert rate(first.current) == (5, 7)
    assert rate(first.previous) == (0, 1)
    assert first.delta_points == pytest.approx(100 * 5 / 7)
    # Pooled 5/8; se = sqrt(0.625 * 0.375 * (1/7 + 1)) = 0.51755; z = 0.71429 / 0.51755 = 1.3801
    # -> p = 0.1675: not significant with one customer last period.
    assert first.p_value == pytest.approx(0.1675, abs=1e-3)
    assert not first.significant
    # consideration -> decision had nobody last period: nothing to compare.
    assert rate(report.changes[1].previous) == (0, 0)
    assert report.changes[1].delta_points is None
    assert report.changes[1].p_value is None

    # Lowest step conversion up to the purchase: 5/7 = 0.714 < 3/4 < 4/5.
    assert report.biggest_drop.to_stage == "consideration"
    assert report.purchase_stage == "purchase"
    assert report.insight.reason == "largest_drop"
    assert report.insight.stage == "consideration"
    assert report.insight.lost == 2  # a4 and a6 stopped at awareness

    # Nobody has a channel: one "unknown" row with all 7 and 3 purchases.
    assert [(c.channel, c.entered, c.reached, rate(c.overall)) for c in report.channels] == [
        ("unknown", 7, [7, 5, 4, 3, 1, 1], (3, 7))
    ]


def test_change_against_previous_period_and_significance(session):
    shop = make_shop(session)
    # Previous period [May 22, June 1): 40 visitors, 24 sign up, 12 check out.
    before = {}
    for i in range(40):
        events = [("visit", utc(2026, 5, 22 + i % 10, 9))]
        if i < 24:
            events.append(("signup", utc(2026, 5, 22 + i % 10, 11)))
        if i < 12:
            events.append(("checkout", utc(2026, 5, 22 + i % 10, 12)))
        before[f"p{i}"] = events
    # This period: 40 visitors, 10 sign up, 5 check out.
    now = {}
    for i in range(40):
        events = [("visit", utc(2026, 6, 1 + i % 10, 9))]
        if i < 10:
            events.append(("signup", utc(2026, 6, 1 + i % 10, 11)))
        if i < 5:
            events.append(("checkout", utc(2026, 6, 1 + i % 10, 12)))
        now[f"n{i}"] = events
    shop.many(before)
    shop.many(now)

    report = funnel_report(session, shop.workspace_id, PERIOD)
    assert (report.entered, report.previous_entered) == (40, 40)
    signup, checkout, purchase = report.changes[:3]

    # awareness -> consideration: 10/40 = 25% against 24/40 = 60%: -35 points.
    # Pooled 34/80 = 0.425; se = sqrt(0.425 * 0.575 * (2/40)) = 0.110538;
    # z = -0.35 / 0.110538 = -3.1663; p = 2 * (1 - Phi(3.1663)) = 0.00154.
    assert rate(signup.current) == (10, 40)
    assert rate(signup.previous) == (24, 40)
    assert signup.delta_points == pytest.approx(-35.0)
    assert signup.p_value == pytest.approx(0.00154, abs=1e-5)
    assert signup.significant

    # consideration -> decision: 5/10 against 12/24, both 50%: z = 0, p = 1.
    assert rate(checkout.current) == (5, 10)
    assert rate(checkout.previous) == (12, 24)
    assert checkout.delta_points == pytest.approx(0.0)
    assert checkout.p_value == pytest.approx(1.0)
    assert not checkout.significant

    # decision -> purchase: 0/5 against 0/12, no variance: p = 1.
    assert rate(purchase.current) == (0, 5)
    assert purchase.p_value == 1.0
    assert not purchase.significant

    # The lowest conversion is decision -> purchase (0%), but a significant
    # decline is the news: the insight is the signup step, 30 visitors lost.
    assert report.biggest_drop.to_stage == "purchase"
    assert report.insight.reason == "largest_decline"
    assert report.insight.stage == "consideration"
    assert report.insight.from_stage == "awareness"
    assert report.insight.lost == 30
    assert report.insight.delta_points == pytest.approx(-35.0)


# entered, purchases per channel; "unknown" has no channel at all, and ch_g's
# channel comes from its first event rather than the customer record.
CHANNELS = {
    "ch_a": (7, 3),
    "ch_b": (6, 1),
    "ch_c": (5, 0),
    "ch_d": (4, 2),
    "ch_e": (3, 3),
    "ch_f": (2, 1),
    "unknown": (2, 0),
    "ch_g": (1, 1),
}


def build_channels(shop):
    for name, (entered, buyers) in CHANNELS.items():
        for i in range(entered):
            day = 1 + i % 10
            visit_channel = "ch_g" if name == "ch_g" else None
            events = [("visit", utc(2026, 6, day, 9), None, visit_channel)]
            if i < buyers:
                events.append(("order", utc(2026, 6, day, 15), 1000))
            shop.customer(
                f"{name}-{i}", *events, channel=None if name in ("unknown", "ch_g") else name
            )
    # Last period: one customer of ch_a and one of ch_d.
    shop.customer("old-a", ("visit", utc(2026, 5, 25)), channel="ch_a")
    shop.customer("old-d", ("visit", utc(2026, 5, 26)), ("order", utc(2026, 5, 27)), channel="ch_d")


def test_channel_breakdown_keeps_the_top_channels_and_groups_the_rest(session):
    assert TOP_CHANNELS == 5
    shop = make_shop(session)
    build_channels(shop)
    report = funnel_report(session, shop.workspace_id, PERIOD)
    assert report.entered == 30  # 7 + 6 + 5 + 4 + 3 + 2 + 2 + 1
    assert report.stages[3].reached == 11  # 3 + 1 + 0 + 2 + 3 + 1 + 0 + 1
    # Ranked by customers entered: ch_a 7, ch_b 6, ch_c 5, ch_d 4, ch_e 3; then
    # ch_f 2, unknown 2 and ch_g 1 make "other": 5 entered, 1 + 0 + 1 = 2 purchases.
    # Buyers ordered directly after a visit, so they reach consideration..purchase.
    assert [(c.channel, c.entered, c.reached, rate(c.overall)) for c in report.channels] == [
        ("ch_a", 7, [7, 3, 3, 3, 0, 0], (3, 7)),
        ("ch_b", 6, [6, 1, 1, 1, 0, 0], (1, 6)),
        ("ch_c", 5, [5, 0, 0, 0, 0, 0], (0, 5)),
        ("ch_d", 4, [4, 2, 2, 2, 0, 0], (2, 4)),
        ("ch_e", 3, [3, 3, 3, 3, 0, 0], (3, 3)),
        ("other", 5, [5, 2, 2, 2, 0, 0], (2, 5)),
    ]


def test_channel_filter(session):
    shop = make_shop(session)
    build_channels(shop)
    report = funnel_report(session, shop.workspace_id, PERIOD, channel="ch_d")
    assert report.channel_filter == "ch_d"
    assert report.channels == []
    assert report.entered == 4
    assert [s.reached for s in report.stages] == [4, 2, 2, 2, 0, 0]
    # Previous period: old-d (visit and order), not old-a.
    assert report.previous_entered == 1
    assert rate(report.changes[0].previous) == (1, 1)
    # A channel known only from the first event filters the same way.
    ch_g = funnel_report(session, shop.workspace_id, PERIOD, channel="ch_g")
    assert (ch_g.entered, ch_g.stages[3].reached) == (1, 1)
    unfiltered = funnel_report(session, shop.workspace_id, PERIOD)
    assert unfiltered.previous_entered == 2


def test_events_after_the_period_end_do_not_count(session):
    shop = make_shop(session)
    shop.customer("c1", ("visit", utc(2026, 6, 1, 9)))
    shop.customer("c2", ("visit", utc(2026, 6, 2, 9)))
    before = funnel_report(session, shop.workspace_id, PERIOD)
    assert before.entered == 2
    assert [s.reached for s in before.stages] == [2, 0, 0, 0, 0, 0]

    # c1 orders exactly at the period end (June 11 00:00, excluded), c2 one
    # minute before it (included); c3 arrives at the end and does not enter.
    shop.customer("c1", ("order", utc(2026, 6, 11), 100))
    shop.customer("c2", ("order", utc(2026, 6, 10, 23, 59), 100))
    shop.customer("c3", ("visit", utc(2026, 6, 11)), ("order", utc(2026, 6, 11, 1), 100))
    after = funnel_report(session, shop.workspace_id, PERIOD)
    assert after.entered == 2
    assert [s.reached for s in after.stages] == [2, 1, 1, 1, 0, 0]
    # c2 went from a visit straight to an order: consideration and decision are
    # inferred, so those steps have no measured time; visit -> order is not a step.
    assert after.stages[1].median_hours_from_previous is None
    assert after.stages[2].median_hours_from_previous is None


def test_shorter_journey_uses_decision_as_the_purchase(session):
    shop = make_shop(session, stages=["awareness", "consideration", "decision", "retention"])
    shop.customer("c1", ("visit", utc(2026, 6, 1)), ("order", utc(2026, 6, 2), 100))
    shop.customer("c2", ("visit", utc(2026, 6, 1)), ("signup", utc(2026, 6, 3)))
    shop.customer("c3", ("visit", utc(2026, 6, 2)))
    shop.customer(
        "c4", ("order", utc(2026, 6, 2), 100), ("order", utc(2026, 6, 5), 100), channel="ads"
    )
    report = funnel_report(session, shop.workspace_id, PERIOD)
    assert [s.stage for s in report.stages] == [
        "awareness",
        "consideration",
        "decision",
        "retention",
    ]
    # consideration: c1, c2, c4; decision (the orders): c1, c4; retention: c4.
    assert [s.reached for s in report.stages] == [4, 3, 2, 1]
    assert report.purchase_stage == "decision"
    # Channel conversion counts up to decision: ads 1/1, unknown 1/3.
    assert [(c.channel, rate(c.overall)) for c in report.channels] == [
        ("unknown", (1, 3)),
        ("ads", (1, 1)),
    ]
    # Largest drop among the steps up to decision: 3/4 and 2/3 -> decision.
    assert report.biggest_drop.to_stage == "decision"


def test_empty_funnel(session):
    shop = make_shop(session)
    report = funnel_report(session, shop.workspace_id, PERIOD)
    assert report.entered == 0
    assert all(s.reached == 0 and s.overall.value is None for s in report.stages)
    assert all(s.median_hours_from_previous is None for s in report.stages)
    assert report.biggest_drop is None
    assert report.insight is None
    assert report.channels == []


def test_medians_of_large_cohorts_use_an_even_sample():
    from journey.metrics.funnel import MEDIAN_SAMPLE, median_sample_every

    assert median_sample_every(10) == 1
    assert median_sample_every(MEDIAN_SAMPLE) == 1
    assert median_sample_every(MEDIAN_SAMPLE + 1) == 2
    assert median_sample_every(1_000_000) == 5
