"""The Digest object: headline numbers against the previous period, the funnel's biggest
drop and its playbook, valuable customers newly at risk, review candidates, next send."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from builders import NOW, make_shop, utc
from test_churn_report import build, by_hand, simulate_shop

from bot.blocks.digest import digest_message
from journey.metrics.churn import AT_RISK_BELOW, LOST_BELOW, churn_report
from journey.metrics.churn_model import BgNbdParams, p_alive
from journey.metrics.funnel import funnel_report
from journey.periods import range_period
from journey.playbooks import playbook_for_step
from journey.schedule.digests import build_digest, digest_for_subscription, digest_period
from journey.schedule.subscriptions import subscribe

# Monday 15 June 2026 09:00 in Paris; the week before is 8-14 June (workspace in UTC).
SENT = datetime(2026, 6, 15, 7, 0, tzinfo=UTC)


def fill(session):
    shop = make_shop(session, "shop")
    shop.customer("c1", ("order", utc(2026, 6, 2, 10), 5000), ("order", utc(2026, 6, 10, 10), 3000))
    shop.customer("c2", ("order", utc(2026, 6, 9, 10), 2000), ("refund", utc(2026, 6, 11, 10), 500))
    shop.customer("c3", ("order", utc(2026, 6, 10, 9), 1000), ("order", utc(2026, 6, 10, 15), 1000))
    shop.customer("c4", ("order", utc(2026, 6, 3, 10), 4000))
    shop.customer("c5", ("visit", utc(2026, 6, 12, 10)))
    # Valuable (top fifth by revenue), buying every 31 days: at risk from 9 June (k = 2).
    shop.customer(
        "v1",
        ("order", utc(2026, 3, 8, 10), 50000),
        ("order", utc(2026, 4, 8, 10), 50000),
        name="Vera",
    )
    # Another workspace buying in the same days must not count.
    other = make_shop(session, "other")
    other.customer("x1", ("order", utc(2026, 6, 10, 10), 99900), ("order", utc(2026, 6, 12), 100))
    session.commit()
    return shop


def headline(digest, key):
    return next(h for h in digest.headlines if h.key == key)


def test_digest_period_is_the_complete_local_days_before_the_send():
    week = digest_period("weekly", SENT, "UTC")
    assert (week.start, week.end) == (utc(2026, 6, 8), utc(2026, 6, 15))
    assert week.label == "the 7 days to 2026-06-14"
    day = digest_period("daily", SENT, "UTC")
    assert (day.start, day.end) == (utc(2026, 6, 14), utc(2026, 6, 15))
    # 03:00 in New York on the 15th: the 14th is the last complete local day there.
    ny = digest_period("weekly", SENT, "America/New_York")
    assert ny.start == datetime(2026, 6, 8, 4, tzinfo=UTC) and ny.end == datetime(
        2026, 6, 15, 4, tzinfo=UTC
    )
    month = digest_period("monthly", utc(2026, 3, 31, 8), "UTC")
    assert (month.start.date(), month.end.date()) == (date(2026, 2, 28), date(2026, 3, 31))


def test_headlines_against_the_previous_period(session):
    fill(session)
    digest = build_digest(session, "shop", digest_period("weekly", SENT, "UTC"), now=NOW)
    assert digest.has_data and digest.notes == []
    new = headline(digest, "new_customers")
    assert (new.current, new.previous, new.change) == (2, 2, 0.0)
    purchases = headline(digest, "purchases")
    assert (purchases.current, purchases.previous, purchases.change) == (4, 2, 1.0)
    revenue = headline(digest, "revenue")
    assert (revenue.current, revenue.previous, revenue.unit) == (6500, 9000, "cents")
    assert revenue.change == pytest.approx(-2500 / 9000)
    repeat = headline(digest, "repeat_rate")
    assert repeat.rate is not None and (repeat.rate.numerator, repeat.rate.denominator) == (1, 3)
    assert repeat.previous_rate is not None and repeat.previous_rate.denominator == 2
    assert repeat.current == pytest.approx(1 / 3) and repeat.previous == 0
    assert repeat.change is None and repeat.delta_points == pytest.approx(100 / 3)
    assert digest.currency == "USD"


def test_biggest_drop_with_its_playbook(session):
    fill(session)
    period = digest_period("weekly", SENT, "UTC")
    digest = build_digest(session, "shop", period, now=NOW)
    funnel = funnel_report(session, "shop", period)
    assert digest.biggest_drop == funnel.biggest_drop
    assert digest.biggest_drop is not None
    assert (digest.biggest_drop.from_stage, digest.biggest_drop.to_stage) == (
        "awareness",
        "consideration",
    )
    assert digest.biggest_drop_playbook == playbook_for_step("consideration")
    assert digest.funnel_entered == 3  # c2, c3, c5 were first seen in the week


def test_newly_at_risk_by_the_churn_reports_heuristic_and_review_candidates(session):
    fill(session)  # a handful of customers: the churn model refuses, the heuristic decides
    period = digest_period("weekly", SENT, "UTC")
    digest = build_digest(session, "shop", period, now=NOW)
    report = churn_report(session, "shop", period, now=NOW)
    assert report.method == digest.at_risk_method == "heuristic"
    assert [c.external_id for c in digest.at_risk] == ["v1"]
    vera = digest.at_risk[0]
    assert vera.name == "Vera" and vera.p_alive is None
    assert vera.value_at_risk_cents == round(50000 * 365 / 31)
    assert (digest.at_risk_count, digest.at_risk_value_cents) == (1, vera.value_at_risk_cents)
    # The same customer, and the same value, as `/journey churn` lists for the period.
    (same,) = [c for c in report.at_risk if c.external_id == "v1"]
    assert same == vera
    assert digest.at_risk_total == report.at_risk_count
    # 3 to 14 days since the last purchase, c2 excluded by its refund: repeat buyers first.
    assert digest.review_candidates == 3
    assert digest.review_names == ["c1", "c4", "c3"]
    # The week before, Vera was not yet at risk; the week after she is no longer new.
    before = build_digest(session, "shop", digest_period("weekly", SENT - timedelta(days=7), "UTC"))
    assert before.at_risk == []
    after = build_digest(session, "shop", digest_period("weekly", SENT + timedelta(days=7), "UTC"))
    assert "v1" not in [c.external_id for c in after.at_risk] and after.at_risk_total >= 2


def test_newly_at_risk_by_the_churn_model_are_the_churn_reports_customers(session):
    """With enough customers the churn report fits BG/NBD: the digest names those its
    P(alive) puts at risk at the period's end who were not at its start."""
    purchases = simulate_shop(400, seed=2026)
    shop = make_shop(session, "shop")
    build(shop, purchases)
    period = digest_period("monthly", SENT, "UTC")  # 15 May to 14 June
    digest = build_digest(session, "shop", period, now=NOW)
    report = churn_report(session, "shop", period, limit=1000, now=NOW)
    assert report.method == digest.at_risk_method == "bg_nbd"
    assert digest.at_risk_total == report.at_risk_count

    params = BgNbdParams(report.r, report.alpha, report.a, report.b)

    def at_risk_at(moment: datetime) -> set[str]:
        hand = by_hand(purchases, moment)
        x, t_x, T = (np.array(v, dtype=float) for v in list(zip(*hand.values(), strict=True))[:3])
        alive = p_alive(params, x, t_x, T)
        risk = (x > 0) & (alive >= LOST_BELOW) & (alive < AT_RISK_BELOW)
        return {cid for cid, r in zip(hand, risk, strict=True) if r}

    newly = at_risk_at(period.end) - at_risk_at(period.start)
    assert at_risk_at(period.end) == {c.external_id for c in report.at_risk}
    assert 5 < digest.at_risk_count == len(newly) < report.at_risk_count
    listed = {c.external_id: c for c in report.at_risk}
    ranked = sorted(newly, key=lambda cid: (-listed[cid].value_at_risk_cents, cid))
    assert [c.external_id for c in digest.at_risk] == ranked[:5]
    for c in digest.at_risk:  # the very numbers /journey churn shows for them
        same = listed[c.external_id]
        assert (c.customer_id, c.name, c.purchases, c.revenue_cents, c.last_purchase) == (
            same.customer_id,
            same.name,
            same.purchases,
            same.revenue_cents,
            same.last_purchase,
        )
        assert c.p_alive == pytest.approx(same.p_alive, rel=1e-9)
        assert c.value_at_risk_cents == pytest.approx(same.value_at_risk_cents, abs=1)
        assert c.expected_purchases == pytest.approx(same.expected_purchases, rel=1e-9)
    assert digest.at_risk_value_cents == pytest.approx(
        sum(listed[cid].value_at_risk_cents for cid in newly), abs=len(newly)
    )


