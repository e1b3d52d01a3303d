"""Alerts: the statistics (by simulation), the lifecycle, and each rule end to end.

Simulations draw the counts directly (seeded numpy), since the decision only
ever sees counts: a recent group of n customers against a trailing baseline of
six such windows (what the rules use).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pytest
from builders import NOW, make_shop
from sqlmodel import Session, select
from test_schedule_leases import FakeChat, _race

from journey.models.schedule import AlertNotification, AlertRule, AlertState
from journey.playbooks import playbook_for, playbook_for_step
from journey.schedule.alerts import (
    ALPHA,
    BASELINE_WINDOWS,
    DEFAULT_RULES,
    MEASURES,
    AlertNotice,
    Comparison,
    Judgement,
    apply_judgement,
    drop_p_value,
    ensure_default_rules,
    evaluate_rule,
    judge,
    request_check,
    route_default_rules,
)
from journey.schedule.runner import run_due
from journey.stats import wilson

DAY = timedelta(days=1)
RULE = DEFAULT_RULES["retention_drop"]


def firing_rate(
    rng: np.random.Generator,
    p0: float,
    drop: float,
    n: int,
    trials: int = 4000,
    steps: int = 1,
) -> float:
    """Share of checks that fire: `steps` independent comparisons per check (a funnel
    checks several steps and splits alpha between them), the first one dropping."""
    n0 = BASELINE_WINDOWS * n
    rates = np.full(steps, p0)
    rates[0] = p0 * (1 - drop)
    recent = rng.binomial(n, rates, size=(trials, steps))
    base = rng.binomial(n0, p0, size=(trials, steps))
    fired = 0
    for i in range(trials):
        fired += any(
            judge(
                int(recent[i, j]),
                n,
                int(base[i, j]),
                n0,
                min_relative_drop=float(RULE["min_relative_drop"]),
                min_sample=int(RULE["min_sample"]),
                alpha=ALPHA / steps,
            ).firing
            for j in range(steps)
        )
    return fired / trials


# --- statistics ---------------------------------------------------------------------------


@pytest.mark.parametrize("p0", [0.02, 0.1, 0.3, 0.5, 0.8])
@pytest.mark.parametrize("n", [50, 200, 1000])
def test_false_alarms_on_stable_data_stay_under_5_percent_per_check(p0, n):
    rng = np.random.default_rng(1000 + int(p0 * 100) + n)
    assert firing_rate(rng, p0, 0.0, n) < 0.05


def test_a_funnel_check_of_three_steps_keeps_its_false_alarm_rate():
    assert firing_rate(np.random.default_rng(3), 0.5, 0.0, 200, steps=3) < 0.05


def test_a_25_percent_drop_is_caught_more_than_90_percent_of_the_time_at_200_customers():
    rng = np.random.default_rng(25)
    assert firing_rate(rng, 0.5, 0.25, 200) > 0.90
    assert firing_rate(rng, 0.7, 0.25, 200) > 0.95
    # With fewer expected successes the same drop is harder to see: stated, not hidden.
    assert 0.5 < firing_rate(rng, 0.3, 0.25, 200) < 0.9
    assert firing_rate(rng, 0.3, 0.25, 1000) > 0.95


def test_a_25_percent_drop_in_one_of_three_funnel_steps():
    """The funnel's shortfall, measured rather than hidden: three steps share alpha."""
    rng = np.random.default_rng(26)
    assert 0.8 < firing_rate(rng, 0.5, 0.25, 200, steps=3) < 0.9
    assert firing_rate(rng, 0.7, 0.25, 200, steps=3) > 0.95


def test_drop_p_value_is_one_sided():
    assert drop_p_value(30, 100, 50, 100) < 0.01
    assert drop_p_value(50, 100, 30, 100) > 0.99  # a rise is not a drop
    assert drop_p_value(0, 10, 0, 10) == 1.0
    assert drop_p_value(1, 0, 1, 10) is None


