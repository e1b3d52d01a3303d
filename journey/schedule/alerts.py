"""Alerts: a drop worth interrupting a team for, announced once, with what to do.

Each rule compares a recent group of customers with a trailing baseline of the
same kind, measured the same way (fixed windows after the customers' own start,
so young customers are never compared with old ones):

- retention_drop: the share of first-time buyers who buy again within W days
  (W = the workspace's typical gap between purchases, 14 to 90 days, 30 when
  unknown), for first purchases in the last 28 matured days against the 24 weeks
  before them;
- funnel_step_drop: for each step up to the purchase, the share of customers who
  reached the step's stage within 14 days of entering, among those who reached
  the stage before it, for customers who entered in the last 14 matured days
  against the 12 weeks before;
- high_value_churn: the share of valuable customers' purchases followed by
  another purchase before the at-risk point (at_risk_factor x the typical gap),
  for purchases whose at-risk point fell in the last 28 days against the 24 weeks
  before. A purchase is a valuable customer's when the customer's spend up to it
  ranks in the top fifth of those purchases. Measured from the purchase history,
  not from today's state, so customers who came back are not hidden from the
  baseline and those who stopped early are not dropped from it.

An alert fires only when all of these hold: both groups have at least the
rule's `min_sample` customers (purchases for high_value_churn); the drop
relative to the baseline is at least the rule's `min_relative_drop`; and a
one-sided two-proportion z-test (pooled) gives p < ALPHA. The funnel rule tests
several steps per check, so its ALPHA is split between the steps that have
enough customers to be tested (Bonferroni) and the rule as a whole keeps its
false-alarm rate. ALPHA and the window lengths
were chosen by simulation (tests/test_alerts.py): on stable data under 5% of
checks alarm; a 25% relative drop from a 50% rate with 200 customers in the
recent group is caught more than 90% of the time (94%; 68% from a 30% rate).
The funnel rule misses that target when three steps share alpha: a 25% drop in
one of three steps from a 50% rate is caught 86% of the time (99% from a 70%
rate). Splitting alpha is what keeps a three-step check under 5% false alarms;
simulations of Sidak's split at 5% and a 24-week baseline reached 90% only by
going over 5% false alarms for small groups near 80% conversion, so the split
stays and the shortfall is stated (docs/status.md).

Lifecycle of each (rule, key): fire once; stay quiet while the drop lasts;
resolve when it has clearly gone (p >= RESOLVE_P or less than half the
threshold: a hysteresis, so an alert at the edge does not flap), and say when;
then re-arm. A new firing within the rule's cooldown of the last announcement
is recorded but not announced, and neither is its resolution.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from journey.metrics.retention import typical_gap_seconds
from journey.models.schedule import ALERT_KINDS, AlertNotification, AlertRule, AlertState
from journey.models.types import from_epoch, to_epoch
from journey.playbooks import Playbook, playbook_for, playbook_for_step
from journey.schedule.digests import VALUABLE_SHARE, valuable_cut
from journey.schedule.leases import EVERYTHING, Scope
from journey.stages import PURCHASE_KINDS
from journey.stats import Rate, wilson
from journey.workspaces import get_workspace, stage_model

log = logging.getLogger(__name__)

DAY = 86400
ALPHA = 0.04  # one-sided, per check of a rule; see the module docstring
RESOLVE_P = 0.25
BASELINE_WINDOWS = 6  # the baseline spans this many recent windows
RETENTION_RECENT_DAYS = 28
FUNNEL_RECENT_DAYS = 14
FUNNEL_MATURITY_DAYS = 14
VALUABLE_RECENT_DAYS = 28
CHECK_INTERVAL = timedelta(hours=24)

DEFAULT_RULES: dict[str, dict[str, float | int]] = {
    "retention_drop": {"min_relative_drop": 0.10, "min_sample": 50, "cooldown_hours": 72},
    "funnel_step_drop": {"min_relative_drop": 0.10, "min_sample": 50, "cooldown_hours": 72},
    "high_value_churn": {"min_relative_drop": 0.15, "min_sample": 30, "cooldown_hours": 72},
}


# --- the test ---------------------------------------------------------------------------


def drop_p_value(k_recent: int, n_recent: int, k_base: int, n_base: int) -> float | None:
    """One-sided p-value that the recent rate is lower than the baseline rate.

    Pooled two-proportion z-test: with a minimum sample of a few dozen per group
    the normal approximation holds well enough, and the simulation in the tests
    checks the false-alarm rate it actually delivers.
    """
    if n_recent <= 0 or n_base <= 0:
        return None
    pooled = (k_recent + k_base) / (n_recent + n_base)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_recent + 1 / n_base))
    if se == 0:
        return 1.0  # all or none converted in both groups: no evidence of a drop
    z = (k_base / n_base - k_recent / n_recent) / se
    return 0.5 * math.erfc(z / math.sqrt(2))


def testable(n_recent: int, k_base: int, n_base: int, min_sample: int) -> bool:
    """Enough customers in both groups, and a baseline with successes to drop from."""
    return n_recent >= min_sample and n_base >= min_sample and k_base > 0


@dataclass(frozen=True)
class Judgement:
    """What one comparison says. Neither firing nor recovered: leave the state as it is."""

    relative_drop: float | None
    p_value: float | None
    enough: bool
    firing: bool
    recovered: bool


def judge(
    k_recent: int,
    n_recent: int,
    k_base: int,
    n_base: int,
    *,
    min_relative_drop: float,
    min_sample: int,
    alpha: float = ALPHA,
) -> Judgement:
    """Large enough AND unlikely to be noise, on enough customers."""
    enough = testable(n_recent, k_base, n_base, min_sample)
    p = drop_p_value(k_recent, n_recent, k_base, n_base)
    rel = None
    if n_recent > 0 and n_base > 0 and k_base > 0:
        base = k_base / n_base
        rel = (base - k_recent / n_recent) / base
    firing = enough and rel is not None and p is not None and rel >= min_relative_drop and p < alpha
    recovered = (
        enough
        and not firing
        and rel is not None
        and p is not None
        and (p >= RESOLVE_P or rel < min_relative_drop / 2)
    )
    return Judgement(rel, p, enough, firing, recovered)


# --- what each rule measures -------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One measured key of a rule: the recent group against its baseline."""

    key: str
    stage: str  # whose playbook answers the drop
    title: str  # "Repeat purchases dropped"
    recent_group: str  # who is in the recent group, in words
    baseline_group: str
    outcome: str  # what counts as success, in words
    recent: Rate
    baseline: Rate
    recent_window: tuple[datetime, datetime]
    baseline_window: tuple[datetime, datetime]
    customers: list[str] = field(default_factory=list)
    playbook_is_step: bool = False