def test_next_send_in_the_subscribers_timezone(session):
    fill(session)
    sub = subscribe(
        session, "shop", "C1", timezone="Europe/Paris", day_of_week=0, now=SENT - timedelta(days=1)
    )
    digest = digest_for_subscription(session, sub, SENT, now=SENT)
    assert digest.timezone == "Europe/Paris" and digest.cadence == "weekly"
    assert digest.scheduled_at == SENT
    assert digest.next_send_at == SENT + timedelta(days=7)
    assert digest.subscription_id == sub.id
    assert (digest.period.start, digest.period.end) == (utc(2026, 6, 8), utc(2026, 6, 15))


def test_a_workspace_without_data_gets_a_digest_that_says_so(session):
    make_shop(session, "empty")
    session.commit()
    digest = build_digest(session, "empty", digest_period("weekly", SENT, "UTC"), now=NOW)
    assert digest.has_data is False
    assert digest.headlines == [] and digest.biggest_drop is None
    assert digest.notes and digest.notes[0].startswith("No customer data yet")


def test_visits_without_purchases_say_there_were_no_purchases(session):
    shop = make_shop(session, "shop")
    shop.customer("old", ("order", utc(2026, 3, 2, 10), 5000))
    shop.customer("new", ("visit", utc(2026, 6, 10, 10)))
    session.commit()
    digest = build_digest(session, "shop", digest_period("weekly", SENT, "UTC"), now=NOW)
    assert digest.has_data and not digest.quiet
    assert all(h.current == 0 and h.previous == 0 for h in digest.headlines)
    assert digest.notes == ["No purchases in this period or the one before it."]


