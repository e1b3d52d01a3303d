"""Alert acknowledgements, stored: who acknowledged which announcement and when, once,
per workspace; the alert still resolves by the data and a new firing needs a new one.

Run on SQLite and PostgreSQL (the `engine` fixture). The alert goes through the real
lifecycle (apply_judgement) and the real delivery (run_due with a port answering with
a message ts, as Slack's does).
"""

from __future__ import annotations

import threading
from datetime import timedelta

from builders import NOW, make_shop
from sqlalchemy import Engine
from sqlmodel import Session, select
from test_alerts import FIRING, GONE, comparison

from journey.db import make_engine
from journey.models.schedule import AlertAck, AlertNotification, AlertRule
from journey.schedule.acks import acknowledge, firing_alerts
from journey.schedule.alerts import apply_judgement, ensure_default_rules
from journey.schedule.runner import Delivery, DeliveryResult, run_due

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


class Channel:
    """A delivery port that posts into a list and answers with the message's ts."""

    def __init__(self) -> None:
        self.posts: list[Delivery] = []

    def __call__(self, delivery: Delivery) -> DeliveryResult:
        self.posts.append(delivery)
        return DeliveryResult.ok(f"1700000000.{len(self.posts):06d}")

    def ts(self, index: int) -> str:
        return f"1700000000.{index + 1:06d}"


def retention_rule(engine: Engine, workspace: str = "shop") -> int:
    with Session(engine) as session:
        make_shop(session, workspace)
        rules = ensure_default_rules(session, workspace, channel_id="C-ALERTS", now=NOW)
        session.commit()
        return next(r.id for r in rules if r.kind == "retention_drop")


def judge_at(engine: Engine, rule_id: int, judgement, when) -> None:
    with Session(engine) as session:
        rule = session.get(AlertRule, rule_id)
        assert rule is not None
        recent = (70, 200) if judgement is FIRING else (100, 200)
        apply_judgement(session, rule, comparison(recent), judgement, when)
        session.commit()


def deliver(engine: Engine, chat: Channel, when) -> None:
    # A week's check interval: the test decides when rules are judged, not the tick.
    run_due(engine, when, chat, "replica-1", alert_interval=timedelta(days=365))


def acks(engine: Engine) -> list[AlertAck]:
    with Session(engine) as session:
        return list(session.exec(select(AlertAck)))


def test_an_acknowledgement_is_stored_and_a_second_click_says_who(engine):
    rule_id = retention_rule(engine)
    judge_at(engine, rule_id, FIRING, NOW)
    chat = Channel()
    deliver(engine, chat, NOW)
    assert [d.kind for d in chat.posts] == ["alert"]

    first = acknowledge(
        engine,
        "shop",
        rule_id=rule_id,
        key="repeat_rate",
        user_id="U0ALICE",
        message_ref=chat.ts(0),
        now=NOW + HOUR,
    )
    assert first.status == "acknowledged" and not first.resolved
    assert first.ack is not None and first.ack.user_id == "U0ALICE"
    assert first.title == "Repeat purchases dropped"
    (row,) = acks(engine)
    with Session(engine) as session:
        fired = session.exec(select(AlertNotification)).one()
    assert (row.workspace_id, row.notification_id, row.alert_state_id) == (
        "shop",
        fired.id,
        fired.alert_state_id,
    )
    assert (row.user_id, row.acked_at) == ("U0ALICE", NOW + HOUR)

    second = acknowledge(
        engine,
        "shop",
        rule_id=rule_id,
        key="repeat_rate",
        user_id="U0BOB",
        message_ref=chat.ts(0),
        now=NOW + 2 * HOUR,
    )
    assert second.status == "already"
    assert second.ack is not None
    assert (second.ack.user_id, second.ack.acked_at) == ("U0ALICE", NOW + HOUR)
    assert len(acks(engine)) == 1

    with Session(engine) as session:
        (alert,) = firing_alerts(session, "shop")
    assert alert.announced and alert.ack is not None and alert.ack.user_id == "U0ALICE"
    assert (alert.kind, alert.key, alert.channel_id) == (
        "retention_drop",
        "repeat_rate",
        "C-ALERTS",
    )