def _windows(now: datetime, lag_days: float, recent_days: int) -> tuple[int, int, int]:
    """(baseline start, recent start, recent end) epochs: the recent window ends
    `lag_days` before now, so every customer in it has had the full time to convert."""
    r1 = to_epoch(now) - round(lag_days * DAY)
    r0 = r1 - recent_days * DAY
    return r0 - BASELINE_WINDOWS * recent_days * DAY, r0, r1


def _dates(a: int, b: int) -> str:
    return f"{from_epoch(a).date().isoformat()} and {from_epoch(b - 1).date().isoformat()}"


def measure_retention(session: Session, workspace_id: str, now: datetime) -> list[Comparison]:
    typical = typical_gap_seconds(session, workspace_id, to_epoch(now))
    w = 30 if typical is None else min(max(round(typical / DAY), 14), 90)
    b0, r0, r1 = _windows(now, w, RETENTION_RECENT_DAYS)
    row = session.execute(
        text(
            "SELECT SUM(CASE WHEN first_purchase_at >= :r0 THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN first_purchase_at >= :r0 AND second_purchase_at - first_purchase_at "
            "<= :w THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN first_purchase_at < :r0 THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN first_purchase_at < :r0 AND second_purchase_at - first_purchase_at "
            "<= :w THEN 1 ELSE 0 END) "
            "FROM customer_journey WHERE workspace_id = :ws "
            "AND first_purchase_at >= :b0 AND first_purchase_at < :r1"
        ),
        {"ws": workspace_id, "b0": b0, "r0": r0, "r1": r1, "w": w * DAY},
    ).one()
    n1, k1, n0, k0 = (int(v or 0) for v in row)
    return [
        Comparison(
            key="repeat_rate",
            stage="retention",
            title="Repeat purchases dropped",
            recent_group=f"customers who first bought between {_dates(r0, r1)}",
            baseline_group=f"first buyers of the {BASELINE_WINDOWS * RETENTION_RECENT_DAYS // 7} "
            "weeks before",
            outcome=f"bought again within {w} days",
            recent=wilson(k1, n1),
            baseline=wilson(k0, n0),
            recent_window=(from_epoch(r0), from_epoch(r1)),
            baseline_window=(from_epoch(b0), from_epoch(r0)),
        )
    ]