def test_old_data_but_nothing_in_this_period_nor_the_one_before_is_one_line(session):
    fill(session)
    august = utc(2026, 8, 3, 8)  # the weeks of 20 July and 27 July: nothing happened
    digest = build_digest(session, "shop", digest_period("weekly", august, "UTC"), now=august)
    assert digest.has_data and digest.quiet and digest.notes == []
    assert digest.last_activity_at == utc(2026, 6, 12, 10)  # c5's visit
    message = digest_message(digest)
    body = json.dumps(message.payload())
    assert message.text == (
        "Weekly digest · shop · 2026-07-27 to 2026-08-02. No customer activity this week "
        "(2026-07-27 to 2026-08-02) nor the week before; the latest was on 2026-06-12."
    )
    for zero in ("New customers", "Purchases", "Revenue", "Returning buyers", "Funnel", "drop-off"):
        assert zero not in body
    kinds = [b["type"] for b in message.payload()["blocks"]]
    assert kinds == ["header", "section", "context", "actions"]  # the line, then the footer
    # A week with activity the week before is not quiet: its zeros are news.
    after = build_digest(session, "shop", digest_period("weekly", utc(2026, 6, 22, 8), "UTC"))
    assert not after.quiet


def test_the_funnel_is_shown_stage_by_stage_with_its_conversions(session):
    fill(session)
    digest = build_digest(session, "shop", digest_period("weekly", SENT, "UTC"), now=NOW)
    assert digest.funnel is not None and digest.funnel.entered == digest.funnel_entered == 3
    body = json.dumps(digest_message(digest).payload(), ensure_ascii=False)
    assert (
        "*Funnel* (3 customers entered, 2 the period before; % of the stage before): "
        "awareness 3 → consideration 2 (67%) → decision 2 (100%) → purchase 2 (100%)"
    ) in body
    # The funnel comes before its biggest drop, which keeps its playbook.
    assert body.index("*Funnel*") < body.index("*Biggest drop-off:*")