def test_judge_needs_size_significance_and_samples():
    small = judge(5, 20, 50, 100, min_relative_drop=0.1, min_sample=50)
    assert not small.enough and not small.firing and not small.recovered
    noisy = judge(90, 200, 600, 1200, min_relative_drop=0.1, min_sample=50)  # 45% vs 50%
    assert noisy.enough and not noisy.firing
    assert noisy.p_value is not None and noisy.p_value > ALPHA
    tiny = judge(9_600, 20_000, 60_000, 120_000, min_relative_drop=0.1, min_sample=50)
    assert tiny.p_value is not None and tiny.p_value < 1e-6  # 48% vs 50%: real, but small
    assert not tiny.firing and tiny.recovered  # below half the threshold: nothing to say
    big = judge(70, 200, 600, 1200, min_relative_drop=0.1, min_sample=50)  # 35% vs 50%
    assert big.firing and big.relative_drop == pytest.approx(0.3)
    # Between "fire" and "clearly gone": neither (the hysteresis).
    edge = judge(88, 200, 600, 1200, min_relative_drop=0.1, min_sample=50)  # 44% vs 50%
    assert edge.p_value is not None and ALPHA < edge.p_value < 0.25
    assert not edge.firing and not edge.recovered


# --- lifecycle ----------------------------------------------------------------------------


def comparison(recent: tuple[int, int] = (70, 200)) -> Comparison:
    return Comparison(
        key="repeat_rate",
        stage="retention",
        title="Repeat purchases dropped",
        recent_group="customers who first bought between 2026-04-20 and 2026-05-17",
        baseline_group="first buyers of the 24 weeks before",
        outcome="bought again within 30 days",
        recent=wilson(*recent),
        baseline=wilson(600, 1200),
        recent_window=(NOW - 56 * DAY, NOW - 28 * DAY),
        baseline_window=(NOW - 224 * DAY, NOW - 56 * DAY),
    )


FIRING = Judgement(0.3, 0.0001, True, True, False)
STILL = Judgement(0.14, 0.1, True, False, False)
GONE = Judgement(0.0, 0.5, True, False, True)


@pytest.fixture
def rule(session) -> AlertRule:
    make_shop(session, "shop")
    rules = ensure_default_rules(session, "shop", channel_id="C-ALERTS", now=NOW)
    session.commit()
    return next(r for r in rules if r.kind == "retention_drop")


def notifications(session) -> list[AlertNotification]:
    return list(session.exec(select(AlertNotification).order_by(AlertNotification.id)))


@pytest.mark.parametrize(("others", "fires"), [((10, 20), True), ((100, 200), False)])
def test_funnel_steps_too_small_to_test_spend_no_alpha(session, monkeypatch, others, fires):
    """p = 0.025 on the first step: under ALPHA, over ALPHA / 3. It fires when the other
    two steps are too small to be tested, not when all three share alpha."""
    assert ALPHA / 3 < drop_p_value(85, 200, 600, 1200) < ALPHA
    steps = [
        replace(comparison((85, 200)), key="step:a->b"),
        replace(comparison(others), key="step:b->c"),
        replace(comparison(others), key="step:c->d"),
    ]
    monkeypatch.setitem(MEASURES, "funnel_step_drop", lambda *_: steps)
    make_shop(session, "shop")
    [funnel] = [
        r
        for r in ensure_default_rules(session, "shop", channel_id="C-ALERTS", now=NOW)
        if r.kind == "funnel_step_drop"
    ]
    fired = [t.key for t in evaluate_rule(session, funnel, NOW) if t.event == "fired"]
    assert fired == (["step:a->b"] if fires else [])