def test_an_acknowledged_alert_still_resolves_and_a_new_firing_needs_a_new_ack(engine):
    rule_id = retention_rule(engine)
    chat = Channel()
    judge_at(engine, rule_id, FIRING, NOW)
    deliver(engine, chat, NOW)
    acknowledge(
        engine,
        "shop",
        rule_id=rule_id,
        key="repeat_rate",
        user_id="U0ALICE",
        message_ref=chat.ts(0),
        now=NOW + HOUR,
    )

    # The data recovers: the resolution is announced although the alert was acknowledged.
    judge_at(engine, rule_id, GONE, NOW + 6 * DAY)
    deliver(engine, chat, NOW + 6 * DAY)
    assert [d.alert.event for d in chat.posts if d.alert] == ["fired", "resolved"]
    with Session(engine) as session:
        assert firing_alerts(session, "shop") == []

    # It drops again after the cooldown: a new announcement, not acknowledged yet.
    judge_at(engine, rule_id, FIRING, NOW + 10 * DAY)
    deliver(engine, chat, NOW + 10 * DAY)
    assert [d.alert.event for d in chat.posts if d.alert] == ["fired", "resolved", "fired"]
    with Session(engine) as session:
        (alert,) = firing_alerts(session, "shop")
    assert alert.announced and alert.ack is None and alert.fired_at == NOW + 10 * DAY

    # A click on the old message is about the old announcement: it changes nothing now.
    old = acknowledge(
        engine,
        "shop",
        rule_id=rule_id,
        key="repeat_rate",
        user_id="U0CAROL",
        message_ref=chat.ts(0),
        now=NOW + 10 * DAY + HOUR,
    )
    assert old.status == "already" and old.resolved and old.ack.user_id == "U0ALICE"
    with Session(engine) as session:
        assert firing_alerts(session, "shop")[0].ack is None

    new = acknowledge(
        engine,
        "shop",
        rule_id=rule_id,
        key="repeat_rate",
        user_id="U0BOB",
        message_ref=chat.ts(2),
        now=NOW + 10 * DAY + 2 * HOUR,
    )
    assert new.status == "acknowledged" and not new.resolved
    with Session(engine) as session:
        (alert,) = firing_alerts(session, "shop")
    assert alert.ack is not None and alert.ack.user_id == "U0BOB"
    assert sorted(a.user_id for a in acks(engine)) == ["U0ALICE", "U0BOB"]


def test_without_a_known_message_the_latest_announcement_is_acknowledged(engine):
    rule_id = retention_rule(engine)
    judge_at(engine, rule_id, FIRING, NOW)
    deliver(engine, Channel(), NOW)
    result = acknowledge(
        engine,
        "shop",
        rule_id=rule_id,
        key="repeat_rate",
        user_id="U0ALICE",
        message_ref="9999.000000",
        now=NOW + HOUR,
    )
    assert result.status == "acknowledged"


def test_acknowledgements_stay_in_their_workspace(engine):
    rule_id = retention_rule(engine)
    retention_rule(engine, "other")
    judge_at(engine, rule_id, FIRING, NOW)
    chat = Channel()
    deliver(engine, chat, NOW)
    # The other workspace's user clicks a button carrying this workspace's rule id.
    forged = acknowledge(
        engine,
        "other",
        rule_id=rule_id,
        key="repeat_rate",
        user_id="U0MALLORY",
        message_ref=chat.ts(0),
        now=NOW,
    )
    assert forged.status == "not_found"
    unknown = acknowledge(engine, "shop", rule_id=rule_id, key="nope", user_id="U0ALICE")
    assert unknown.status == "not_found"
    assert acks(engine) == []
    with Session(engine) as session:
        assert firing_alerts(session, "other") == []


def test_clicks_racing_on_several_replicas_store_one_acknowledgement(engine):
    rule_id = retention_rule(engine)
    judge_at(engine, rule_id, FIRING, NOW)
    chat = Channel()
    deliver(engine, chat, NOW)
    url = engine.url.render_as_string(hide_password=False)
    replicas = 6
    barrier = threading.Barrier(replicas)
    results: list = []
    errors: list[BaseException] = []

    def click(i: int) -> None:
        eng = make_engine(url)
        try:
            barrier.wait()
            results.append(
                acknowledge(
                    eng,
                    "shop",
                    rule_id=rule_id,
                    key="repeat_rate",
                    user_id=f"U{i}",
                    message_ref=chat.ts(0),
                    now=NOW + HOUR,
                )
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=click, args=(i,)) for i in range(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    statuses = sorted(r.status for r in results)
    assert statuses == ["acknowledged"] + ["already"] * (replicas - 1)
    (row,) = acks(engine)
    winner = next(r for r in results if r.status == "acknowledged")
    assert {r.ack.user_id for r in results} == {row.user_id} == {winner.ack.user_id}
