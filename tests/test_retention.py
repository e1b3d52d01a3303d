"""The retention report, checked against the documented heuristic worked by hand.

The heuristic (journey/metrics/retention.py): usual gap = (last - first purchase)
/ (purchase days - 1), one-time buyers get the typical gap (median usual gap of
repeat buyers, floored to the day; 30 days when there are none); at risk when
silent for more than k x gap but not more than 2k x gap; lapsed beyond 2k x gap;
value at risk = average purchase x 365 / gap for repeat buyers, one average
purchase for one-time buyers. k = at_risk_factor = 2 unless set.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from builders import make_shop, utc

from journey.metrics.retention import retention_report
from journey.periods import range_period

# June 2026: [June 1, July 1). Everything is measured as of END = July 1 00:00.
PERIOD = range_period(date(2026, 6, 1), date(2026, 6, 30))
END = utc(2026, 7, 1)


def before_end(days: float):
    return END - timedelta(days=days)


def orders(*spec):
    """(days before END, cents) pairs -> order events."""
    return [("order", before_end(d), cents) for d, cents in spec]


def rate(r):
    return None if r is None else (r.numerator, r.denominator)


def build_example(shop):
    # Repeat buyers (days before END):
    shop.customer("r1", *orders((100, 3000), (80, 3000), (60, 3000)))  # Mar 23, Apr 12, May 2
    shop.customer("r2", *orders((50, 2000), (40, 4000)))  # May 12, May 22
    shop.customer("r3", *orders((31, 1000), (6, 1000)))  # May 31, Jun 25
    shop.customer("r4", *orders((400, 1000), (390, 1000)))  # 2025-05-27, 2025-06-06
    shop.customer("r5", *orders((70, 1000), (60, 1000)))  # Apr 22, May 2
    # One-time buyers:
    shop.customer("o1", *orders((25, 8000)))  # Jun 6
    shop.customer("o2", *orders((10, 1200)))  # Jun 21
    shop.customer("o3", *orders((45, 1500)))  # May 17
    shop.customer("o4", *orders((200, 700)))  # 2025-12-13
    shop.customer("o5", ("visit", before_end(5)))  # never bought
    shop.customer("o6", *orders((22, 6000)), ("refund", before_end(21), 2000))  # Jun 9


def test_retention_report_by_hand(session):
    shop = make_shop(session)
    build_example(shop)
    report = retention_report(session, shop.workspace_id, PERIOD)

    # Buyers before END: r1..r5, o1, o2, o3, o4, o6 = 10; with a second purchase
    # day: r1..r5 = 5.
    assert rate(report.repeat_rate) == (5, 10)
    # As of the period start (June 1): buyers r1, r2, r3 (May 31), r4, r5, o3, o4
    # = 7; second purchase before June 1: r1, r2, r4, r5 = 4 (r3's is June 25).
    assert rate(report.previous_repeat_rate) == (4, 7)

    # Usual gaps (days): r1 40/2 = 20, r2 10, r3 25, r4 10, r5 10 -> median 10.
    assert report.typical_gap_days == 10.0
    assert report.at_risk_factor == 2.0

    # Churn: active at June 1 (first purchase before it, and last purchase +
    # 2k x gap = last + 4 x gap not before it):
    #   r1 May 2 + 80d, r2 May 22 + 40d = July 1, r3 Jun 25 + 100d, r5 May 2 + 40d
    #   = June 11, o3 May 17 + 40d = June 26 -> 5 (r4 and o4 lapsed long before).
    # Lapsed before July 1: r5 (June 11) and o3 (June 26); r2 lapses exactly at
    # July 1, which is "not more than 2k x gap" -> 2 of 5.
    assert rate(report.churn) == (2, 5)

    # At risk on July 1 (silence > 2 x gap and <= 4 x gap):
    #   r1 silent 60d, gap 20: 60 > 40, 60 <= 80         -> at risk
    #   r2 silent 40d, gap 10: 40 > 20, 40 <= 40         -> at risk (boundary)
    #   r3 6d, r4 390d, r5 60d (> 40: lapsed)            -> no
    #   o1 25d, typical gap 10: 25 > 20, 25 <= 40        -> at risk
    #   o2 10d -> no; o3 45d > 40 -> lapsed; o4 lapsed
    #   o6 22d: 22 > 20, 22 <= 40                        -> at risk
    # Value: r1 avg 3000 x 365 / 20 = 54750; r2 avg (2000 + 4000) / 2 = 3000 x
    # 365 / 10 = 109500; o1 one purchase = 8000; o6 (6000 - 2000 refund) = 4000.
    assert report.at_risk_count == 4
    assert report.value_at_risk_cents == 54750 + 109500 + 8000 + 4000
    assert [
        (c.external_id, c.value_at_risk_cents, c.days_since_purchase, c.usual_gap_days)
        for c in report.at_risk
    ] == [
        ("r2", 109500, 40.0, 10.0),
        ("r1", 54750, 60.0, 20.0),
        ("o1", 8000, 25.0, 10.0),
        ("o6", 4000, 22.0, 10.0),
    ]
    r2, r1, o1, o6 = report.at_risk
    assert (r2.purchases, r2.revenue_cents, r2.gap_is_typical) == (2, 6000, False)
    assert (r1.purchases, r1.revenue_cents, r1.gap_is_typical) == (3, 9000, False)
    assert (o1.purchases, o1.revenue_cents, o1.gap_is_typical) == (1, 8000, True)
    assert o6.revenue_cents == 4000
    assert r2.last_purchase == before_end(40)

    # Returning in June (a purchase on a later day than the first): r3 on June 25.
    # In the previous 30 days [May 2, June 1): r1 and r5 (May 2 00:00), r2 (May 22).
    assert report.returning == 1
    assert report.previous_returning == 3


def test_cohort_matrix(session):
    shop = make_shop(session)
    build_example(shop)
    cohorts = retention_report(session, shop.workspace_id, PERIOD).cohorts
    # Twelve cohort months ending with June 2026 (July 2025 .. June 2026); r4's
    # first purchase (May 2025) is older. Cells are months +1 .. +11, None when
    # that month is after June 2026.
    none = [None] * 11
    assert [(c.month, c.customers) for c in cohorts] == [
        ("2025-12", 1),  # o4
        ("2026-03", 1),  # r1: bought again in April (+1) and May (+2), not June (+3)
        ("2026-04", 1),  # r5: May (+1), not June (+2)
        ("2026-05", 3),  # r2, r3, o3: only r3 bought in June (+1)
        ("2026-06", 3),  # o1, o2, o6
    ]
    december, march, april, may, june = ([rate(cell) for cell in c.retained] for c in cohorts)
    assert december == [(0, 1)] * 6 + none[:5]  # January .. June happened
    assert march == [(1, 1), (1, 1), (0, 1), *none[:8]]
    assert april == [(1, 1), (0, 1), *none[:9]]
    assert may == [(1, 3), *none[:10]]
    assert june == none


def test_typical_gap_defaults_to_30_days_without_repeat_buyers(session):
    shop = make_shop(session)
    shop.customer("x1", *orders((61, 500)))  # 61 > 2 x 30 and <= 4 x 30: at risk
    shop.customer("x2", *orders((59, 500)))  # 59 <= 60: fine
    shop.customer("x3", *orders((121, 500)))  # 121 > 120: lapsed
    report = retention_report(session, shop.workspace_id, PERIOD)
    assert report.typical_gap_days is None
    assert [(c.external_id, c.usual_gap_days, c.gap_is_typical) for c in report.at_risk] == [
        ("x1", 30.0, True)
    ]
    assert report.value_at_risk_cents == 500
    # Active on June 1: all three (x3 lapses at END - 121 + 120 days = June 30);
    # lapsed in June: x3.
    assert rate(report.churn) == (1, 3)
    assert rate(report.repeat_rate) == (0, 3)


def test_typical_gap_is_floored_to_the_day(session):
    shop = make_shop(session)
    # Usual gaps 10d18h, 10d18h and 40d: floored to days 10, 10, 40 -> median 10.
    shop.customer("g1", *orders((200, 100), (189.25, 100)))
    shop.customer("g2", *orders((210, 100), (199.25, 100)))
    shop.customer("g3", *orders((300, 100), (260, 100)))
    # Silent 21 days: at risk with a 10-day typical gap (21 > 20), it would not
    # be with 11 days (21 <= 22).
    shop.customer("y1", *orders((21, 900)))
    report = retention_report(session, shop.workspace_id, PERIOD)
    assert report.typical_gap_days == 10.0
    assert [(c.external_id, c.usual_gap_days) for c in report.at_risk] == [("y1", 10.0)]


def test_value_at_risk_total_is_rounded_like_the_list(session):
    shop = make_shop(session)
    # Orders 100 and 70 days before END: gap 30 days, silent 70 > 60 and <= 120.
    # Value: average 1000 x 365 / 30 = 12166.67 -> 12167 cents.
    shop.customer("v1", *orders((100, 1000), (70, 1000)))
    report = retention_report(session, shop.workspace_id, PERIOD)
    assert [c.value_at_risk_cents for c in report.at_risk] == [12167]
    assert report.value_at_risk_cents == 12167


def test_at_risk_factor_comes_from_the_workspace(session):
    shop = make_shop(session, at_risk_factor=1.0)
    # k = 1, typical gap 30 days: at risk when silent 30 < days <= 60.
    shop.customer("k1", *orders((31, 500)))
    shop.customer("k2", *orders((61, 500)))
    shop.customer("k3", *orders((29, 500)))
    report = retention_report(session, shop.workspace_id, PERIOD)
    assert report.at_risk_factor == 1.0
    assert [c.external_id for c in report.at_risk] == ["k1"]
    # Active on June 1 (bought before it, last + 2k x 30 = last + 60 days not
    # before it): k1 (May 31 + 60d) and k2 (May 1 + 60d = June 30); k3 bought in
    # June. Lapsed before July 1: k2 -> 1 of 2.
    assert rate(report.churn) == (1, 2)


def test_empty_retention(session):
    shop = make_shop(session)
    shop.customer("c1", ("visit", before_end(3)))
    report = retention_report(session, shop.workspace_id, PERIOD)
    assert rate(report.repeat_rate) == (0, 0)
    assert report.repeat_rate.value is None
    assert report.cohorts == []
    assert report.at_risk == [] and report.at_risk_count == 0
    assert report.value_at_risk_cents == 0
    assert rate(report.churn) == (0, 0)
    assert (report.returning, report.previous_returning) == (0, 0)


def test_purchases_after_the_period_do_not_make_anyone_a_buyer_before_it(session):
    shop = make_shop(session)
    shop.customer("late", *orders((-5, 100), (-10, 100)))  # July 6 and July 11
    report = retention_report(session, shop.workspace_id, PERIOD)
    assert rate(report.repeat_rate) == (0, 0)
    assert report.cohorts == []
    assert report.at_risk == []
    assert report.returning == 0


@pytest.mark.parametrize("factor", [2.0, 3.0])
def test_at_risk_bounds_scale_with_the_factor(session, factor):
    shop = make_shop(session, at_risk_factor=factor)
    # Repeat buyer with a 10-day gap, silent 25 days: at risk for k = 2 (20 < 25
    # <= 40), not for k = 3 (25 <= 30).
    shop.customer("r", *orders((35, 100), (25, 100)))
    report = retention_report(session, shop.workspace_id, PERIOD)
    assert [c.external_id for c in report.at_risk] == (["r"] if factor == 2.0 else [])


def test_month_under_way_is_marked_in_the_matrix_and_kept_off_the_colour_scale(session):
    """As of June 15 (NOW), June's cells count 15 of 30 days: they are marked as such in
    the report, the text, Slack and the heatmap; a period ending on a month's edge has none."""
    from builders import NOW

    from bot.blocks.reports import retention_message
    from journey.render.charts import cohort_heatmap
    from journey.render.text import render_retention_text
    from tests.slack_render import visible_texts

    shop = make_shop(session)
    for i in range(10):
        events = [("order", utc(2026, 4, 3), 5000), ("order", utc(2026, 5, 4), 5000)]
        if i < 2:
            events.append(("order", utc(2026, 6, 2), 5000))
        shop.customer(f"c{i}", *events)
    june = range_period(date(2026, 6, 1), date(2026, 6, 30))
    report = retention_report(session, shop.workspace_id, june, now=NOW)
    assert report.month_so_far == ("2026-06", 15, 30)
    (april,) = report.cohorts
    assert april.month == "2026-04" and april.partial == 1  # +1 is May, +2 is June
    assert april.retained[0].value == 1.0 and april.retained[1].value == 0.2
    text = render_retention_text(report)
    assert "100%   20%*" in text or "100%  20%*" in text
    assert "* 2026-06 so far (15 of 30 days): not comparable with whole months yet." in text
    shown = "\n".join(visible_texts(retention_message(report, "retention").payload()))
    assert "20%*" in shown and "2026-06 so far (15 of 30 days)" in shown
    assert cohort_heatmap(report).startswith(b"\x89PNG")

    may = range_period(date(2026, 5, 1), date(2026, 5, 31))
    whole = retention_report(session, shop.workspace_id, may, now=NOW)
    assert whole.month_so_far is None and whole.cohorts[0].partial is None
    assert "so far" not in render_retention_text(whole)