def test_fire_once_stay_quiet_resolve_and_rearm(session, rule):
    c = comparison()
    t = apply_judgement(session, rule, c, FIRING, NOW)
    assert t is not None and (t.event, t.notified) == ("fired", True)
    notice = t.notice
    assert notice.summary.startswith("Repeat purchases dropped: 35% of the 200 customers")
    assert "against 50% of 1200 first buyers of the 24 weeks before (30% lower, p = 0.000)" in (
        notice.summary
    )
    assert notice.playbook == playbook_for("retention")
    # The condition lasts: quiet, check after check.
    for day in range(1, 5):
        assert apply_judgement(session, rule, c, FIRING, NOW + day * DAY) is None
        assert apply_judgement(session, rule, c, STILL, NOW + day * DAY) is None
    assert [n.event for n in notifications(session)] == ["fired"]
    # Gone: resolved, and it says since when.
    t = apply_judgement(session, rule, comparison((100, 200)), GONE, NOW + 6 * DAY)
    assert t is not None and (t.event, t.notified) == ("resolved", True)
    assert t.notice.resolved_at == NOW + 6 * DAY and t.notice.fired_at == NOW
    assert t.notice.summary.startswith("Resolved: repeat purchases dropped since 2026-06-15")
    state = session.exec(select(AlertState)).one()
    assert (state.state, state.resolved_at) == ("resolved", NOW + 6 * DAY)
    assert apply_judgement(session, rule, c, GONE, NOW + 7 * DAY) is None
    # Re-armed: a new drop after the cooldown is a new alert.
    t = apply_judgement(session, rule, c, FIRING, NOW + 10 * DAY)
    assert t is not None and (t.event, t.notified) == ("fired", True)
    assert [n.event for n in notifications(session)] == ["fired", "resolved", "fired"]
    assert len({n.event_key for n in notifications(session)}) == 3


def test_cooldown_caps_repeats_of_a_flapping_alert(session, rule):
    assert rule.cooldown_hours == 72
    c = comparison()
    assert apply_judgement(session, rule, c, FIRING, NOW).notified
    assert apply_judgement(session, rule, c, GONE, NOW + DAY).notified
    # Back within 72 hours of the last announcement: recorded, not announced...
    t = apply_judgement(session, rule, c, FIRING, NOW + 2 * DAY)
    assert t is not None and (t.event, t.notified) == ("fired", False)
    # ...and neither is the end of that unannounced episode.
    t = apply_judgement(session, rule, c, GONE, NOW + 2 * DAY + timedelta(hours=12))
    assert t is not None and (t.event, t.notified) == ("resolved", False)
    # After the cooldown it speaks again.
    assert apply_judgement(session, rule, c, FIRING, NOW + 4 * DAY).notified
    assert [n.event for n in notifications(session)] == ["fired", "resolved", "fired"]


def test_the_notice_survives_its_payload(session, rule):
    t = apply_judgement(session, rule, comparison(), FIRING, NOW)
    assert t is not None
    stored = notifications(session)[0]
    assert AlertNotice.from_payload(stored.payload) == t.notice


def test_default_rules_are_created_once(session):
    make_shop(session, "shop")
    first = ensure_default_rules(session, "shop", now=NOW)
    again = ensure_default_rules(session, "shop", channel_id="C-X", now=NOW)
    assert [r.id for r in first] == [r.id for r in again]
    assert [r.kind for r in first] == ["retention_drop", "funnel_step_drop", "high_value_churn"]
    assert all(r.enabled and r.channel_id is None for r in again)  # existing rules kept
    assert first[0].min_relative_drop == 0.10 and first[2].min_sample == 30


def test_routing_gives_rules_without_a_channel_one_and_keeps_chosen_ones(session):
    make_shop(session, "shop")
    rules = ensure_default_rules(session, "shop", now=NOW)
    rules[0].channel_id = "C-CHOSEN"
    routed = route_default_rules(session, "shop", "C-DIGEST", now=NOW)
    assert [r.id for r in routed] == [r.id for r in rules]
    assert [r.channel_id for r in routed] == ["C-CHOSEN", "C-DIGEST", "C-DIGEST"]
    # Fresh workspace: created with the destination at once.
    make_shop(session, "other")
    assert {r.channel_id for r in route_default_rules(session, "other", "D-1", now=NOW)} == {"D-1"}


# --- rules end to end ---------------------------------------------------------------------


def spread(start: datetime, end: datetime, count: int) -> list[datetime]:
    step = (end - start) / count
    return [start + step * i for i in range(count)]


def build_retention_drop(session) -> None:
    """First buyers: half came back within 10 days in the baseline, 1 in 7 recently.

    The typical gap is 10 days, so W = 14: the recent window is the 28 days ending 14
    days ago, the baseline the 168 days before it."""
    shop = make_shop(session, "shop")
    r1 = NOW - 14 * DAY
    r0 = r1 - 28 * DAY
    b0 = r0 - 168 * DAY
    customers: dict[str, list] = {}
    for i, t in enumerate(spread(b0 + DAY, r0 - DAY, 150)):
        customers[f"b{i}"] = [("order", t, 2000)] + ([("order", t + 10 * DAY, 2000)] * (i % 2))
    for i, t in enumerate(spread(r0 + DAY, r1 - DAY, 56)):
        customers[f"r{i}"] = [("order", t, 2000)] + ([("order", t + 10 * DAY, 2000)] * (i % 7 == 0))
    shop.many(customers)


