"""Digests and alerts on Slack: the commands over signed requests, and run_due with the
Slack delivery port against the fake Slack (which checks Block Kit limits, channel
membership, archival and rate limits, and records every call).

Time is passed to run_due, never read: a digest is "due" because `now` says so.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from builders import make_shop
from fakes.signing import block_actions, signed_headers, slash_command
from fakes.slack_api import DEFAULT_BOT_SCOPES, DEFAULT_BOT_TOKEN, FakeSlack
from sqlalchemy import Engine
from sqlalchemy import text as sa_text
from sqlmodel import Session, select

from bot.app import build_app
from bot.blocks.digest import (
    A_ALERT_ACK,
    A_OPEN_REPORT,
    alert_message,
    digest_message,
    open_report_id,
)
from bot.commands.service import ReportService
from bot.config import BotSettings
from bot.deps import Deps
from bot.posting.delivery import EVENT_TYPE, Pacer, SlackDelivery, static_token
from bot.posting.loop import scheduler_interval
from bot.server import asgi_app
from journey.db import make_engine, session_scope, upgrade
from journey.demo import load_demo
from journey.errors import JourneyError
from journey.models.schedule import AlertAck, AlertRule, DigestDelivery, DigestSubscription
from journey.reports import ChurnCustomer
from journey.schedule import AlertNotice, digest_for_subscription, subscribe
from journey.schedule.digests import MissedDigest
from journey.schedule.leases import Scope
from journey.schedule.runner import Delivery, PauseNotice, run_due

SECRET = "test-signing-secret"
MIN = timedelta(minutes=1)
# Monday 15 June 2026, 09:00 in Paris.
MONDAY_9_PARIS = datetime(2026, 6, 15, 7, 0, tzinfo=UTC)


class Crash(BaseException):
    """The process dies here (like kill -9): nothing after it runs."""


# --------------------------------------------------------------------------- helpers

# The channels these tests' digests and alerts go to, with the bot invited (Slack does not
# add a bot to a channel by itself; C0OUTSIDE, C0ARCHIVED and C0NOPE are set up apart).
INVITED = ("C0DIGEST", "C0ALERTS", "C0SALES", "C0DAILY", "C0MONTHLY", "C0BIG", "C0X")


def invited_slack(**kwargs) -> FakeSlack:
    return FakeSlack(member_of=INVITED, **kwargs)


def no_sleep_pacer() -> tuple[Pacer, list[float]]:
    slept: list[float] = []
    return Pacer(sleep=slept.append), slept


def port_for(fake: FakeSlack, pacer: Pacer | None = None) -> SlackDelivery:
    return SlackDelivery(
        static_token(DEFAULT_BOT_TOKEN),
        base_url=fake.api_url,
        pacer=pacer or no_sleep_pacer()[0],
    )


@pytest.fixture
def store(tmp_path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'journey.db'}")
    upgrade(engine)
    return engine


def shop_with_subscription(
    engine: Engine,
    channel: str = "C0DIGEST",
    subscriber: str = "U0OWNER",
    workspace: str = "T0JOURNEY",
) -> int:
    """A small shop with sales this week and last, and a Monday 09:00 Paris digest."""
    with Session(engine) as session:
        shop = make_shop(session, workspace)
        for i in range(12):
            when = MONDAY_9_PARIS - timedelta(days=1 + i % 12, hours=3)
            shop.customer(
                f"c{i}",
                ("visit", when - timedelta(days=2)),
                ("order", when, 4000 + 100 * i),
                channel="ads",
                name=f"Customer {i}",
            )
        sub = subscribe(
            session,
            workspace,
            channel,
            cadence="weekly",
            local_time="09:00",
            timezone="Europe/Paris",
            day_of_week=0,
            subscriber_user_id=subscriber,
            now=MONDAY_9_PARIS - timedelta(days=7) + timedelta(hours=3),
        )
        session.commit()
        assert sub.id is not None
        return sub.id


def digests_posted(fake: FakeSlack, channel: str = "C0DIGEST") -> list:
    """The digest text messages in `channel` (not the chart replies uploaded under them)."""
    return [m for m in fake.posted(channel) if not m.files]


def sub_row(engine: Engine, sub_id: int) -> DigestSubscription:
    with Session(engine) as session:
        sub = session.get(DigestSubscription, sub_id)
        assert sub is not None
        return sub


def dumped(message) -> str:
    return json.dumps({"text": message.text, "blocks": message.blocks}, ensure_ascii=False)


def notice(**overrides) -> AlertNotice:
    payload = {
        "rule_id": 1,
        "workspace_id": "T0JOURNEY",
        "kind": "retention_drop",
        "key": "repeat_rate",
        "event": "fired",
        "title": "Repeat purchases dropped",
        "summary": (
            "Repeat purchases dropped: 21% of the 240 customers who first bought between "
            "2026-04-18 and 2026-05-15 bought again within 30 days, against 33% of 1400 first "
            "buyers of the 24 weeks before (36% lower, p = 0.001)."
        ),
        "stage": "retention",
        "playbook_stage": "retention",
        "recent": [50, 240],
        "baseline": [462, 1400],
        "relative_drop": 0.36,
        "p_value": 0.001,
        "recent_group": "customers who first bought between 2026-04-18 and 2026-05-15",
        "baseline_group": "first buyers of the 24 weeks before",
        "outcome": "bought again within 30 days",
        "recent_window": [1776470400, 1778889600],
        "baseline_window": [1761955200, 1776470400],
        "fired_at": 1781600000,
        "resolved_at": None,
        "customers": [],
    }
    payload.update(overrides)
    return AlertNotice.from_payload(payload)


def alert_delivery(channel: str = "C0ALERTS", **overrides) -> Delivery:
    return Delivery(
        kind="alert",
        idempotency_key="alert:1:fired:1781600000",
        workspace_id="T0JOURNEY",
        channel_id=channel,
        attempt=1,
        may_have_been_sent=False,
        late=False,
        scheduled_at=MONDAY_9_PARIS,
        alert=notice(**overrides),
    )


# ----------------------------------------------------------------- run_due + the port


def test_a_digest_is_posted_once_at_its_time_with_the_numbers_and_buttons(store):
    sub_id = shop_with_subscription(store)
    with invited_slack() as fake:
        port = port_for(fake)
        early = run_due(store, MONDAY_9_PARIS - MIN, port, "r1")
        assert not early.sent and not fake.posted()
        report = run_due(store, MONDAY_9_PARIS + timedelta(seconds=30), port, "r1")
        assert report.sent == [f"digest:{sub_id}:2026-06-15T09:00"]
        again = run_due(store, MONDAY_9_PARIS + 2 * MIN, port, "r1")
        assert not again.sent
        (message,) = digests_posted(fake)
        assert message.metadata == {
            "event_type": EVENT_TYPE,
            "event_payload": {"key": f"digest:{sub_id}:2026-06-15T09:00", "kind": "digest"},
        }
        text = dumped(message)
        assert message.blocks[0]["type"] == "header"
        assert "Weekly digest · 2026-06-08 to 2026-06-14" in text
        for label in ("New customers", "Purchases", "Revenue (net of refunds)", "Returning buyers"):
            assert label in text
        assert "Next digest Mon 22 Jun 2026, 09:00 (Europe/Paris)" in text
        assert "Late" not in text
        actions = [b for b in message.blocks if b["type"] == "actions"]
        assert [e["action_id"] for e in actions[0]["elements"]] == [
            open_report_id("funnel"),
            open_report_id("retention"),
        ]
        assert json.loads(actions[0]["elements"][0]["value"]) == {
            "k": "funnel",
            "p": "2026-06-08..2026-06-14",
        }
        with Session(store) as session:
            (row,) = session.exec(select(DigestDelivery)).all()
        assert row.state == "sent" and row.external_ref == message.ts


PNG = b"\x89PNG\r\n\x1a\n"


def test_the_funnel_chart_follows_the_digest_in_its_thread(store):
    shop_with_subscription(store)
    with invited_slack() as fake:
        report = run_due(store, MONDAY_9_PARIS + MIN, port_for(fake), "r1")
        assert report.sent
        (message,) = digests_posted(fake)
        (file,) = fake.files.values()
        assert file.completed and file.channels == ["C0DIGEST"]
        assert file.thread_ts == message.ts  # a reply under the digest, not a new post
        assert file.data is not None and file.data.startswith(PNG)
        assert file.title == "Funnel · the 7 days to 2026-06-14"
        assert file.alt_txt and file.alt_txt.startswith("Funnel of the 7 days to 2026-06-14:")
        # The text went first, and once.
        assert len(fake.calls_to("chat.postMessage")) == 1
        methods = [c.method for c in fake.calls]
        assert methods.index("chat.postMessage") < methods.index("files.getUploadURLExternal")


def test_without_files_write_the_digest_is_text_only_and_not_paused(store):
    sub_id = shop_with_subscription(store)
    with invited_slack() as fake:
        scopes = [s for s in DEFAULT_BOT_SCOPES if s != "files:write"]
        fake.add_token(
            DEFAULT_BOT_TOKEN, team_id=fake.team_id, scopes=scopes, bot_id="B0JBOT",
            user_id="U0JBOT",
        )  # fmt: skip
        report = run_due(store, MONDAY_9_PARIS + MIN, port_for(fake), "r1")
        assert report.sent and not report.retrying and not report.paused
        (upload,) = fake.calls_to("files.getUploadURLExternal")
        assert upload.error == "missing_scope"
        assert len(digests_posted(fake)) == 1 and not any(f.completed for f in fake.files.values())
        assert sub_row(store, sub_id).status == "active"
        later = run_due(store, MONDAY_9_PARIS + 10 * MIN, port_for(fake), "r1")
        assert not later.sent and len(fake.calls_to("chat.postMessage")) == 1


@pytest.mark.parametrize("fault", ["refused", "upload_500", "network", "crash"])
def test_a_failed_chart_never_posts_the_digest_text_again(store, fault):
    """The chart is extra: refused, failing, a dropped connection, or the replica dying
    while uploading it, the digest text is posted once and the subscription stays on;
    a chart that could not be attached is said in one line added to the digest."""
    sub_id = shop_with_subscription(store)
    with invited_slack() as fake:
        port = port_for(fake)
        if fault == "refused":
            fake.fail("files.completeUploadExternal", "not_allowed")
        elif fault == "upload_500":
            fake.server_error("upload", status=500, times=5)
        elif fault == "network":
            fake.drop("files.getUploadURLExternal", times=5)
        if fault == "crash":

            def dies(*_args) -> bool:
                raise Crash()

            crashing = port_for(fake)
            crashing._attach_chart = dies  # type: ignore[method-assign]
            with pytest.raises(Crash):
                run_due(store, MONDAY_9_PARIS + MIN, crashing, "dead")
            # The lease lapses; the next holder knows from the database that the text
            # is posted (its ts was recorded as soon as Slack answered).
            report = run_due(store, MONDAY_9_PARIS + 7 * MIN, port, "r2")
            assert not fake.calls_to("conversations.history")
        else:
            report = run_due(store, MONDAY_9_PARIS + MIN, port, "r1")
        assert report.sent and not report.retrying and not report.paused
        if fault == "refused":
            assert [c.error for c in fake.calls_to("files.completeUploadExternal")] == [
                "not_allowed"
            ]
        elif fault == "upload_500":
            assert {c.status for c in fake.calls_to("upload")} == {500}
        for minutes in (10, 30, 90):
            assert not run_due(store, MONDAY_9_PARIS + minutes * MIN, port, "r3").sent
        assert len(fake.calls_to("chat.postMessage")) == 1
        (digest,) = digests_posted(fake)
        assert sub_row(store, sub_id).status == "active"
        if fault != "crash":
            assert digest.updates == 1
            lines = [b for b in digest.blocks if "could not be attached" in json.dumps(b)]
            assert len(lines) == 1


def test_a_late_digest_says_so(store):
    shop_with_subscription(store)
    with invited_slack() as fake:
        run_due(store, MONDAY_9_PARIS + timedelta(minutes=40), port_for(fake), "r1")
        (message,) = digests_posted(fake)
        assert "Late: this digest was due Mon 15 Jun 2026, 09:00 (Europe/Paris)" in dumped(message)


def test_the_next_digest_tells_the_channel_about_one_skipped_for_being_too_late(store):
    shop_with_subscription(store)
    with invited_slack() as fake:
        port = port_for(fake)
        assert run_due(store, MONDAY_9_PARIS + MIN, port, "r1").sent
        # journey is down from then until Tuesday 30 June, 08:00 in Paris: the 22 June
        # digest is more than a day late (skipped), the 29 June one 23 hours (sent, late).
        back = datetime(2026, 6, 30, 6, 0, tzinfo=UTC)
        report = run_due(store, back, port, "r1")
        assert len(report.skipped) == 1 and len(report.sent) == 1
        first, second = digests_posted(fake)
        text = dumped(second)
        assert "Late: this digest was due Mon 29 Jun 2026, 09:00 (Europe/Paris)" in text
        assert (
            "The digest due Mon 22 Jun 2026, 09:00 (Europe/Paris) was skipped: journey was "
            "down for 7 days, and a digest more than a day late is not sent."
        ) in text
        assert "was skipped" in second.text  # in the notification text too
        assert "skipped" not in dumped(first)
        # Told once: the next digest does not repeat it.
        assert run_due(store, datetime(2026, 7, 6, 7, 1, tzinfo=UTC), port, "r1").sent
        assert "skipped" not in dumped(digests_posted(fake)[-1])


def test_an_archived_channel_pauses_the_digest_and_tells_the_subscriber(store):
    sub_id = shop_with_subscription(store, channel="C0ARCHIVED")
    with invited_slack() as fake:
        fake.add_user("U0OWNER", tz="Europe/Paris")
        fake.add_channel("C0ARCHIVED", is_archived=True)
        report = run_due(store, MONDAY_9_PARIS + MIN, port_for(fake), "r1")
        assert not fake.posted("C0ARCHIVED")
        assert [p.subscription_id for p in report.paused] == [sub_id]
        sub = sub_row(store, sub_id)
        assert sub.status == "paused" and "archived" in (sub.pause_reason or "")
        (dm,) = fake.posted("D0OWNER")
        assert fake.last("conversations.open").params["users"] == "U0OWNER"
        text = dumped(dm)
        assert "paused the digest in <#C0ARCHIVED>" in text
        assert "unarchive it or pick another channel" in text
        assert "/journey digest" in text
        assert "type `/journey help` here" in text  # the Messages tab is on: answer there
        # Paused: the next Monday sends nothing.
        run_due(store, MONDAY_9_PARIS + timedelta(days=7, minutes=1), port_for(fake), "r1")
        assert not fake.posted("C0ARCHIVED") and len(fake.posted("D0OWNER")) == 1


def test_not_in_a_public_channel_joins_it_then_posts(store):
    sub_id = shop_with_subscription(store, channel="C0OUTSIDE")
    with invited_slack() as fake:
        fake.add_channel("C0OUTSIDE", is_member=False)
        report = run_due(store, MONDAY_9_PARIS + MIN, port_for(fake), "r1")
        assert report.sent
        assert [c.params["channel"] for c in fake.calls_to("conversations.join")] == ["C0OUTSIDE"]
        assert len(digests_posted(fake, "C0OUTSIDE")) == 1
        assert sub_row(store, sub_id).status == "active"


def test_not_in_channel_and_unable_to_join_pauses_with_the_invite_hint(store):
    sub_id = shop_with_subscription(store, channel="C0OUTSIDE")
    with invited_slack() as fake:
        fake.add_user("U0OWNER")
        fake.add_channel("C0OUTSIDE", is_member=False)
        # An install without channels:join: the join is tried and refused.
        fake.add_token(
            DEFAULT_BOT_TOKEN,
            team_id=fake.team_id,
            scopes=[
                "commands",
                "chat:write",
                "users:read",
                "im:write",
                "channels:history",
                "channels:read",
            ],
            bot_id="B0JBOT",
            user_id="U0JBOT",
        )
        run_due(store, MONDAY_9_PARIS + MIN, port_for(fake), "r1")
        (join,) = fake.calls_to("conversations.join")
        assert join.error == "missing_scope"
        assert not digests_posted(fake, "C0OUTSIDE")
        sub = sub_row(store, sub_id)
        assert sub.status == "paused" and "/invite @journey" in (sub.pause_reason or "")
        (dm,) = fake.posted("D0OWNER")
        assert "/invite @journey" in dumped(dm)


def test_a_429_is_waited_out_for_its_retry_after(store):
    shop_with_subscription(store)
    with invited_slack() as fake:
        fake.rate_limit("chat.postMessage", retry_after=1, times=1)
        started = time.monotonic()
        report = run_due(store, MONDAY_9_PARIS + MIN, port_for(fake), "r1")
        assert time.monotonic() - started >= 1.0
        assert report.sent
        calls = fake.calls_to("chat.postMessage")
        assert [c.status for c in calls] == [429, 200]
        assert len(digests_posted(fake)) == 1


def test_a_lasting_rate_limit_is_retried_on_a_later_tick(store):
    shop_with_subscription(store)
    with invited_slack() as fake:
        fake.rate_limit("chat.postMessage", retry_after=0, times=10)
        port = SlackDelivery(
            static_token(DEFAULT_BOT_TOKEN),
            base_url=fake.api_url,
            pacer=no_sleep_pacer()[0],
            rate_limit_retries=1,
        )
        report = run_due(store, MONDAY_9_PARIS + MIN, port, "r1")
        assert not report.sent and report.retrying
        assert "rate limited" in report.retrying[0][1]
        assert not fake.posted()
        fake.clear_faults()
        later = run_due(store, MONDAY_9_PARIS + 5 * MIN, port, "r1")
        assert later.sent and len(digests_posted(fake)) == 1


def test_posts_to_one_channel_are_paced_to_one_a_second(store):
    """Two messages to one channel in one tick: the port waits, so Slack never says 429."""
    shop_with_subscription(store)
    with invited_slack(channel_rate_limit=True, channel_burst=1) as fake:
        port = port_for(fake, Pacer())  # real sleeps
        started = time.monotonic()
        assert port(alert_delivery("C0DIGEST")).status == "ok"
        report = run_due(store, MONDAY_9_PARIS + MIN, port, "r1")
        assert report.sent
        assert time.monotonic() - started >= 0.9
        assert [c.status for c in fake.calls_to("chat.postMessage")] == [200, 200]
        assert len(digests_posted(fake)) == 2


def test_two_replicas_racing_post_one_message(store, tmp_path):
    shop_with_subscription(store)
    url = f"sqlite:///{tmp_path / 'journey.db'}"
    with invited_slack() as fake:
        barrier = threading.Barrier(2)
        reports = []

        def replica(name: str) -> None:
            engine = make_engine(url)
            port = port_for(fake)
            barrier.wait()
            reports.append(run_due(engine, MONDAY_9_PARIS + MIN, port, name))
            engine.dispose()

        threads = [threading.Thread(target=replica, args=(f"r{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(reports) == 2
        assert sum(len(r.sent) for r in reports) == 1
        assert len(digests_posted(fake)) == 1


# ------------------------------------------- replicas racing on PostgreSQL, real Slack port


@pytest.fixture
def pg_store(pg_engine: Engine) -> Engine:
    """The session's throw-away PostgreSQL database, emptied (skipped without
    JOURNEY_TEST_DATABASE_URL, with the reason, like every PostgreSQL test)."""
    from conftest import TABLES

    with pg_engine.begin() as conn:
        conn.execute(sa_text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    return pg_engine


def _race_replicas(url: str, fake: FakeSlack, now: datetime, replicas: int) -> list:
    """`replicas` threads, each a replica with its own engine (its own connections) and its
    own SlackDelivery, released together against the same fake Slack."""
    barrier = threading.Barrier(replicas)
    reports: list = []
    errors: list[BaseException] = []

    def replica(i: int) -> None:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(sa_text("SELECT 1"))  # connected before the start line
            port = port_for(fake)
            barrier.wait()
            reports.append(run_due(engine, now, port, f"replica-{i}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(reports) == replicas
    return reports


def test_replicas_racing_on_postgresql_post_the_digest_once(pg_store):
    sub_id = shop_with_subscription(pg_store)
    url = pg_store.url.render_as_string(hide_password=False)
    with invited_slack() as fake:
        reports = _race_replicas(url, fake, MONDAY_9_PARIS + MIN, replicas=6)
        assert sum(len(r.sent) for r in reports) == 1
        (message,) = digests_posted(fake)
        assert len(fake.calls_to("chat.postMessage")) == 1
        (chart,) = [f for f in fake.files.values() if f.completed]  # one chart, under it
        assert chart.thread_ts == message.ts
        assert message.metadata["event_payload"]["key"] == f"digest:{sub_id}:2026-06-15T09:00"
        with Session(pg_store) as session:
            (row,) = session.exec(select(DigestDelivery)).all()
        assert row.state == "sent" and row.external_ref == message.ts


def test_on_postgresql_a_replica_dying_after_its_claim_is_replaced_by_exactly_one(pg_store):
    """Killed after claiming, before posting: its lease expires, the racing replicas take
    it over, one of them posts."""
    shop_with_subscription(pg_store)
    url = pg_store.url.render_as_string(hide_password=False)
    with invited_slack() as fake:

        def dies(_delivery: Delivery):
            raise Crash()

        with pytest.raises(Crash):
            run_due(pg_store, MONDAY_9_PARIS + MIN, dies, "dead")
        assert not fake.posted()
        # Within the lease nobody takes it over.
        early = _race_replicas(url, fake, MONDAY_9_PARIS + 3 * MIN, replicas=4)
        assert not any(r.sent for r in early) and not fake.posted()
        later = _race_replicas(url, fake, MONDAY_9_PARIS + 7 * MIN, replicas=6)
        assert sum(len(r.sent) for r in later) == 1
        assert len(digests_posted(fake)) == 1
        assert len(fake.calls_to("chat.postMessage")) == 1


def test_on_postgresql_a_replica_dying_after_posting_is_finished_without_a_second_post(
    pg_store,
):
    """Killed after the post: the replica that takes the expired lease over knows from
    the ts recorded right after the post that the message is there, and does not post."""
    shop_with_subscription(pg_store)
    url = pg_store.url.render_as_string(hide_password=False)
    with invited_slack() as fake:
        port = port_for(fake)

        def posts_then_dies(delivery: Delivery):
            port(delivery)
            raise Crash()

        with pytest.raises(Crash):
            run_due(pg_store, MONDAY_9_PARIS + MIN, posts_then_dies, "dead")
        (first,) = digests_posted(fake)
        reports = _race_replicas(url, fake, MONDAY_9_PARIS + 7 * MIN, replicas=6)
        assert sum(len(r.sent) for r in reports) == 1
        assert digests_posted(fake) == [first]
        assert len(fake.calls_to("chat.postMessage")) == 1
        assert not fake.calls_to("conversations.history")
        with Session(pg_store) as session:
            (row,) = session.exec(select(DigestDelivery)).all()
        assert row.state == "sent" and row.external_ref == first.ts


def test_after_a_crash_after_the_post_the_recorded_ts_prevents_a_repeat(store):
    sub_id = shop_with_subscription(store)
    with invited_slack() as fake:
        port = port_for(fake)

        def crashing(delivery: Delivery):
            port(delivery)
            raise Crash()

        with pytest.raises(Crash):
            run_due(store, MONDAY_9_PARIS + MIN, crashing, "r1")
        (first,) = digests_posted(fake)
        # The lease (5 minutes) lapses; another replica takes over: the database already
        # holds the ts, so Slack's history (once a minute, 15 messages) is not needed.
        report = run_due(store, MONDAY_9_PARIS + 7 * MIN, port, "r2")
        assert report.sent
        assert not fake.calls_to("conversations.history")
        assert digests_posted(fake) == [first]
        with Session(store) as session:
            (row,) = session.exec(select(DigestDelivery)).all()
        assert (row.state, row.external_ref, row.subscription_id) == ("sent", first.ts, sub_id)


class SlackClock:
    """The fake Slack's clock, set to the scheduler's `now` so message timestamps and the
    history window of a retry line up, as they do between real Slack and a real server."""

    def __init__(self, now: datetime) -> None:
        self.now = now.timestamp()

    def __call__(self) -> float:
        return self.now

    def at(self, when: datetime) -> datetime:
        self.now = when.timestamp()
        return when


def _lost_answer(port: SlackDelivery):
    """A replica whose post reached Slack but whose answer never came back (a timeout
    after Slack accepted it): nothing is recorded, then it dies."""

    def deliver(delivery: Delivery):
        port(replace(delivery, on_posted=None))
        raise Crash()

    return deliver


@pytest.mark.parametrize("channel", ["C0DIGEST", "G0PRIVATE"])
def test_a_post_whose_answer_was_lost_is_found_in_15_messages_of_history(store, channel):
    """Public channels need channels:history, private ones groups:history (both asked)."""
    shop_with_subscription(store, channel=channel)
    clock = SlackClock(MONDAY_9_PARIS + MIN)
    with invited_slack(clock=clock) as fake:
        fake.add_channel("G0PRIVATE", is_private=True)  # journey was invited
        port = port_for(fake)
        with pytest.raises(Crash):
            run_due(store, clock.at(MONDAY_9_PARIS + MIN), _lost_answer(port), "r1")
        (first,) = digests_posted(fake, channel)
        # The channel carries on: a dozen messages from people after the digest.
        other = fake.web_client()
        for i in range(12):
            clock.at(MONDAY_9_PARIS + MIN + (i + 1) * timedelta(seconds=10))
            other.chat_postMessage(channel=channel, text=f"chatter {i}")
        report = run_due(store, clock.at(MONDAY_9_PARIS + 7 * MIN), port, "r2")
        assert report.sent
        (history,) = fake.calls_to("conversations.history")
        assert int(history.params["limit"]) == 15
        assert float(history.params["oldest"]) < float(first.ts)
        assert history.ok
        assert digests_posted(fake, channel)[0] == first
        assert len(fake.calls_to("chat.postMessage")) == 1 + 12


def test_a_rate_limited_history_check_retries_later_and_still_posts_once(store):
    """Slack allows a distributed app one history call a minute: the check that hits the
    limit posts nothing, and the next attempt checks again and finds the digest."""
    shop_with_subscription(store)
    clock = SlackClock(MONDAY_9_PARIS + MIN)
    with invited_slack(clock=clock) as fake:
        port = port_for(fake)
        with pytest.raises(Crash):
            run_due(store, clock.at(MONDAY_9_PARIS + MIN), _lost_answer(port), "r1")
        fake.rate_limit("conversations.history", retry_after=60)
        report = run_due(store, clock.at(MONDAY_9_PARIS + 7 * MIN), port, "r2")
        assert report.retrying and not report.sent
        assert len(fake.calls_to("chat.postMessage")) == 1
        later = MONDAY_9_PARIS + 7 * MIN + timedelta(hours=1)
        report = run_due(store, clock.at(later), port, "r3")
        assert report.sent
        assert [c.status for c in fake.calls_to("conversations.history")] == [429, 200]
        assert len(digests_posted(fake)) == 1


def test_an_unconfirmed_notice_in_a_dm_never_reads_dm_history(store):
    """Reading a DM's history needs im:history, which journey does not ask for."""
    port_calls: list[Delivery] = []
    with invited_slack() as fake:
        fake.add_user("U0OWNER")
        port = port_for(fake)
        notice = replace(
            alert_delivery(),
            kind="pause_notice",
            channel_id="U0OWNER",
            may_have_been_sent=True,
            alert=None,
            notice=PauseNotice(1, "C0DIGEST", "is_archived", "every Monday at 09:00"),
        )
        port_calls.append(notice)
        assert port(notice).status == "ok"
        assert not fake.calls_to("conversations.history")
        assert fake.posted("D0OWNER")