def measure_funnel_steps(session: Session, workspace_id: str, now: datetime) -> list[Comparison]:
    model = stage_model(session, workspace_id)
    stages = list(model.stages)
    goal = model.purchase_position
    goal = goal if goal is not None else len(stages) - 1
    if goal < 1:
        return []
    b0, r0, r1 = _windows(now, FUNNEL_MATURITY_DAYS, FUNNEL_RECENT_DAYS)
    m = FUNNEL_MATURITY_DAYS * DAY
    cols = ["SUM(CASE WHEN reached_0 >= :r0 THEN 1 ELSE 0 END)"]
    cols.append("SUM(CASE WHEN reached_0 < :r0 THEN 1 ELSE 0 END)")
    for i in range(1, goal + 1):
        within = f"reached_{i} IS NOT NULL AND reached_{i} - reached_0 <= :m"
        cols.append(f"SUM(CASE WHEN reached_0 >= :r0 AND {within} THEN 1 ELSE 0 END)")
        cols.append(f"SUM(CASE WHEN reached_0 < :r0 AND {within} THEN 1 ELSE 0 END)")
    row = session.execute(
        text(
            f"SELECT {', '.join(cols)} FROM customer_journey WHERE workspace_id = :ws "
            "AND reached_0 >= :b0 AND reached_0 < :r1"
        ),
        {"ws": workspace_id, "b0": b0, "r0": r0, "r1": r1, "m": m},
    ).one()
    values = [int(v or 0) for v in row]
    recent = values[0::2]  # reached stage i (0 = entered), recent cohort
    base = values[1::2]
    out = []
    for i in range(1, goal + 1):
        step = f"{stages[i - 1]} -> {stages[i]}"
        out.append(
            Comparison(
                key=f"step:{stages[i - 1]}->{stages[i]}",
                stage=stages[i],
                title=f"Conversion {step} dropped",
                recent_group=f"customers who entered between {_dates(r0, r1)} and reached "
                f"{stages[i - 1]}",
                baseline_group=f"those of the {BASELINE_WINDOWS * FUNNEL_RECENT_DAYS // 7} "
                "weeks before",
                outcome=f"reached {stages[i]} within {FUNNEL_MATURITY_DAYS} days of entering",
                recent=wilson(recent[i], recent[i - 1]),
                baseline=wilson(base[i], base[i - 1]),
                recent_window=(from_epoch(r0), from_epoch(r1)),
                baseline_window=(from_epoch(b0), from_epoch(r0)),
                playbook_is_step=True,
            )
        )
    return out


