"""Edge cases found in review: each pins down a definition a user relies on."""

from datetime import timedelta

import pytest

from journey.errors import JourneyError
from journey.metrics.funnel import funnel_report
from journey.metrics.retention import retention_report
from journey.periods import Period, parse_period, range_period
from tests.builders import NOW, days_ago, make_shop, utc


def test_two_purchase_days_minutes_apart_count_as_a_one_day_gap(session):
    # 23:59 and 00:01 the next day: two purchase days, two minutes apart. With the
    # raw gap the customer would be "at risk" after 4 minutes (k=2) and worth
    # 365 days / 2 minutes of purchases; floored at a day, they are at risk after
    # 2 days of silence and worth avg * 365 a year.
    shop = make_shop(session)
    first = utc(2026, 6, 1, 23, 59)
    shop.customer("c1", ("order", first, 1000), ("order", first + timedelta(minutes=2), 1000))
    period = range_period(utc(2026, 6, 1).date(), utc(2026, 6, 3).date())  # ends 06-04 00:00
    report = retention_report(session, "shop", period, now=NOW)
    # Silence at the end: 06-04 00:00 - 06-02 00:01 = 1 day 23h59m: within (2, 4] days? No.
    assert report.at_risk_count == 0
    later = range_period(utc(2026, 6, 1).date(), utc(2026, 6, 4).date())  # silence ~3 days
    report = retention_report(session, "shop", later, now=NOW)
    assert report.at_risk_count == 1
    (customer,) = report.at_risk
    assert customer.usual_gap_days == 1.0
    # average purchase 1000 cents x 365 purchases a year at a one-day gap
    assert customer.value_at_risk_cents == 1000 * 365


def test_refunds_stored_as_negative_amounts_still_reduce_revenue(session):
    shop = make_shop(session)
    shop.customer("c1", ("order", days_ago(10), 5000), ("refund", days_ago(9), -2000))
    shop.customer("c2", ("order", days_ago(10), 5000), ("refund", days_ago(9), 2000))
    assert shop.journey("c1")["revenue_cents"] == 3000
    assert shop.journey("c2")["revenue_cents"] == 3000


def test_a_period_running_into_the_future_is_judged_as_of_now(session):
    # Bought 10 days before NOW with a 5-day typical gap: at risk now (10 > 2*5? no:
    # exactly 10 is not > 10), so use 11 days. The period ends 20 days after NOW;
    # judged at its end the silence would be 31 days > 4*5: lapsed, not at risk.
    shop = make_shop(session)
    shop.customer("r1", ("order", days_ago(40), 1000), ("order", days_ago(35), 1000))  # gap 5 days
    shop.customer("c1", ("order", days_ago(11), 1000))
    period = Period(NOW - timedelta(days=10), NOW + timedelta(days=20), "future")
    report = retention_report(session, "shop", period, now=NOW)
    assert [a.external_id for a in report.at_risk] == ["c1"]


def test_unknown_channel_filter_finds_customers_without_a_channel(session):
    shop = make_shop(session)
    shop.customer("a", ("visit", days_ago(3)))
    shop.customer("b", ("visit", days_ago(3)), channel="ads")
    period = parse_period("30d", NOW)
    assert funnel_report(session, "shop", period, channel="unknown").entered == 1
    assert funnel_report(session, "shop", period, channel="ads").entered == 1
    with pytest.raises(JourneyError, match="groups the smaller channels"):
        funnel_report(session, "shop", period, channel="other")


def test_unknown_timezone_is_a_clear_error():
    with pytest.raises(JourneyError, match="Unknown timezone 'Mars/Olympus'"):
        parse_period("this-month", NOW, "Mars/Olympus")