def test_an_alert_is_posted_with_its_explanation_and_buttons(store):
    with invited_slack() as fake:
        result = port_for(fake)(alert_delivery())
        assert result.status == "ok"
        (message,) = fake.posted("C0ALERTS")
        text = dumped(message)
        assert message.text.startswith("Repeat purchases dropped: 21% of the 240")
        assert "*Recent:* 20.8% (50 of 240)" in text and "*Baseline:* 33.0% (462 of 1400)" in text
        assert "*Relative drop:* 36%" in text and "p-value:* 0.001" in text
        assert "What to try (retention)" in text
        (row,) = [b for b in message.blocks if b["type"] == "actions"]
        assert [e["action_id"] for e in row["elements"]] == [
            A_ALERT_ACK,
            open_report_id("retention"),
        ]
        assert message.metadata["event_payload"]["key"] == "alert:1:fired:1781600000"


@pytest.mark.parametrize(
    ("kind", "report"),
    [
        ("retention_drop", "retention"),
        ("funnel_step_drop", "funnel"),
        ("high_value_churn", "churn"),
    ],
)
def test_each_alerts_open_report_button_opens_its_own_report(kind, report):
    payload = alert_message(notice(kind=kind)).payload()
    (row,) = [b for b in payload["blocks"] if b["type"] == "actions"]
    opener = row["elements"][-1]
    assert opener["action_id"] == open_report_id(report)
    assert json.loads(opener["value"]) == {"k": report, "p": None if report == "churn" else "90d"}
    assert opener["text"]["text"] == f"Open {report} report"