def build_funnel_drop(session) -> None:
    """Entered with a visit: half inquired within 2 days in the baseline, 1 in 10 recently."""
    shop = make_shop(session, "shop")
    r1 = NOW - 14 * DAY
    r0 = r1 - 14 * DAY
    b0 = r0 - 84 * DAY
    customers: dict[str, list] = {}
    for i, t in enumerate(spread(b0 + DAY, r0 - DAY, 200)):
        customers[f"b{i}"] = [("visit", t)] + ([("inquiry", t + 2 * DAY)] * (i % 2))
    for i, t in enumerate(spread(r0 + DAY / 4, r1 - DAY, 60)):
        customers[f"r{i}"] = [("visit", t)] + ([("inquiry", t + 2 * DAY)] * (i % 10 == 0))
    shop.many(customers)


def build_valuable_churn(session) -> None:
    """Loyal customers buying every 30 days for a year; most stopped after a purchase
    60 to 88 days ago (their return was due in the last 28 days). Small one-time buyers
    make up the rest."""
    shop = make_shop(session, "shop")
    customers: dict[str, list] = {}
    for i in range(40):
        last = NOW - (62 + i % 26) * DAY  # the last purchase, 62 to 87 days ago...
        orders = [("order", last - 30 * DAY * j, 10_000) for j in range(12, -1, -1)]
        if i % 4 == 0:  # ...except for one in four, who keeps buying every 30 days
            orders += [("order", last + 30 * DAY * j, 10_000) for j in (1, 2)]
        customers[f"loyal{i}"] = orders
    for i, t in enumerate(spread(NOW - 300 * DAY, NOW - 20 * DAY, 120)):
        customers[f"small{i}"] = [("order", t, 500)]
    shop.many(customers)


SCENARIOS = {
    "retention_drop": (build_retention_drop, "repeat_rate", "retention"),
    "funnel_step_drop": (build_funnel_drop, "step:awareness->consideration", "consideration"),
    "high_value_churn": (build_valuable_churn, "valuable_returns", "retention"),
}


@pytest.mark.parametrize("kind", list(SCENARIOS))
def test_each_rule_fires_once_explains_itself_then_stays_quiet(engine, kind):
    build, key, stage = SCENARIOS[kind]
    with Session(engine) as session:
        build(session)
        for r in ensure_default_rules(session, "shop", channel_id="C-ALERTS", now=NOW):
            r.min_sample = 20
            session.add(r)
        session.commit()
    chat = FakeChat()
    report = run_due(engine, NOW, chat, "r1")
    fired = [t for t in report.alerts if t.event == "fired"]
    assert [(t.kind, t.key) for t in fired] == [(kind, key)]
    [delivery] = chat.calls
    assert delivery.kind == "alert" and delivery.channel_id == "C-ALERTS"
    notice = delivery.alert
    assert notice is not None and (notice.kind, notice.key, notice.event) == (kind, key, "fired")
    assert notice.relative_drop is not None and notice.relative_drop > 0.4
    assert notice.p_value is not None and notice.p_value < 0.001
    assert notice.baseline.value is not None and notice.recent.value is not None
    assert notice.recent.value < notice.baseline.value
    expected = playbook_for_step(stage) if kind == "funnel_step_drop" else playbook_for(stage)
    assert notice.playbook == expected
    assert f"{notice.recent.denominator} " in notice.summary and "p = 0.000" in notice.summary
    if kind == "high_value_churn":
        assert notice.customers and all(name.startswith("loyal") for name in notice.customers)
    # Later checks while the drop lasts say nothing more; nor do ticks in between.
    assert run_due(engine, NOW + timedelta(hours=1), chat, "r2").alerts == []
    later = run_due(engine, NOW + DAY, chat, "r2")
    assert later.alerts == [] and len(chat.calls) == 1


