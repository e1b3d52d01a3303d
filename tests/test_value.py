"""The Gamma-Gamma spend model and the value report.

The spend model is checked against lifetimes' GammaGammaFitter and against simulated
stores with known parameters; the value report through the real ingest path, with its
per-customer value recomputed here from lifetimes' own formulas and its channel sentence
appearing only when the channels truly differ.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from journey.metrics.churn_model import BgNbdParams, FitRefused
from journey.metrics.clv import MONTH_DAYS
from journey.metrics.gamma_gamma import (
    GammaGammaParams,
    expected_spend,
    fit_gamma_gamma,
    simulate_gamma_gamma,
)
from journey.metrics.value import value_report
from journey.periods import range_period
from journey.render.sentences import value_sentence
from journey.render.text import render_value_text
from tests.builders import NOW, make_shop, utc

lifetimes = pytest.importorskip("lifetimes")

SPEND = GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
BUYING = BgNbdParams(r=1.0, alpha=25.0, a=1.0, b=3.0)
START = utc(2025, 6, 1)
PERIOD = range_period(date(2025, 6, 1), date(2026, 6, 14))


def test_spend_model_agrees_with_lifetimes_and_recovers_the_truth():
    rng = np.random.default_rng(5)
    x = rng.integers(1, 8, size=3000)
    m = simulate_gamma_gamma(SPEND, x, rng)
    fit = fit_gamma_gamma(x, m)
    ref = lifetimes.GammaGammaFitter().fit(x, m)
    np.testing.assert_allclose(
        fit.params.as_array(), ref.params_[["p", "q", "v"]].to_numpy(), rtol=1e-3
    )
    np.testing.assert_allclose(
        expected_spend(fit.params, x, m),
        ref.conditional_expected_average_profit(x, m),
        rtol=1e-6,
    )
    # 3,000 repeat buyers pin the population's mean spend down near the truth.
    assert fit.params.mean_spend == pytest.approx(SPEND.mean_spend, rel=0.1)


def test_spend_model_refuses_too_few_repeat_buyers():
    with pytest.raises(FitRefused, match="at least 30 repeat buyers"):
        fit_gamma_gamma([1, 2, 3], [10.0, 12.0, 9.0])


def test_spend_model_refuses_spend_that_depends_on_frequency():
    rng = np.random.default_rng(9)
    x = rng.integers(1, 10, size=500)
    m = x * 20.0 * rng.gamma(20, 1 / 20, size=500)  # frequent buyers spend more each time
    with pytest.raises(FitRefused, match="buy more often also spend more"):
        fit_gamma_gamma(x, m)


def simulate_customer(rng: np.random.Generator, horizon_days: float) -> list[tuple[float, int]]:
    """One BG/NBD buyer's purchase times (days after START) with Gamma-Gamma values (cents)."""
    first = rng.uniform(0, horizon_days - 1)
    lam = rng.gamma(BUYING.r, 1 / BUYING.alpha)
    p_drop = rng.beta(BUYING.a, BUYING.b)
    nu = rng.gamma(SPEND.q, 1 / SPEND.gamma)
    times = [first]
    while True:
        nxt = times[-1] + rng.exponential(1 / lam)
        if nxt >= horizon_days:
            break
        times.append(nxt)
        if rng.random() < p_drop:
            break
    return [(t, max(1, round(rng.gamma(SPEND.p, 1 / nu) * 100))) for t in times]


def build_store(session, channels: dict[str, tuple[int, float]], seed: int):
    """Customers per channel: (how many, share who buy); the others only visit."""
    rng = np.random.default_rng(seed)
    shop = make_shop(session)
    horizon = (NOW - START).total_seconds() / 86400
    for name, (n, buy_share) in channels.items():
        customers = {}
        for i in range(n):
            if rng.random() < buy_share:
                buys = simulate_customer(rng, horizon)
                customers[f"{name}-{i}"] = [
                    ("order", START + timedelta(days=t), cents) for t, cents in buys
                ]
            else:
                seen = START + timedelta(days=float(rng.uniform(0, horizon - 1)))
                customers[f"{name}-{i}"] = [("visit", seen)]
        shop.many(customers, channel=name)
    return shop


