"""The churn report on the store (SQLite and PostgreSQL) and through `journey report churn`.

A shop of BG/NBD customers is built through the real ingest path; the report's
summary, parameters and scores are checked against the same quantities worked
out here from the purchases themselves (day resolution, as of the period's end).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from builders import DAY, NOW, make_shop, utc

from journey import cli
from journey.db import make_engine, session_scope, upgrade
from journey.metrics.churn import AT_RISK_BELOW, LOST_BELOW, churn_report
from journey.metrics.churn_model import (
    BgNbdParams,
    expected_purchases_if_alive,
    fit_bg_nbd,
    p_alive,
)
from journey.metrics.retention import retention_report
from journey.periods import range_period
from journey.reporting import build_report, workspace_period

# Lively customers who often stop: plenty of them at risk after a year.
TRUTH = BgNbdParams(r=1.0, alpha=25.0, a=1.0, b=3.0)
START = utc(2025, 6, 1)
PERIOD = range_period(date(2026, 5, 16), date(2026, 6, 14))  # ends 2026-06-15 00:00 UTC
END = utc(2026, 6, 15)


def simulate_shop(n: int, seed: int) -> dict[str, list[tuple[datetime, int]]]:
    """Each customer's purchases (time, cents) from the BG/NBD process, up to NOW."""
    rng = np.random.default_rng(seed)
    shop: dict[str, list[tuple[datetime, int]]] = {}
    horizon = (NOW - START).total_seconds() / DAY
    for i in range(n):
        first = rng.uniform(0, horizon - 1)
        lam = rng.gamma(TRUTH.r, 1 / TRUTH.alpha)
        p = rng.beta(TRUTH.a, TRUTH.b)
        times = [first]
        while True:
            nxt = times[-1] + rng.exponential(1 / lam)
            if nxt >= horizon:
                break
            times.append(nxt)
            if rng.random() < p:
                break
        price = int(rng.integers(1000, 20000))
        shop[f"c{i:04d}"] = [(START + timedelta(days=t), price) for t in times]
    return shop