def measure_high_value_churn(
    session: Session, workspace_id: str, now: datetime
) -> list[Comparison]:
    cut = valuable_cut(session, workspace_id)
    if cut is None:
        return []
    workspace = get_workspace(session, workspace_id)
    end = to_epoch(now)
    typical = typical_gap_seconds(session, workspace_id, end) or 30.0 * DAY
    horizon = round(workspace.at_risk_factor * typical)
    b0, r0, r1 = _windows(now, 0, VALUABLE_RECENT_DAYS)
    buy = ", ".join(f"'{k}'" for k in sorted(PURCHASE_KINDS))
    deadline = f"(d * {DAY} + :h)"
    back = f"(next_d IS NOT NULL AND next_d * {DAY} <= deadline)"
    params = {
        "ws": workspace_id,
        "now": end,
        "h": horizon,
        "cut": cut,
        "b0": b0,
        "r0": r0,
        "share": VALUABLE_SHARE,
    }
    # Every purchase day is a trial: did another purchase day follow before the at-risk
    # point? Valuable trials are the top fifth by the customer's spend up to that day,
    # ranked among the trials of both windows: a cut from today's totals would leave out
    # the past, when everyone had spent less, and ranking by today's totals would hide
    # the customers who stopped early (they spent less) from the baseline.
    row = session.execute(
        text(
            "WITH days AS ("
            # Per person (journey/people.py): one human's purchases across sources.
            f"  SELECT pc.person_id AS customer_id, e.occurred_at / {DAY} AS d,"
            "  SUM(COALESCE(e.amount_cents, 0)) AS c"
            "  FROM journey_event e JOIN customer pc ON pc.id = e.customer_id"
            f"  WHERE e.workspace_id = :ws AND e.kind IN ({buy})"
            f"  AND e.occurred_at < :now GROUP BY pc.person_id, e.occurred_at / {DAY}"
            "), runs AS ("
            "  SELECT customer_id, d, SUM(c) OVER (PARTITION BY customer_id ORDER BY d"
            "  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS spent,"
            "  LEAD(d) OVER (PARTITION BY customer_id ORDER BY d) AS next_d FROM days"
            "), trials AS ("
            f"  SELECT customer_id, d, spent, next_d, {deadline} AS deadline FROM runs"
            f"  WHERE {deadline} >= :b0 AND {deadline} < :now"
            "), ranked AS ("
            "  SELECT d, next_d, deadline,"
            "  ROW_NUMBER() OVER (ORDER BY spent DESC, customer_id, d) AS rn,"
            "  COUNT(*) OVER () AS cnt FROM trials"
            ") SELECT "
            "SUM(CASE WHEN deadline >= :r0 THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN deadline >= :r0 AND {back} THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN deadline < :r0 THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN deadline < :r0 AND {back} THEN 1 ELSE 0 END) "
            "FROM ranked WHERE rn - 1 < cnt * :share"
        ),
        params,
    ).one()
    n1, k1, n0, k0 = (int(v or 0) for v in row)
    names = [
        r[0] or r[1]
        for r in session.execute(
            text(
                "SELECT c.name, c.external_id FROM customer_journey cj "
                "JOIN customer c ON c.id = cj.customer_id WHERE cj.workspace_id = :ws "
                "AND cj.revenue_cents >= :cut AND cj.last_purchase_at + :h >= :r0 "
                "AND cj.last_purchase_at + :h < :now "
                "ORDER BY cj.revenue_cents DESC, cj.customer_id LIMIT 5"
            ),
            params,
        ).all()
    ]
    days = round(horizon / DAY)
    return [
        Comparison(
            key="valuable_returns",
            stage="retention",
            title="Valuable customers are not coming back",
            recent_group="purchases by valuable customers (top fifth by spend so far) whose "
            f"return was due between {_dates(r0, r1)}",
            baseline_group=f"those due in the {BASELINE_WINDOWS * VALUABLE_RECENT_DAYS // 7} "
            "weeks before",
            outcome=f"followed by another purchase within {days} days",
            recent=wilson(k1, n1),
            baseline=wilson(k0, n0),
            recent_window=(from_epoch(r0), from_epoch(r1)),
            baseline_window=(from_epoch(b0), from_epoch(r0)),
            customers=names,
        )
    ]


MEASURES = {
    "retention_drop": measure_retention,
    "funnel_step_drop": measure_funnel_steps,
    "high_value_churn": measure_high_value_churn,
}


# --- what is announced -------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