def test_value_per_customer_is_expected_purchases_times_spend_discounted(session):
    shop = build_store(session, {"ads": (500, 1.0)}, seed=1)
    report = value_report(session, shop.workspace_id, PERIOD, now=NOW, discount_rate=0.1)
    assert report.method == "models", report.fallback_reason

    # Recompute every buyer's value with lifetimes' formulas from the fitted parameters.
    from journey.metrics.churn import read_summary
    from journey.models.types import to_epoch

    s = read_summary(session, shop.workspace_id, to_epoch(report.as_of))
    bgf = lifetimes.BetaGeoFitter()
    bgf.params_ = __import__("pandas").Series(
        {"r": report.r, "alpha": report.alpha, "a": report.a, "b": report.b}
    )
    ggf = lifetimes.GammaGammaFitter()
    ggf.params_ = __import__("pandas").Series({"p": report.p, "q": report.q, "v": report.gamma})
    m = s.repeat_spend()
    spend = np.where(
        s.x > 0,
        ggf.conditional_expected_average_profit(s.x, np.where(s.x > 0, m, 1.0)),
        report.p * report.gamma / (report.q - 1),
    )
    previous = np.zeros(s.size)
    value = np.zeros(s.size)
    for k in range(1, 13):
        cumulative = bgf.conditional_expected_number_of_purchases_up_to_time(
            k * MONTH_DAYS, s.x, s.t_x, s.T
        )
        value += (cumulative - previous) / 1.1 ** (k / 12)
        previous = cumulative
    value *= spend
    (ads,) = report.channels
    assert ads.customers == ads.buyers == s.size == 500
    assert ads.value_per_customer_cents == pytest.approx(value.mean() * 100, abs=1)
    low, high = ads.value_per_customer_interval
    assert low < ads.value_per_customer_cents < high
    assert report.value_per_buyer_cents == pytest.approx(value.mean() * 100, abs=1)


def test_channel_sentence_only_when_the_channels_truly_differ(session):
    shop = build_store(session, {"referral": (400, 0.9), "facebook": (400, 0.15)}, seed=2)
    report = value_report(session, shop.workspace_id, PERIOD, now=NOW)
    assert report.method == "models", report.fallback_reason
    by = {c.channel: c for c in report.channels}
    assert (
        by["referral"].value_per_customer_interval[0]
        > by["facebook"].value_per_customer_interval[1]
    )
    assert report.best_channel == "referral" and report.worst_channel == "facebook"
    assert value_sentence(report).startswith("Customers from referral are worth the most")


def test_no_channel_sentence_when_they_differ_by_noise_only(session):
    shop = build_store(session, {"google": (400, 0.5), "bing": (400, 0.5)}, seed=3)
    report = value_report(session, shop.workspace_id, PERIOD, now=NOW)
    assert report.method == "models", report.fallback_reason
    assert report.best_channel is None and report.worst_channel is None
    assert value_sentence(report) is None
    assert "No channel's customers are clearly worth more" in render_value_text(report)


def test_value_report_says_why_when_spend_follows_frequency(session):
    shop = make_shop(session)
    rng = np.random.default_rng(4)
    horizon = (NOW - START).total_seconds() / 86400
    customers = {}
    for i in range(400):
        buys = simulate_customer(rng, horizon)
        # Each purchase costs more the more often this customer buys.
        customers[f"c{i}"] = [
            ("order", START + timedelta(days=t), len(buys) * 3000 + int(rng.integers(0, 300)))
            for t, _ in buys
        ]
    shop.many(customers, channel="ads")
    report = value_report(session, shop.workspace_id, PERIOD, now=NOW)
    assert report.method == "unavailable"
    assert "spend more per purchase" in report.fallback_reason
    text = render_value_text(report)
    assert "Values unavailable" in text and "assumes the two are unrelated" in text
    (ads,) = report.channels
    assert ads.customers == 400 and ads.value_per_customer_cents is None