def test_stable_data_does_not_alert(engine):
    with Session(engine) as session:
        shop = make_shop(session, "shop")
        customers = {
            f"c{i}": [("visit", t), ("order", t + DAY, 1000)]
            + [("order", t + 9 * DAY, 1000)] * (i % 2)
            for i, t in enumerate(spread(NOW - 300 * DAY, NOW - 10 * DAY, 300))
        }
        shop.many(customers)
        for r in ensure_default_rules(session, "shop", channel_id="C-ALERTS", now=NOW):
            r.min_sample = 20
            session.add(r)
        session.commit()
    report = run_due(engine, NOW, FakeChat(), "r1")
    assert report.alerts == []
    with Session(engine) as session:
        states = list(session.exec(select(AlertState)))
        assert states == []
        checked = {r.kind: r.last_checked_at for r in session.exec(select(AlertRule))}
        assert set(checked.values()) == {NOW}


def test_new_data_makes_the_rules_due_before_the_daily_check(engine):
    """ "Checked after every sync and at least daily": a sync that changed the store asks
    for a check, and only the rules of its own workspace run early."""
    with Session(engine) as session:
        build_retention_drop(session)
        make_shop(session, "other")
        for ws in ("shop", "other"):
            ensure_default_rules(session, ws, channel_id="C-ALERTS", now=NOW)
        session.commit()
    run_due(engine, NOW, FakeChat(), "r1")
    hour = NOW + timedelta(hours=1)
    run_due(engine, hour, FakeChat(), "r1")

    def checked() -> dict[tuple[str, str], object]:
        with Session(engine) as session:
            return {
                (r.workspace_id, r.kind): r.last_checked_at for r in session.exec(select(AlertRule))
            }

    assert set(checked().values()) == {NOW}  # not due again within the day
    with Session(engine) as session:
        assert request_check(session, "shop") == 3
        session.commit()
    run_due(engine, hour, FakeChat(), "r1")
    after = checked()
    assert {v for (ws, _), v in after.items() if ws == "shop"} == {hour}
    assert {v for (ws, _), v in after.items() if ws == "other"} == {NOW}


def test_rules_without_a_channel_or_disabled_are_not_checked(session):
    build_retention_drop(session)
    rules = ensure_default_rules(session, "shop", now=NOW)  # no channel yet
    session.commit()
    engine = session.get_bind()
    assert run_due(engine, NOW, FakeChat(), "r1").alerts == []
    rules[0].channel_id, rules[0].enabled = "C-ALERTS", False
    session.add(rules[0])
    session.commit()
    assert run_due(engine, NOW, FakeChat(), "r1").alerts == []


def test_an_archived_alert_channel_disables_the_rule(engine):
    with Session(engine) as session:
        build_retention_drop(session)
        for r in ensure_default_rules(session, "shop", channel_id="C-GONE", now=NOW):
            r.min_sample = 20
            session.add(r)
        session.commit()
    chat = FakeChat()
    from journey.schedule.runner import DeliveryResult

    chat.results = [DeliveryResult.permanent("is_archived")]
    report = run_due(engine, NOW, chat, "r1")
    assert [reason for _, reason in report.disabled_rules] == ["is_archived"]
    with Session(engine) as session:
        rule = session.exec(select(AlertRule).where(AlertRule.kind == "retention_drop")).one()
        assert (rule.enabled, rule.disabled_reason) == (False, "is_archived")
        assert notifications(session)[0].state == "skipped"


def test_replicas_racing_to_check_alerts_announce_once(engine):
    with Session(engine) as session:
        build_retention_drop(session)
        for r in ensure_default_rules(session, "shop", channel_id="C-ALERTS", now=NOW):
            r.min_sample = 20
            session.add(r)
        session.commit()
    chat = FakeChat()
    reports = _race(engine.url.render_as_string(hide_password=False), NOW, chat, replicas=6)
    assert len(chat.calls) == 1 and chat.calls[0].kind == "alert"
    assert sum(len(r.alerts) for r in reports) == 1
    with Session(engine) as session:
        assert len(notifications(session)) == 1
        assert len(list(session.exec(select(AlertState)))) == 1