@dataclass(frozen=True)
class AlertNotice:
    """The explanation an alert carries: what dropped, by how much, against what, and
    what to do. Plain data: the Slack adapter lays it out; `summary` is one sentence
    with the numbers for any plain-text channel."""

    rule_id: int
    workspace_id: str
    kind: str
    key: str
    event: str  # fired | resolved
    title: str
    summary: str
    stage: str
    playbook: Playbook | None
    recent: Rate
    baseline: Rate
    relative_drop: float | None
    p_value: float | None
    recent_group: str
    baseline_group: str
    outcome: str
    recent_window: tuple[datetime, datetime]
    baseline_window: tuple[datetime, datetime]
    fired_at: datetime | None
    resolved_at: datetime | None
    customers: list[str] = field(default_factory=list)

    def to_payload(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "workspace_id": self.workspace_id,
            "kind": self.kind,
            "key": self.key,
            "event": self.event,
            "title": self.title,
            "summary": self.summary,
            "stage": self.stage,
            "playbook_stage": self.playbook.stage if self.playbook else None,
            "recent": [self.recent.numerator, self.recent.denominator],
            "baseline": [self.baseline.numerator, self.baseline.denominator],
            "relative_drop": self.relative_drop,
            "p_value": self.p_value,
            "recent_group": self.recent_group,
            "baseline_group": self.baseline_group,
            "outcome": self.outcome,
            "recent_window": [to_epoch(t) for t in self.recent_window],
            "baseline_window": [to_epoch(t) for t in self.baseline_window],
            "fired_at": to_epoch(self.fired_at) if self.fired_at else None,
            "resolved_at": to_epoch(self.resolved_at) if self.resolved_at else None,
            "customers": list(self.customers),
        }

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> AlertNotice:
        def when(v: int | None) -> datetime | None:
            return None if v is None else from_epoch(v)

        ra, rb = p["recent_window"]
        ba, bb = p["baseline_window"]
        return cls(
            rule_id=p["rule_id"],
            workspace_id=p["workspace_id"],
            kind=p["kind"],
            key=p["key"],
            event=p["event"],
            title=p["title"],
            summary=p["summary"],
            stage=p["stage"],
            playbook=playbook_for(p["playbook_stage"]) if p.get("playbook_stage") else None,
            recent=wilson(*p["recent"]),
            baseline=wilson(*p["baseline"]),
            relative_drop=p["relative_drop"],
            p_value=p["p_value"],
            recent_group=p["recent_group"],
            baseline_group=p["baseline_group"],
            outcome=p["outcome"],
            recent_window=(from_epoch(ra), from_epoch(rb)),
            baseline_window=(from_epoch(ba), from_epoch(bb)),
            fired_at=when(p["fired_at"]),
            resolved_at=when(p["resolved_at"]),
            customers=list(p.get("customers") or []),
        )


def _summary(c: Comparison, j: Judgement, event: str, fired_at: datetime | None) -> str:
    numbers = (
        f"{_pct(c.recent.value)} of the {c.recent.denominator} {c.recent_group} {c.outcome}, "
        f"against {_pct(c.baseline.value)} of {c.baseline.denominator} {c.baseline_group}"
    )
    if event == "fired":
        drop = f"{j.relative_drop * 100:.0f}% lower" if j.relative_drop is not None else "lower"
        p = f"p = {j.p_value:.3f}" if j.p_value is not None else "no test"
        text_ = f"{c.title}: {numbers} ({drop}, {p})."
        if c.customers:
            text_ += f" Newly at risk: {', '.join(c.customers)}."
        return text_
    since = f" since {fired_at.date().isoformat()}" if fired_at else ""
    return f"Resolved: {c.title.lower()}{since}; now {numbers}."


def _notice(
    rule: AlertRule, c: Comparison, j: Judgement, event: str, state: AlertState
) -> AlertNotice:
    playbook = playbook_for_step(c.stage) if c.playbook_is_step else playbook_for(c.stage)
    return AlertNotice(
        rule_id=rule.id or 0,
        workspace_id=rule.workspace_id,
        kind=rule.kind,
        key=c.key,
        event=event,
        title=c.title if event == "fired" else f"Resolved: {c.title.lower()}",
        summary=_summary(c, j, event, state.fired_at),
        stage=c.stage,
        playbook=playbook,
        recent=c.recent,
        baseline=c.baseline,
        relative_drop=j.relative_drop,
        p_value=j.p_value,
        recent_group=c.recent_group,
        baseline_group=c.baseline_group,
        outcome=c.outcome,
        recent_window=c.recent_window,
        baseline_window=c.baseline_window,
        fired_at=state.fired_at,
        resolved_at=state.resolved_at,
        customers=c.customers,
    )


# --- the lifecycle ------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """A change of an alert's state in one check; `notified` False: recorded, not announced."""

    rule_id: int
    kind: str
    key: str
    event: str  # fired | resolved
    notified: bool
    notice: AlertNotice