def test_a_resolved_alert_has_no_acknowledge_button():
    payload = alert_message(notice(event="resolved", title="Resolved: repeat purchases")).payload()
    assert A_ALERT_ACK not in json.dumps(payload)


def test_huge_digests_and_alerts_still_fit_slacks_limits(store):
    sub_id = shop_with_subscription(store)
    with session_scope(store) as session:
        sub = session.get(DigestSubscription, sub_id)
        digest = digest_for_subscription(session, sub, MONDAY_9_PARIS, now=MONDAY_9_PARIS)
    someone = ChurnCustomer(1, "x", "N" * 500, None, MONDAY_9_PARIS, 40, 3, 10, 10, 0.2)
    huge = replace(
        digest,
        at_risk=[someone] * 50,
        at_risk_count=5000,
        missed=[MissedDigest(3, MONDAY_9_PARIS, MONDAY_9_PARIS, None)] * 40,
        review_candidates=900,
        review_names=["R" * 400] * 50,
        notes=["a long note " * 400] * 5,
    )
    with invited_slack() as fake:
        port = port_for(fake)
        delivery = alert_delivery("C0BIG", customers=["C" * 300] * 40, summary="S" * 5000)
        assert port(delivery).status == "ok"
        digest_delivery = replace(delivery, kind="digest", alert=None, digest=huge, late=True)
        assert port(digest_delivery).status == "ok"
        assert all(c.ok for c in fake.calls_to("chat.postMessage"))
        assert len(digests_posted(fake, "C0BIG")) == 2
    payload = digest_message(huge).payload()
    assert payload["blocks"][-1]["type"] == "actions"  # the buttons survive trimming


