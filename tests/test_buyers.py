"""The one read of buyers and the channel cohort (journey/metrics/buyers.py), and the fits
shared by the reports of one request.

The read's fast paths (SQLite's group_concat, PostgreSQL's binary string_agg) must give
exactly what reading row by row gives, and both what the store's events say; the overview
and the digest must fit each model once and still give the numbers each report gives alone.
"""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date

import numpy as np
import pytest

from journey.metrics import buyers
from journey.metrics.buyers import read_summary, read_summary_and_cohort
from journey.metrics.churn import churn_report
from journey.metrics.value import recent_window, value_report
from journey.models.types import to_epoch
from journey.periods import range_period
from journey.reporting import build_overview
from tests.builders import make_shop, utc
from tests.test_value import NOW, PERIOD, build_store

DAY = 86400


def small_store(session):
    """Every kind of row the read must tell apart (as of 2026-03-01, period from 2025-06-01)."""
    shop = make_shop(session)
    # In the period, bought twice before the as-of time.
    shop.customer(
        "a",
        ("order", utc(2026, 1, 10, 12), 1000),
        ("order", utc(2026, 2, 1, 9), 2500),
        channel="ads",
    )
    # In the period, no channel, only visited.
    shop.customer("b", ("visit", utc(2026, 2, 10)))
    # Bought before the period (one day, two orders): a buyer outside the cohort.
    shop.customer(
        "d",
        ("order", utc(2025, 3, 1, 10), 1500),
        ("order", utc(2025, 3, 1, 18), 500),
        channel="mail",
    )
    # Bought before and after the as-of time, with a refund before it: recounted.
    shop.customer(
        "e",
        ("order", utc(2026, 1, 5, 8), 2000),
        ("order", utc(2026, 1, 20, 8), 3000),
        ("refund", utc(2026, 1, 25, 8), 500),
        ("order", utc(2026, 4, 1, 8), 4000),
        channel="ads",
    )
    # In the period, first bought after the as-of time.
    shop.customer(
        "g", ("visit", utc(2026, 2, 15)), ("order", utc(2026, 3, 10), 5000), channel="mail"
    )
    # Visited before the period, never bought: not read at all.
    shop.customer("f", ("visit", utc(2025, 1, 1)), channel="ads")
    return shop


AS_OF = to_epoch(utc(2026, 3, 1))
SMALL_PERIOD = range_period(date(2025, 6, 1), date(2026, 6, 14))


def test_fast_read_gives_what_the_row_by_row_read_gives(session):
    shop = small_store(session)
    for cohort_only in (False, True):
        fast = buyers._read_rows(
            session, shop.workspace_id, AS_OF, SMALL_PERIOD, cohort_only=cohort_only
        )
        plain = buyers._read_rows(
            session, shop.workspace_id, AS_OF, SMALL_PERIOD, cohort_only=cohort_only, plain=True
        )
        for f in fields(fast):
            if f.name in ("channel", "names"):
                continue
            np.testing.assert_array_equal(getattr(fast, f.name), getattr(plain, f.name), f.name)
        assert [fast.names[c] for c in fast.channel] == [plain.names[c] for c in plain.channel]


def test_summary_and_cohort_are_what_the_events_say(session):
    shop = small_store(session)
    ids = {ext: shop.id(ext) for ext in "abdefg"}
    summary, cohort = read_summary_and_cohort(session, shop.workspace_id, AS_OF, SMALL_PERIOD)

    expected = {  # x, t_x, T (days), revenue, first-day cents
        "a": (1, 22, 49, 3500, 1000),
        "d": (0, 0, 364, 2000, 2000),
        # Recounted from the events before the as-of time: the April order is not seen.
        "e": (1, 15, 54, 4500, 2000),
    }
    assert summary.customer_id.tolist() == sorted(ids[e] for e in expected)
    for ext, (x, t_x, T, revenue, first_day) in expected.items():
        i = summary.customer_id.tolist().index(ids[ext])
        got = (
            summary.x[i],
            summary.t_x[i],
            summary.T[i],
            summary.revenue_cents[i],
            summary.first_day_cents[i],
        )
        assert got == (x, t_x, T, revenue, first_day), ext
    alone = read_summary(session, shop.workspace_id, AS_OF)
    for f in fields(summary):
        np.testing.assert_array_equal(getattr(summary, f.name), getattr(alone, f.name))

    state = shop.journeys()
    members = ["a", "b", "e", "g"]
    assert cohort.ids.tolist() == sorted(ids[e] for e in members)
    by_id = {int(i): k for k, i in enumerate(cohort.ids)}
    channel = {e: cohort.names[cohort.channel[by_id[ids[e]]]] for e in members}
    assert channel == {"a": "ads", "b": "unknown", "e": "ads", "g": "mail"}
    bought = {e: bool(cohort.bought[by_id[ids[e]]]) for e in members}
    assert bought == {"a": True, "b": False, "e": True, "g": False}
    for e in members:  # all their revenue, as the state has it
        assert cohort.revenue[by_id[ids[e]]] == (state[e]["revenue_cents"] or 0)


def test_an_empty_workspace_reads_nothing(session):
    shop = make_shop(session)
    summary, cohort = read_summary_and_cohort(session, shop.workspace_id, AS_OF, SMALL_PERIOD)
    assert summary.size == 0 and cohort.ids.size == 0 and cohort.names == []


def _comparable(report):
    return replace(report, generated_at=None, business=None)


def test_overview_reads_and_fits_once_and_gives_each_reports_numbers(session, monkeypatch):
    shop = build_store(session, {"ads": (300, 0.9), "mail": (200, 0.5)}, seed=11)
    calls = {"read": 0, "bg_nbd": 0, "gamma_gamma": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(buyers, "_read_rows", counted("read", buyers._read_rows))
    monkeypatch.setattr(buyers, "fit_bg_nbd", counted("bg_nbd", buyers.fit_bg_nbd))
    monkeypatch.setattr(buyers, "fit_gamma_gamma", counted("gamma_gamma", buyers.fit_gamma_gamma))

    overview = build_overview(session, shop.workspace_id, PERIOD, now=NOW)
    assert overview.churn.method == "bg_nbd" and overview.value.method == "models"
    assert calls == {"read": 1, "bg_nbd": 1, "gamma_gamma": 1}

    alone_churn = churn_report(session, shop.workspace_id, PERIOD, limit=0, now=NOW)
    alone_value = value_report(session, shop.workspace_id, recent_window(PERIOD), now=NOW)
    assert _comparable(overview.churn) == _comparable(alone_churn)
    assert _comparable(overview.value) == _comparable(alone_value)
    assert calls == {"read": 3, "bg_nbd": 3, "gamma_gamma": 3}


@pytest.mark.parametrize("churn_first", [True, False])
def test_shared_fits_give_the_same_reports_in_either_order(session, churn_first):
    shop = build_store(session, {"ads": (300, 0.9)}, seed=12)
    fits = buyers.SharedFits()
    if churn_first:
        churn = churn_report(session, shop.workspace_id, PERIOD, limit=10, now=NOW, fits=fits)
        value = value_report(session, shop.workspace_id, PERIOD, now=NOW, fits=fits)
    else:
        value = value_report(session, shop.workspace_id, PERIOD, now=NOW, fits=fits)
        churn = churn_report(session, shop.workspace_id, PERIOD, limit=10, now=NOW, fits=fits)
    assert _comparable(churn) == _comparable(
        churn_report(session, shop.workspace_id, PERIOD, limit=10, now=NOW)
    )
    assert _comparable(value) == _comparable(
        value_report(session, shop.workspace_id, PERIOD, now=NOW)
    )