def _details(c: Comparison, j: Judgement, now: datetime) -> dict[str, Any]:
    return {
        "checked_at": to_epoch(now),
        "recent": [c.recent.numerator, c.recent.denominator],
        "baseline": [c.baseline.numerator, c.baseline.denominator],
        "relative_drop": j.relative_drop,
        "p_value": j.p_value,
        "enough": j.enough,
    }


def _queue(
    session: Session, rule: AlertRule, state: AlertState, notice: AlertNotice, now: datetime
) -> None:
    session.add(
        AlertNotification(
            workspace_id=rule.workspace_id,
            rule_id=rule.id,
            alert_state_id=state.id,
            event=notice.event,
            event_key=f"{notice.event}:{to_epoch(now)}",
            scheduled_at=now,
            payload=notice.to_payload(),
            state="pending",
            created_at=now,
        )
    )


def apply_judgement(
    session: Session, rule: AlertRule, c: Comparison, j: Judgement, now: datetime
) -> Transition | None:
    """Move one (rule, key) through fire -> quiet -> resolve -> re-arm; queue what to say.

    Runs in the caller's transaction, so the state change and the notification it
    queues commit together (or neither does).
    """
    state = session.exec(
        select(AlertState).where(AlertState.rule_id == rule.id, AlertState.key == c.key)
    ).first()
    if j.firing and (state is None or state.state != "firing"):
        if state is None:
            state = AlertState(
                workspace_id=rule.workspace_id, rule_id=rule.id or 0, key=c.key, updated_at=now
            )
        cooldown = timedelta(hours=rule.cooldown_hours)
        notify = state.last_notified_at is None or now - state.last_notified_at >= cooldown
        state.state, state.fired_at, state.resolved_at = "firing", now, None
        if notify:
            state.last_notified_at = now
        state.details, state.updated_at = _details(c, j, now), now
        session.add(state)
        session.flush()
        notice = _notice(rule, c, j, "fired", state)
        if notify:
            _queue(session, rule, state, notice, now)
        return Transition(rule.id or 0, rule.kind, c.key, "fired", notify, notice)
    if state is None:
        return None
    state.details, state.updated_at = _details(c, j, now), now
    if j.recovered and state.state == "firing":
        # Announce the end only of a firing that was announced (not one the cooldown hid).
        announced = (
            state.last_notified_at is not None
            and state.fired_at is not None
            and state.last_notified_at >= state.fired_at
        )
        state.state, state.resolved_at = "resolved", now
        session.add(state)
        session.flush()
        notice = _notice(rule, c, j, "resolved", state)
        if announced:
            _queue(session, rule, state, notice, now)
        return Transition(rule.id or 0, rule.kind, c.key, "resolved", announced, notice)
    session.add(state)
    return None


def evaluate_rule(session: Session, rule: AlertRule, now: datetime) -> list[Transition]:
    """Measure the rule's keys as of `now`, judge them and apply the lifecycle."""
    comparisons = MEASURES[rule.kind](session, rule.workspace_id, now)
    # Several steps tested in one check: split alpha so the rule keeps its false-alarm
    # rate. Only among the steps that can fire at all (enough customers in both groups,
    # a baseline with successes): a step too small to be tested spends no alpha, so a
    # shop whose later steps are thin keeps the full power on the steps it has.
    tested = sum(
        testable(
            c.recent.denominator, c.baseline.numerator, c.baseline.denominator, rule.min_sample
        )
        for c in comparisons
    )
    alpha = ALPHA / max(1, tested)
    transitions = []
    for c in comparisons:
        j = judge(
            c.recent.numerator,
            c.recent.denominator,
            c.baseline.numerator,
            c.baseline.denominator,
            min_relative_drop=rule.min_relative_drop,
            min_sample=rule.min_sample,
            alpha=alpha,
        )
        t = apply_judgement(session, rule, c, j, now)
        if t is not None:
            transitions.append(t)
    return transitions