def test_a_workspace_without_a_token_is_a_permanent_failure(store):
    shop_with_subscription(store)
    with invited_slack() as fake:
        port = SlackDelivery(lambda _ws: None, base_url=fake.api_url)
        report = run_due(store, MONDAY_9_PARIS + MIN, port, "r1")
        assert report.paused and "reinstall" in report.paused[0].reason


def test_scheduler_interval_comes_from_the_environment():
    assert scheduler_interval({}) == 60
    assert scheduler_interval({"JOURNEY_SCHEDULER_INTERVAL": "0"}) == 0
    assert scheduler_interval({"JOURNEY_SCHEDULER_INTERVAL": "15"}) == 15
    with pytest.raises(JourneyError, match="number of seconds"):
        scheduler_interval({"JOURNEY_SCHEDULER_INTERVAL": "soon"})


# ------------------------------------------------------------- commands, signed requests


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory):
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('digests') / 'bot.db'}")
    upgrade(engine)
    with session_scope(engine) as session:
        load_demo(session, "T0JOURNEY")
    yield engine
    engine.dispose()


class SlackClient:
    def __init__(self, fake: FakeSlack, http: httpx.AsyncClient) -> None:
        self.fake = fake
        self.http = http

    async def post(self, body: bytes, ctype: str) -> httpx.Response:
        return await self.http.post(
            "/slack/events", content=body, headers=signed_headers(body, ctype, SECRET)
        )

    async def command(self, text: str, name: str, user: str, channel: str) -> httpx.Response:
        body, ctype = slash_command(
            text,
            team_id=self.fake.team_id,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(name),
        )
        return await self.post(body, ctype)

    async def click(
        self, action_id: str, value: str, name: str, message: dict, user: str = "U0ALICE"
    ) -> None:
        body, ctype = block_actions(
            action_id,
            value,
            team_id=self.fake.team_id,
            user_id=user,
            channel_id="C0ALERTS",
            response_url=self.fake.response_url(name),
            message=message,
        )
        assert (await self.post(body, ctype)).status_code == 200

    async def responses(self, name: str, count: int = 1) -> list:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            posts = self.fake.responses.get(name, [])
            if len(posts) >= count:
                return posts
            await _sleep()
        raise AssertionError(f"no response at {name}")


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.02)