def test_slack_value_reply_escapes_channel_names_and_has_a_chart(engine, session):
    """`/journey value` through the same service Slack and the console use; a channel named
    like Slack markup shows as typed and pings nobody; the chart is a PNG."""
    from bot.commands.language import parse
    from bot.commands.service import ReportService
    from bot.listeners.replies import chart_png
    from tests.slack_render import findings, visible_texts

    shop = build_store(
        session, {"<!channel> promo": (300, 0.9), "Tom & Jerry": (300, 0.15)}, seed=2
    )
    session.commit()
    reply = ReportService(engine).command_reply(
        shop.workspace_id, parse("value 2025-06-01..2026-06-14")
    )
    payload = reply.message.payload()
    assert findings(payload) == []
    shown = "\n".join(visible_texts(payload))
    assert "Customers from <!channel> promo are worth the most" in shown
    assert "Tom & Jerry" in shown and "95% range" in shown
    png, title = chart_png(reply)
    assert png.startswith(b"\x89PNG") and title == "value per channel"


def test_churn_list_shows_the_value_reports_12_month_value(session):
    """One number: a listed customer's 12-month value in /journey churn and its CSV is the
    value report's value of that customer."""
    from journey.metrics.churn import churn_report
    from journey.metrics.value import fit_value_model
    from journey.models.types import to_epoch
    from journey.render.csv_export import at_risk_csv

    shop = build_store(session, {"ads": (600, 1.0)}, seed=6)
    churn = churn_report(session, shop.workspace_id, PERIOD, limit=50, now=NOW)
    assert churn.method == "bg_nbd" and churn.value_12m_reason is None and churn.at_risk
    model = fit_value_model(session, shop.workspace_id, to_epoch(churn.as_of), 0.10)
    value = dict(zip(model.summary.customer_id.tolist(), model.value.tolist(), strict=True))
    for row in churn.at_risk:
        assert row.value_12m_cents == pytest.approx(value[row.customer_id] * 100, abs=1)
    header, first = at_risk_csv(churn).splitlines()[:2]
    column = header.split(",").index("value_12m")
    assert first.split(",")[column] == f"{churn.at_risk[0].value_12m_cents / 100:.2f}"


def test_large_channels_bootstrap_through_blocks_agrees_with_resampling_customers():
    """Above EXACT_BOOTSTRAP_MAX customers the interval comes from blocks of sorted values
    (a million-customer channel would otherwise need a billion draws); it must give the
    interval the customer-by-customer bootstrap gives, within the Monte Carlo error of
    1,000 samples, on skewed values like real 12-month values (most customers worth 0)."""
    from journey.metrics import value as value_module

    rng = np.random.default_rng(11)
    n = value_module.EXACT_BOOTSTRAP_MAX * 4
    values = rng.lognormal(3.0, 1.5, size=n) * (rng.random(n) < 0.3)
    se = values.std() / np.sqrt(n)

    blocked = value_module.bootstrap_interval(values, np.random.default_rng(1))
    exact = np.empty(1000)
    draw = np.random.default_rng(2)
    for i in range(0, 1000, 100):
        exact[i : i + 100] = values[draw.integers(0, n, size=(100, n))].mean(axis=1)
    reference = np.percentile(exact, [2.5, 97.5])
    # A 2.5% percentile of 1,000 samples has a standard error of about 0.09 standard errors
    # of the mean; allow three of each, both for the blocked interval and the reference.
    assert blocked == pytest.approx(tuple(reference), abs=0.4 * se)
    # Skewed values give a skewed interval: more room above the mean than below.
    assert blocked[1] - values.mean() > values.mean() - blocked[0]
    # Seeded: the same report twice gives the same interval.
    assert value_module.bootstrap_interval(values, np.random.default_rng(1)) == blocked