def _claim_check(session: Session, rule_id: int, now: datetime, interval: timedelta) -> bool:
    """Take this interval's check of a rule. On PostgreSQL the UPDATE holds the row lock
    until commit, so a second replica waits, then finds the check already taken."""
    result = session.execute(
        text(
            "UPDATE alert_rule SET last_checked_at = :now WHERE id = :id AND enabled = :yes "
            "AND channel_id IS NOT NULL AND (last_checked_at IS NULL OR last_checked_at <= :due)"
        ),
        {"id": rule_id, "now": to_epoch(now), "due": to_epoch(now - interval), "yes": True},
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def check_due_rules(
    engine: Engine,
    now: datetime,
    interval: timedelta = CHECK_INTERVAL,
    scope: Scope = EVERYTHING,
) -> list[Transition]:
    """Evaluate every enabled rule with a channel whose check is due (and in `scope`), each
    in its own transaction (claim, measure, change state, queue notifications, commit)."""
    where, params = scope.sql("alert_rule")
    with Session(engine) as session:
        due = session.execute(
            text(
                "SELECT id FROM alert_rule WHERE enabled = :yes AND channel_id IS NOT NULL "
                f"AND (last_checked_at IS NULL OR last_checked_at <= :due){where} ORDER BY id"
            ),
            {"due": to_epoch(now - interval), "yes": True, **params},
        ).all()
    transitions: list[Transition] = []
    for (rule_id,) in due:
        with Session(engine, expire_on_commit=False) as session:
            try:
                if not _claim_check(session, rule_id, now, interval):
                    session.rollback()
                    continue
                rule = session.get(AlertRule, rule_id)
                assert rule is not None
                found = evaluate_rule(session, rule, now)
                session.commit()
                transitions += found
            except Exception:
                session.rollback()
                log.exception("alert rule %s could not be evaluated", rule_id)
                # Still take the check, so a broken rule does not run on every tick.
                if _claim_check(session, rule_id, now, interval):
                    session.commit()
    return transitions


def request_check(session: Session, workspace_id: str) -> int:
    """Make the workspace's rules due at the next scheduler tick: new data has arrived.

    Called after a sync that changed the store, so a drop is announced within a
    tick of the data that shows it rather than up to a day later. Clearing the
    claim is enough: `check_due_rules` takes rules whose last check is unset, and
    the lifecycle (fire once, quiet, cooldown) keeps extra checks from repeating
    an alert. Returns the number of rules made due.
    """
    result = session.execute(
        text(
            "UPDATE alert_rule SET last_checked_at = NULL "
            "WHERE workspace_id = :ws AND enabled = :yes AND channel_id IS NOT NULL"
        ),
        {"ws": workspace_id, "yes": True},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def ensure_default_rules(
    session: Session, workspace_id: str, channel_id: str | None = None, now: datetime | None = None
) -> list[AlertRule]:
    """The workspace's rules, one per kind, created with the defaults if missing.

    Rules are evaluated only once they have a channel; `channel_id` sets it on
    the rules created now (existing rules are left as they are). Safe to call
    from several replicas at once: the (workspace, kind) pair is unique.
    """
    now = now or datetime.now(UTC)
    rules = []
    for kind in ALERT_KINDS:
        rule = session.exec(
            select(AlertRule).where(AlertRule.workspace_id == workspace_id, AlertRule.kind == kind)
        ).first()
        if rule is None:
            rule = AlertRule(
                workspace_id=workspace_id,
                kind=kind,
                channel_id=channel_id,
                created_at=now,
                **DEFAULT_RULES[kind],  # type: ignore[arg-type]
            )
            try:
                with session.begin_nested():
                    session.add(rule)
            except IntegrityError:
                rule = session.exec(
                    select(AlertRule).where(
                        AlertRule.workspace_id == workspace_id, AlertRule.kind == kind
                    )
                ).one()
        rules.append(rule)
    return rules


def route_default_rules(
    session: Session, workspace_id: str, channel_id: str, now: datetime | None = None
) -> list[AlertRule]:
    """The workspace's rules (created with the defaults if missing); those with no
    destination yet get `channel_id`.

    For the places where the app picks a destination on the team's behalf: the
    install (a digest channel, else a direct message with the installer) and the
    first digest a channel subscribes to. A rule that already has a channel keeps
    it: a channel someone chose with `/journey alerts channel` must not move
    because a digest starts somewhere else. Rules without a channel are never
    checked, so without this step defaults created on install would stay silent.
    """
    rules = ensure_default_rules(session, workspace_id, channel_id, now)
    for rule in rules:
        if rule.channel_id is None:
            rule.channel_id = channel_id
            session.add(rule)
    session.flush()
    return rules