@pytest.fixture
async def slack(demo_engine):
    with invited_slack() as fake:
        fake.add_user("U0ALICE", tz="Europe/London")
        fake.add_user("U0ADMIN", is_admin=True, tz="America/New_York")
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        deps = Deps(service=ReportService(demo_engine), settings=settings, working_after=10)
        app = build_app(settings, demo_engine, deps=deps)
        transport = httpx.ASGITransport(app=asgi_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
            yield SlackClient(fake, http)


def _sub(engine: Engine, channel: str) -> DigestSubscription | None:
    with Session(engine) as session:
        return session.exec(
            select(DigestSubscription).where(DigestSubscription.channel_id == channel)
        ).first()


async def test_subscribe_show_preview_and_stop_a_digest(slack, demo_engine):
    await slack.command("digest weekly friday 17:30", "set", "U0ADMIN", "C0SALES")
    (post,) = await slack.responses("set")
    assert "every Friday at 17:30 (America/New_York)" in post.text
    sub = _sub(demo_engine, "C0SALES")
    assert sub is not None and sub.timezone == "America/New_York"
    assert (sub.cadence, sub.day_of_week, sub.local_time) == ("weekly", 4, "17:30")
    assert sub.subscriber_user_id == "U0ADMIN"

    await slack.command("digest", "show", "U0ALICE", "C0SALES")
    (post,) = await slack.responses("show")
    assert "This channel gets a digest every Friday at 17:30 (America/New_York)" in post.text
    assert "Next: Fri" in post.text and "17:30 (America/New_York)" in post.text

    await slack.command("digest now", "preview", "U0ALICE", "C0SALES")
    (post,) = await slack.responses("preview")
    assert post.response_type == "ephemeral"
    body = json.dumps(post.payload)
    assert "Preview: only you can see this" in body and "Weekly digest" in body
    assert "New customers" in body and A_OPEN_REPORT in body

    await slack.command("digest off", "off", "U0ADMIN", "C0SALES")
    (post,) = await slack.responses("off")
    assert "Digest stopped" in post.text
    assert _sub(demo_engine, "C0SALES").status == "paused"
    await slack.command("digest", "show-off", "U0ALICE", "C0SALES")
    (post,) = await slack.responses("show-off")
    assert "is paused" in post.text and "/journey digest weekly friday 17:30" in post.text
    assert all(c.ok for c in slack.fake.calls if c.method == "response_url")


async def test_daily_and_monthly_defaults(slack, demo_engine):
    await slack.command("digest daily", "daily", "U0ADMIN", "C0DAILY")
    await slack.responses("daily")
    sub = _sub(demo_engine, "C0DAILY")
    assert (sub.cadence, sub.local_time, sub.day_of_week) == ("daily", "09:00", None)
    await slack.command("digest monthly 31 07:15", "monthly", "U0ADMIN", "C0MONTHLY")
    (post,) = await slack.responses("monthly")
    assert "on day 31 of every month" in post.text
    assert _sub(demo_engine, "C0MONTHLY").day_of_month == 31


async def test_non_admins_cannot_change_digests_or_alerts(slack, demo_engine):
    for i, text in enumerate(
        ("digest weekly", "digest off", "alerts on", "alerts threshold funnel 20")
    ):
        await slack.command(text, f"refused-{i}", "U0ALICE", "C0NOPE")
        (post,) = await slack.responses(f"refused-{i}")
        assert "Only workspace admins and owners" in post.text
    assert _sub(demo_engine, "C0NOPE") is None


async def test_a_malformed_digest_command_is_explained_in_the_ack(slack):
    response = await slack.command("digest weekly blursday", "bad", "U0ADMIN", "C0X")
    assert "I don't understand `blursday`" in json.dumps(response.json())


async def test_alerts_list_channel_threshold_and_off(slack, demo_engine):
    await slack.command("alerts", "list", "U0ALICE", "C0ALERTS")
    (post,) = await slack.responses("list")
    for kind in ("retention", "funnel", "churn"):
        assert kind in post.text
    # The first digest of this module's workspace (C0SALES) gave the rules its channel;
    # run alone, the default rules exist with nowhere to post yet.
    assert "on in <#C0SALES>" in post.text or "no channel" in post.text

    await slack.command("alerts channel", "channel", "U0ADMIN", "C0ALERTS")
    await slack.command("alerts threshold funnel 20", "threshold", "U0ADMIN", "C0ALERTS")
    await slack.command("alerts off churn", "off", "U0ADMIN", "C0ALERTS")
    for name in ("channel", "threshold", "off"):
        await slack.responses(name)
    with Session(demo_engine) as session:
        rules = {r.kind: r for r in session.exec(select(AlertRule))}
    assert {r.channel_id for r in rules.values()} == {"C0ALERTS"}
    assert rules["funnel_step_drop"].min_relative_drop == pytest.approx(0.20)
    assert not rules["high_value_churn"].enabled and rules["retention_drop"].enabled
    (post,) = slack.fake.responses["off"]
    assert "Alerts off: churn" in post.text


def _fire_and_post_an_alert(engine: Engine, fake: FakeSlack) -> dict:
    """A retention alert of the demo workspace through the real lifecycle and delivery:
    fired (apply_judgement), posted to #C0ALERTS by run_due over the fake Slack."""
    from test_alerts import FIRING, comparison

    from journey.schedule.alerts import apply_judgement, ensure_default_rules

    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        rules = ensure_default_rules(session, "T0JOURNEY", now=now)
        rule = next(r for r in rules if r.kind == "retention_drop")
        rule.channel_id, rule.enabled, rule.last_checked_at = "C0ALERTS", True, now
        session.add(rule)
        apply_judgement(session, rule, comparison(), FIRING, now)
        session.commit()
    run_due(engine, now, port_for(fake), "r1", scope=Scope(workspace_id="T0JOURNEY"))
    (posted,) = fake.posted("C0ALERTS")
    return posted.to_api()


def _acks(engine: Engine) -> list[AlertAck]:
    with Session(engine) as session:
        return list(session.exec(select(AlertAck)))


async def test_acknowledge_is_stored_replaces_the_button_and_open_report_answers_privately(
    slack, demo_engine
):
    with invited_slack() as other:
        message = _fire_and_post_an_alert(demo_engine, other)
    ack_value = next(
        e["value"]
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == A_ALERT_ACK
    )
    # While the report pool is full the click is refused privately at once: nothing is
    # stored and the button stays, to click again (bot/work/pool.py).
    from test_workload import Filled, _busy_aside

    from bot.work.pool import PoolLimits, ReportPool, use_pool

    full = ReportPool(PoolLimits(threads=1, max_queue=2, max_queue_per_workspace=2, max_wait=60))
    old = use_pool(full)
    try:
        async with Filled(full, "T0JOURNEY", 2):
            await slack.click(A_ALERT_ACK, ack_value, "ack-busy", message)
            (post,) = await slack.responses("ack-busy")
            _busy_aside(post)
            assert "the alert was not acknowledged" in json.dumps(post.payload)
    finally:
        use_pool(old)
    assert _acks(demo_engine) == []

    await slack.click(A_ALERT_ACK, ack_value, "ack", message)
    (post,) = await slack.responses("ack")
    assert post.replace_original
    assert A_ALERT_ACK not in json.dumps(post.blocks)
    assert "Acknowledged by <@U0ALICE>" in json.dumps(post.blocks)
    assert A_OPEN_REPORT in json.dumps(post.blocks)
    (stored,) = _acks(demo_engine)
    assert (stored.workspace_id, stored.user_id) == ("T0JOURNEY", "U0ALICE")

    # Someone who still had the button on screen clicks it: told who it was, privately;
    # the message keeps the first acknowledgement; nothing more is stored.
    await slack.click(A_ALERT_ACK, ack_value, "ack-again", message, user="U0ADMIN")
    posts = await slack.responses("ack-again", count=2)
    replaced = next(p for p in posts if p.replace_original)
    told = next(p for p in posts if not p.replace_original)
    assert "Acknowledged by <@U0ALICE>" in json.dumps(replaced.blocks)
    assert "U0ADMIN" not in json.dumps(replaced.blocks)
    assert told.response_type == "ephemeral"
    assert "<@U0ALICE> already acknowledged this alert" in told.text
    assert len(_acks(demo_engine)) == 1

    # A button whose alert is not this workspace's: said so, nothing stored or replaced.
    forged = json.dumps({"r": 987654, "key": "repeat_rate"})
    await slack.click(A_ALERT_ACK, forged, "ack-forged", message)
    (post,) = await slack.responses("ack-forged")
    assert not post.replace_original and "can't find this alert" in post.text
    assert len(_acks(demo_engine)) == 1

    await slack.click(
        open_report_id("retention"), json.dumps({"k": "retention", "p": "90d"}), "open", message
    )
    (post,) = await slack.responses("open")
    assert not post.replace_original and post.response_type == "ephemeral"
    assert "Cohort retention" in json.dumps(post.payload)
    # A high-value churn alert's button opens the churn report (its customers).
    churn_alert = alert_message(notice(kind="high_value_churn")).payload()
    (row,) = [b for b in churn_alert["blocks"] if b["type"] == "actions"]
    opener = row["elements"][-1]
    await slack.click(opener["action_id"], opener["value"], "open-churn", message)
    (post,) = await slack.responses("open-churn")
    assert (
        post.response_type == "ephemeral"
        and "Churn · Maple Street Vet (demo data) · as of"
        in json.dumps(post.payload, ensure_ascii=False)
    )


async def test_the_scheduler_loop_delivers_due_digests_once(store):
    import asyncio

    from bot.posting.loop import run_scheduler

    shop_with_subscription(store)
    with invited_slack() as fake:
        task = asyncio.create_task(
            run_scheduler(store, port_for(fake), 0.05, "loop", clock=lambda: MONDAY_9_PARIS + MIN)
        )
        deadline = time.monotonic() + 20
        while not digests_posted(fake) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # several more ticks
        task.cancel()
        assert len(digests_posted(fake)) == 1


async def test_the_http_server_starts_the_scheduler_and_stops_it(demo_engine, monkeypatch):
    """A background task that does not stop within the shutdown grace is cancelled."""
    import asyncio

    monkeypatch.setenv("JOURNEY_SHUTDOWN_GRACE", "0.2")

    started: list[asyncio.Task] = []

    def background() -> asyncio.Task:
        started.append(asyncio.get_running_loop().create_task(asyncio.sleep(3600)))
        return started[-1]

    settings = BotSettings(bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET)
    app = asgi_app(build_app(settings, demo_engine), background)
    inbox: asyncio.Queue = asyncio.Queue()
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    server = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(server, 5)
    await asyncio.sleep(0)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert len(started) == 1 and started[0].cancelled()


# --- a Slack outage longer than the attempts (issue 18) ------------------------------


def test_a_digest_given_up_after_its_attempts_tells_the_subscriber_and_the_next_digest(
    store, caplog
):
    """Slack answers 503 for longer than a digest's six attempts (1, 2, 4... minutes
    apart, with jitter): the digest is given up, its subscriber is told in a DM as soon as
    Slack answers again (as for a pause, but the digest stays on), the log has one line
    per retry and one for the give-up, and next week's digest says this one is missing."""
    import logging

    sub_id = shop_with_subscription(store)
    with invited_slack() as fake, caplog.at_level(logging.INFO):
        fake.add_user("U0OWNER", tz="Europe/Paris")
        fake.server_error("chat.postMessage", status=503, times=10_000)
        skipped: list = []
        minute = 1
        while not skipped and minute < 24 * 60:
            report = run_due(store, MONDAY_9_PARIS + minute * MIN, port_for(fake), "r1")
            skipped = [k for k, note in report.skipped if k.startswith("digest:")]
            minute += 1
        assert skipped, "never given up"
        assert not digests_posted(fake)
        assert sub_row(store, sub_id).status == "active"  # not paused: Slack was down
        retries = [
            r
            for r in caplog.records
            if r.getMessage().startswith("digest:") and " of 6 failed" in r.getMessage()
        ]
        assert len(retries) == 5 and "next try at" in retries[0].getMessage()
        assert any("gave up after 6 attempts" in r.getMessage() for r in caplog.records)
        # Slack is back: the subscriber's notice goes out at the next tick
        fake.clear_faults()
        later = MONDAY_9_PARIS + (minute + 90) * MIN
        run_due(store, later, port_for(fake), "r1")
        (dm,) = fake.posted("D0OWNER")
        assert "could not post the digest due" in dumped(dm)
        assert "The digest stays on" in dumped(dm)
        # next Monday's digest tells the channel about the missing one
        run_due(store, MONDAY_9_PARIS + timedelta(days=7) + MIN, port_for(fake), "r1")
        (digest,) = digests_posted(fake)
        assert "could not be posted: Slack kept failing" in dumped(digest)


def test_a_long_retry_after_in_one_channel_does_not_hold_up_the_others(store):
    """Channel A is rate limited for 30 s; channel B's digest goes out in the same tick,
    at once, and A's is retried after its Retry-After (not slept in the tick's thread)."""
    shop_with_subscription(store, channel="C0DIGEST")
    shop_with_subscription(store, channel="C0SALES", workspace="T0OTHER")
    with invited_slack() as fake:
        fake.rate_limit("chat.postMessage", retry_after=30, times=1)
        started = time.monotonic()
        report = run_due(store, MONDAY_9_PARIS + MIN, port_for(fake), "r1")
        assert time.monotonic() - started < 10
        assert len(report.sent) == 1 and len(report.retrying) == 1
        assert "rate limited" in report.retrying[0][1]
        assert len(digests_posted(fake, "C0SALES")) + len(digests_posted(fake)) == 1


async def test_a_shutdown_lets_the_tick_under_way_record_what_it_sent(store, monkeypatch):
    """SIGTERM while a tick is posting a digest (Slack slow to answer): the drain waits for
    the tick, which records the digest as sent, and the loop then stops by itself (it is
    not cancelled mid-tick, which left the row for a retry that posts it twice)."""
    import asyncio

    from bot.posting.loop import run_scheduler
    from bot.work.inflight import INFLIGHT

    shop_with_subscription(store)
    with invited_slack() as fake:
        fake.delay("chat.postMessage", 1.5)
        loop = asyncio.create_task(
            run_scheduler(store, port_for(fake), 3600, "r1", clock=lambda: MONDAY_9_PARIS + MIN)
        )
        deadline = time.monotonic() + 20
        while not fake.calls_to("chat.postMessage") and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        try:
            report = await INFLIGHT.drain(10, [loop])
        finally:
            INFLIGHT.reopen()
        assert loop.done() and not loop.cancelled()
        assert report.abandoned == 0
        with Session(store) as session:
            (row,) = session.exec(select(DigestDelivery)).all()
        assert row.state == "sent"
        assert len(digests_posted(fake)) == 1


# ----------------------------------------------------- channels shared outside the workspace


SHARED_WAYS = {
    "C0CONNECT": {"is_ext_shared": True},  # Slack Connect with another organization
    "C0SISTER": {"is_shared": True},  # another workspace
    "C0GRID": {"is_org_shared": True},  # across an Enterprise Grid org
    "C0INVITED": {"pending_shared": ["T0PARTNER"]},  # invited, not joined yet
}


@pytest.mark.parametrize("channel", sorted(SHARED_WAYS))
async def test_digests_and_alerts_are_not_set_up_in_a_shared_channel(slack, demo_engine, channel):
    """The admin is told at once (ephemeral), and nothing is stored for that channel."""
    from bot.guard.access import SCHEDULE_CHANNEL_REFUSAL

    slack.fake.add_channel(channel, **SHARED_WAYS[channel])
    with Session(demo_engine) as session:
        before = {r.kind: (r.channel_id, r.enabled) for r in session.exec(select(AlertRule))}
    for i, text in enumerate(("digest weekly monday 09:00", "alerts channel", "alerts on")):
        await slack.command(text, f"{channel}-{i}", "U0ADMIN", channel)
        (post,) = await slack.responses(f"{channel}-{i}")
        assert SCHEDULE_CHANNEL_REFUSAL in post.text and post.response_type == "ephemeral"
    assert _sub(demo_engine, channel) is None
    with Session(demo_engine) as session:
        after = {r.kind: (r.channel_id, r.enabled) for r in session.exec(select(AlertRule))}
    assert after == before
    (info, *_) = slack.fake.calls_to("conversations.info")
    assert info.ok


async def test_a_digest_set_in_an_internal_channel_checks_it_and_goes_ahead(slack, demo_engine):
    await slack.command("digest weekly monday 08:00", "internal", "U0ADMIN", "C0X")
    (post,) = await slack.responses("internal")
    assert "This channel gets a digest" in post.text
    assert [c.params.get("channel") for c in slack.fake.calls_to("conversations.info")] == ["C0X"]


@pytest.mark.parametrize("channel_kwargs", list(SHARED_WAYS.values()))
def test_a_digest_whose_channel_became_shared_is_paused_and_its_subscriber_told(
    store, channel_kwargs
):
    """Checked before every post: the channel was internal when the digest was set up,
    then shared. Nothing is posted there; the digest pauses with the reason, and the
    subscriber gets the pause notice, as with an archived channel."""
    from bot.guard.access import SHARED_CHANNEL_PAUSE

    sub_id = shop_with_subscription(store)
    with invited_slack() as fake:
        fake.add_user("U0OWNER")
        fake.add_channel("C0DIGEST", **channel_kwargs)
        report = run_due(store, MONDAY_9_PARIS + MIN, port_for(fake), "r1")
        assert [k.split(":")[0] for k in report.sent] == ["notice"]  # the DM only
        assert not fake.posted("C0DIGEST")
        sub = sub_row(store, sub_id)
        assert sub.status == "paused" and sub.pause_reason == SHARED_CHANNEL_PAUSE
        (dm,) = fake.posted("D0OWNER")
        assert "Your journey digest is paused" in dumped(dm)
        assert "shared with another workspace or organization" in dumped(dm)
        assert len(SHARED_CHANNEL_PAUSE) <= 300


def test_a_channel_that_cannot_be_checked_gets_nothing_posted(store):
    """Fail closed: Slack refusing the look-up (here a token without channels:read) is a
    permanent failure like a refused post; a rate-limited look-up is tried again later."""
    shop_with_subscription(store)
    with invited_slack() as fake:
        fake.add_user("U0OWNER")
        fake.rate_limit("conversations.info", retry_after=30)
        report = run_due(store, MONDAY_9_PARIS + MIN, port_for(fake), "r1")
        assert report.retrying and not fake.posted("C0DIGEST")
    other = shop_with_subscription(store, channel="C0SALES", workspace="T0OTHER")
    with invited_slack(team_id="T0OTHER") as fake:
        fake.add_user("U0OWNER")
        scopes = [s for s in DEFAULT_BOT_SCOPES if s != "channels:read"]
        fake.add_token(DEFAULT_BOT_TOKEN, team_id="T0OTHER", scopes=scopes)
        run_due(store, MONDAY_9_PARIS + MIN, port_for(fake), "r1", scope=Scope("T0OTHER"))
        assert not fake.posted("C0SALES")
        (info,) = fake.calls_to("conversations.info")
        assert info.error == "missing_scope"
        assert sub_row(store, other).status == "paused"


def test_an_alert_whose_channel_became_shared_is_turned_off_and_its_setter_told(store):
    """The rule is turned off with the reason (as any permanent failure does), and whoever
    pointed it at the channel (`alerts channel`, `alerts on`, or the digest that routed it)
    gets a direct message saying so."""
    from test_alerts import FIRING, comparison

    from bot.commands.language import AlertsRequest
    from bot.commands.schedule_settings import alerts_reply
    from bot.guard.access import SHARED_CHANNEL_PAUSE
    from journey.schedule.alerts import apply_judgement

    now = MONDAY_9_PARIS
    with Session(store) as session:
        make_shop(session, "T0JOURNEY")
        session.commit()
    alerts_reply(store, "T0JOURNEY", "C0ALERTS", "U0ADMIN", AlertsRequest("channel"), now=now)
    with Session(store, expire_on_commit=False) as session:
        rule = session.exec(select(AlertRule).where(AlertRule.kind == "retention_drop")).one()
        assert rule.set_by == "U0ADMIN"
        rule.last_checked_at = now
        session.add(rule)
        apply_judgement(session, rule, comparison(), FIRING, now)
        session.commit()
        rule_id = rule.id
    with invited_slack() as fake:
        fake.add_user("U0ADMIN", is_admin=True)
        fake.add_channel("C0ALERTS", is_ext_shared=True)
        report = run_due(store, now, port_for(fake), "r1", scope=Scope(workspace_id="T0JOURNEY"))
        assert not fake.posted("C0ALERTS")
        assert [r for r, _ in report.disabled_rules] == [rule_id]
        (dm,) = fake.posted("D0ADMIN")
        assert "A journey alert is off" in dumped(dm) and "<#C0ALERTS>" in dumped(dm)
        assert "alerts channel" in dumped(dm)
    with Session(store) as session:
        rule = session.get(AlertRule, rule_id)
        assert not rule.enabled and rule.disabled_reason == SHARED_CHANNEL_PAUSE