def by_hand(purchases: dict[str, list[tuple[datetime, int]]], as_of: datetime):
    """(x, t_x, T, revenue, last purchase) per buyer before as_of, as the README defines them."""
    end = as_of.timestamp()
    out = {}
    for cid, buys in purchases.items():
        before = [(t.timestamp(), cents) for t, cents in buys if t.timestamp() < end]
        if not before:
            continue
        days = sorted({int(ts // DAY) for ts, _ in before})
        out[cid] = (
            len(days) - 1,
            days[-1] - days[0],
            (end - 1) // DAY - days[0],  # as-of date minus first purchase date
            sum(c for _, c in before),
            max(ts for ts, _ in before),
        )
    return out


def build(shop, purchases) -> None:
    shop.many({cid: [("order", t, cents) for t, cents in buys] for cid, buys in purchases.items()})


@pytest.fixture(scope="module")
def purchases():
    return simulate_shop(400, seed=2026)


def test_churn_report_fits_the_model_on_the_store(session, purchases):
    shop = make_shop(session)
    build(shop, purchases)
    report = churn_report(session, shop.workspace_id, PERIOD, limit=10, now=NOW)

    hand = by_hand(purchases, END)
    x, t_x, T, revenue, last = (np.array(v, dtype=float) for v in zip(*hand.values(), strict=True))
    fit = fit_bg_nbd(x, t_x, T)
    assert report.method == "bg_nbd" and report.fallback_reason is None
    assert report.time_unit == "days" and report.as_of == END
    assert report.customers == len(hand) and report.repeat_buyers == int((x > 0).sum())
    got = [report.r, report.alpha, report.a, report.b]
    np.testing.assert_allclose(got, fit.params.as_array(), rtol=1e-9)
    assert report.log_likelihood == pytest.approx(fit.log_likelihood, rel=1e-9)
    # And the data really are BG/NBD: the well-identified mean purchase rate r / alpha
    # and mean drop-out chance a / (a + b) land near the truth (400 customers).
    r, alpha, a, b = got
    assert r / alpha == pytest.approx(TRUTH.r / TRUTH.alpha, rel=0.3)
    assert a / (a + b) == pytest.approx(TRUTH.a / (TRUTH.a + TRUTH.b), rel=0.3)

    alive = p_alive(fit.params, x, t_x, T)
    year = expected_purchases_if_alive(fit.params, 365.0, x, T)
    value = (1 - alive) * year * revenue / (x + 1)
    at_risk = (x > 0) & (alive >= LOST_BELOW) & (alive < AT_RISK_BELOW)
    assert report.at_risk_count == int(at_risk.sum()) > 10
    assert report.likely_lost_count == int(((x > 0) & (alive < LOST_BELOW)).sum())
    assert report.value_at_risk_cents == round(value[at_risk].sum())
    assert report.expected_active == pytest.approx(alive.sum(), rel=1e-9)

    ids = list(hand)
    expected_top = sorted(np.flatnonzero(at_risk), key=lambda i: -value[i])[:10]
    assert [c.external_id for c in report.at_risk] == [ids[i] for i in expected_top]
    for c, i in zip(report.at_risk, expected_top, strict=True):
        assert c.p_alive == pytest.approx(alive[i], rel=1e-9)
        assert c.value_at_risk_cents == round(value[i])
        assert c.expected_value_cents == round(alive[i] * year[i] * revenue[i] / (x[i] + 1))
        assert c.purchases == x[i] + 1 and c.revenue_cents == revenue[i]
        assert c.last_purchase == datetime.fromtimestamp(int(last[i]), UTC)
        assert LOST_BELOW <= c.p_alive < AT_RISK_BELOW
    values = [c.value_at_risk_cents for c in report.at_risk]
    assert values == sorted(values, reverse=True)


def test_a_past_as_of_time_ignores_later_purchases(session, purchases):
    """--until in the past: customers who bought after it are recounted from their events."""
    shop = make_shop(session)
    build(shop, purchases)
    past = range_period(date(2026, 2, 1), date(2026, 2, 28))
    as_of = utc(2026, 3, 1)
    report = churn_report(session, shop.workspace_id, past, limit=5, now=NOW)
    hand = by_hand(purchases, as_of)
    straddling = [c for c, buys in purchases.items() if buys[0][0] < as_of <= buys[-1][0]]
    assert len(straddling) > 20
    x, t_x, T = (np.array(v, dtype=float) for v in list(zip(*hand.values(), strict=True))[:3])
    fit = fit_bg_nbd(x, t_x, T)
    assert report.as_of == as_of and report.customers == len(hand)
    np.testing.assert_allclose(
        [report.r, report.alpha, report.a, report.b], fit.params.as_array(), rtol=1e-9
    )
    assert all(c.last_purchase < as_of for c in report.at_risk)


def test_refunds_lower_the_average_order(session, purchases):
    shop = make_shop(session)
    build(shop, purchases)
    before = {c.external_id: c for c in churn_report(session, "shop", PERIOD, now=NOW).at_risk}
    cid, first = next(iter(before.items()))
    shop.events(cid, ("refund", first.last_purchase + timedelta(hours=1), first.revenue_cents // 2))
    after = {c.external_id: c for c in churn_report(session, "shop", PERIOD, now=NOW).at_risk}
    assert after[cid].revenue_cents == first.revenue_cents - first.revenue_cents // 2
    assert after[cid].value_at_risk_cents == pytest.approx(first.value_at_risk_cents / 2, abs=1)


def test_thin_data_falls_back_to_the_heuristic_with_the_reason(session):
    shop = make_shop(session)
    shop.customer("r1", ("order", utc(2026, 3, 1), 3000), ("order", utc(2026, 3, 21), 3000))
    shop.customer("r2", ("order", utc(2026, 1, 1), 2000), ("order", utc(2026, 2, 1), 2000))
    shop.customer("o1", ("order", utc(2026, 5, 1), 5000))
    report = churn_report(session, shop.workspace_id, PERIOD, now=NOW)
    assert report.method == "heuristic"
    assert "only 3 customers" in report.fallback_reason
    assert (report.r, report.alpha, report.a, report.b) == (None, None, None, None)
    assert report.customers == 3 and report.repeat_buyers == 2
    heuristic = retention_report(session, shop.workspace_id, PERIOD, now=NOW)
    assert report.at_risk_count == heuristic.at_risk_count
    assert report.value_at_risk_cents == heuristic.value_at_risk_cents
    assert [c.external_id for c in report.at_risk] == [c.external_id for c in heuristic.at_risk]
    assert all(c.p_alive is None for c in report.at_risk)


def test_an_empty_workspace_gets_the_heuristic_not_an_error(session):
    shop = make_shop(session)
    report = build_report(session, shop.workspace_id, "churn", PERIOD, now=NOW)
    assert report.method == "heuristic" and report.customers == 0
    assert report.at_risk == [] and report.at_risk_count == 0


def test_workspaces_are_fitted_apart(session, purchases):
    build(make_shop(session, "a"), purchases)
    make_shop(session, "b").customer("x", ("order", utc(2026, 1, 1), 100))
    assert churn_report(session, "a", PERIOD, now=NOW).method == "bg_nbd"
    other = churn_report(session, "b", PERIOD, now=NOW)
    assert other.method == "heuristic" and other.customers == 1


@pytest.fixture
def cli_db(tmp_path, monkeypatch, purchases):
    url = f"sqlite:///{tmp_path / 'churn.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as session:
        build(make_shop(session, "local"), purchases)
        make_shop(session, "thin").customer("x", ("order", utc(2026, 1, 1), 100))
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("JOURNEY_WORKSPACE", raising=False)
    return url


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    cli._state.settings = None
    cli._state.engine = None
    monkeypatch.setattr("sys.argv", ["journey", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        if cli._state.engine is not None:
            cli._state.engine.dispose()
    return code, capsys.readouterr().out


def test_cli_churn_json_has_the_parameters_and_the_time_unit(cli_db, monkeypatch, capsys):
    code, out = run_cli(monkeypatch, capsys, "report", "churn", "--until", "2026-06-14", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["report"] == "ChurnReport" and data["method"] == "bg_nbd"
    assert data["time_unit"] == "days"
    for name in ("r", "alpha", "a", "b"):
        assert data[name] > 0
    assert data["as_of"].startswith("2026-06-15T00:00:00")
    first = data["at_risk"][0]
    assert 0 < first["p_alive"] < 0.5 and first["value_at_risk_cents"] > 0


def test_cli_churn_text(cli_db, monkeypatch, capsys):
    code, out = run_cli(monkeypatch, capsys, "report", "churn", "--until", "2026-06-14")
    assert code == 0
    assert "as of 2026-06-15 00:00 UTC" in out
    assert "At risk now:" in out and "still active" in out
    assert "have a 10% to 50% chance of still being customers" in out  # what it means
    assert "alpha=" not in out  # the model's parameters are details
    code, out = run_cli(
        monkeypatch, capsys, "report", "churn", "--until", "2026-06-14", "--details"
    )
    assert "BG/NBD model fitted on" in out and "alpha=" in out and " days" in out
    assert "r and alpha shape how often customers buy" in out
    code, out = run_cli(monkeypatch, capsys, "report", "churn", "-w", "thin", "--limit", "5")
    assert code == 0
    assert "The churn model was not used: only 1 customers have purchased" in out


def _churn(method: str = "bg_nbd", at_risk: int = 25, long_names: bool = False):
    from journey.reports import ChurnCustomer, ChurnReport

    model = method == "bg_nbd"
    customers = [
        ChurnCustomer(
            customer_id=i,
            external_id=f"C{i}",
            name=("N" * 300) if long_names else f"Customer {i}",
            email=None,
            last_purchase=NOW - timedelta(days=40 + i),
            days_since_purchase=40.0 + i,
            purchases=3,
            revenue_cents=30000,
            value_at_risk_cents=20000 - i,
            p_alive=0.3 if model else None,
            expected_purchases=0.5 if model else None,
            expected_value_cents=5000 if model else None,
        )
        for i in range(at_risk)
    ]
    return ChurnReport(
        workspace_id="T1",
        period=PERIOD,
        as_of=END,
        currency="USD",
        method=method,
        fallback_reason=None if model else "only 12 customers have purchased",
        time_unit="days",
        r=0.24 if model else None,
        alpha=4.4 if model else None,
        a=0.79 if model else None,
        b=2.4 if model else None,
        log_likelihood=-9582.4 if model else None,
        customers=2000,
        repeat_buyers=900,
        at_risk_count=400,
        value_at_risk_cents=10**7,
        likely_lost_count=120 if model else None,
        expected_active=1500.0 if model else None,
        expected_purchases=800.0 if model else None,
        at_risk=customers,
        at_risk_below=0.5 if model else None,
        lost_below=0.1 if model else None,
        at_risk_factor=None if model else 2.0,
    )


@pytest.mark.parametrize("method", ["bg_nbd", "heuristic"])
@pytest.mark.parametrize("long_names", [False, True])
def test_churn_message_lists_at_risk_customers_within_slack_limits(method, long_names):
    from bot.blocks.message import MAX_BLOCKS, MAX_BLOCKS_CHARS
    from bot.blocks.reports import churn_message

    payload = churn_message(_churn(method, long_names=long_names), "90d", exports=True).payload()
    blocks = payload["blocks"]
    dumped = json.dumps(payload, ensure_ascii=False)
    assert len(blocks) <= MAX_BLOCKS and len(json.dumps(blocks)) <= MAX_BLOCKS_CHARS
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert "Churn · as of 2026-06-15" in dumped and "At risk now:" in dumped
    assert "and 390 more" in dumped and "All customers at risk (CSV)" in dumped
    assert "journey_export_csv" in dumped and '\\"k\\":\\"churn\\"' in dumped
    if method == "bg_nbd":
        assert "still active" in dumped and "30%" in dumped and "$50" in dumped
        assert "chance of still being customers" in dumped and "alpha=" not in dumped
    else:
        assert "The churn model was not used: only 12 customers" in dumped
    shared = churn_message(_churn(method), "90d", shared=True).payload()
    assert not any(b["type"] == "actions" for b in shared["blocks"])


def test_csv_from_a_churn_reply_lists_the_models_customers(engine, purchases, monkeypatch):
    from bot.commands.service import ReportService

    with session_scope(engine) as session:
        build(make_shop(session, "T1"), purchases)
    monkeypatch.setattr("bot.commands.service.datetime", _FrozenNow)
    service = ReportService(engine)
    text, rows = service.at_risk_csv("T1", "30d", "churn")
    lines = text.splitlines()
    assert lines[0].startswith("customer_id,name,email") and "p_alive" in lines[0]
    with session_scope(engine) as session:
        last_30 = workspace_period(session, "T1", "30d", now=NOW)
        report = churn_report(session, "T1", last_30, limit=5000, now=NOW)
    assert rows == report.at_risk_count == len(lines) - 1
    retention_text, _ = service.at_risk_csv("T1", "30d", "retention")
    assert "usual_gap_days" in retention_text.splitlines()[0]


class _FrozenNow(datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW if tz is None else NOW.astimezone(tz)