# --- the value line: the channel whose customers are worth most ---------------------------


def test_weekly_digest_names_the_channel_worth_most_with_the_value_reports_figure(session):
    """Only when the value report separates the channel (its interval above every other
    named channel's), with the report's own value per customer over the digest's 90-day
    window; a channel named like Slack markup is shown as typed and pings nobody."""
    from test_value import build_store

    from journey.metrics.value import value_report
    from journey.schedule.digests import VALUE_WINDOW_DAYS
    from tests.slack_render import findings, visible_texts

    shop = build_store(session, {"<!channel> promo": (900, 0.9), "facebook": (900, 0.1)}, seed=2)
    session.commit()
    period = digest_period("weekly", SENT, "UTC")
    digest = build_digest(session, shop.workspace_id, period, cadence="weekly", now=SENT)
    best = digest.best_channel
    assert best is not None and best.channel == "<!channel> promo"

    last = date(2026, 6, 14)
    window = range_period(last - timedelta(days=VALUE_WINDOW_DAYS - 1), last)
    assert (best.window.start, best.window.end) == (window.start, window.end)
    report = value_report(session, shop.workspace_id, window, now=SENT)
    row = next(c for c in report.channels if c.channel == "<!channel> promo")
    assert report.best_channel == best.channel
    assert best.value_per_customer_cents == row.value_per_customer_cents
    assert best.interval == row.value_per_customer_interval
    assert best.customers == row.customers < 900  # the window, not every customer

    payload = digest_message(digest).payload()
    assert findings(payload) == []
    shown = "\n".join(visible_texts(payload))
    line = next(t for t in shown.splitlines() if "Most valuable customers" in t)
    assert "those from <!channel> promo" in line
    assert f"${row.value_per_customer_cents / 100:,.2f} each over the next 12 months" in line
    assert "`/journey value`" in line

    # A daily digest of the same store does not repeat it every morning.
    daily = build_digest(
        session, shop.workspace_id, digest_period("daily", SENT, "UTC"), cadence="daily", now=SENT
    )
    assert daily.best_channel is None


def test_no_value_line_when_channels_differ_by_noise_or_the_models_refuse(session):
    from test_value import START, build_store, simulate_customer

    period = digest_period("weekly", SENT, "UTC")
    noise = build_store(session, {"google": (900, 0.5), "bing": (900, 0.5)}, seed=3)
    session.commit()
    digest = build_digest(session, noise.workspace_id, period, cadence="weekly", now=SENT)
    assert digest.best_channel is None
    assert "Most valuable" not in json.dumps(digest_message(digest).payload())

    # Every "ads" customer buys and "email" customers only visit (a true difference), but
    # spend grows with purchase frequency: the spend model refuses, so no line.
    refused = make_shop(session, "refused")
    rng = np.random.default_rng(4)
    horizon = (NOW - START).total_seconds() / 86400
    buyers, visitors = {}, {}
    for i in range(400):
        buys = simulate_customer(rng, horizon)
        buyers[f"a{i}"] = [
            ("order", START + timedelta(days=t), len(buys) * 3000 + int(rng.integers(0, 300)))
            for t, _ in buys
        ]
        visitors[f"e{i}"] = [("visit", START + timedelta(days=float(rng.uniform(0, horizon))))]
    refused.many(buyers, channel="ads")
    refused.many(visitors, channel="email")
    session.commit()
    digest = build_digest(session, "refused", period, cadence="weekly", now=SENT)
    assert digest.has_data and digest.best_channel is None
    assert "Most valuable" not in json.dumps(digest_message(digest).payload())
