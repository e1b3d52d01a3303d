"""Each (subscription, period) delivered exactly once: across replicas, crashes and downtime.

The clock is always passed in (`now`), never read: minutes and days pass by
changing an argument. The races run real threads against the real PostgreSQL
(each thread with its own engine, as separate replicas would).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from builders import make_shop
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from journey.db import make_engine
from journey.models.schedule import DigestDelivery, DigestSubscription
from journey.schedule import leases
from journey.schedule.runner import Delivery, DeliveryResult, run_due
from journey.schedule.subscriptions import resume_subscription, subscribe

MIN = timedelta(minutes=1)
# Monday 15 June 2026, 09:00 in Paris.
MONDAY_9_PARIS = datetime(2026, 6, 15, 7, 0, tzinfo=UTC)


class Crash(BaseException):
    """The process dies here: nothing after it runs, like a kill -9."""


@dataclass
class Post:
    channel: str
    key: str
    kind: str


class FakeChat:
    """A delivery port with a channel history, so it can do what the Slack adapter must:
    when told a delivery may have been sent, look for its key before posting again."""

    def __init__(self, crash_after_post: bool = False, crash_before_post: bool = False) -> None:
        self.posts: list[Post] = []
        self.calls: list[Delivery] = []
        self.crash_after_post = crash_after_post
        self.crash_before_post = crash_before_post
        self.results: list[DeliveryResult] = []  # scripted results, used first
        self.lock = threading.Lock()

    def __call__(self, delivery: Delivery) -> DeliveryResult:
        with self.lock:
            self.calls.append(delivery)
            if self.results:
                return self.results.pop(0)
            if self.crash_before_post:
                raise Crash()
            if delivery.may_have_been_sent and any(
                p.key == delivery.idempotency_key for p in self.posts
            ):
                return DeliveryResult.ok("found-in-history")
            self.posts.append(Post(delivery.channel_id, delivery.idempotency_key, delivery.kind))
            if self.crash_after_post:
                raise Crash()
            return DeliveryResult.ok(f"ts-{len(self.posts)}")

    def posted_keys(self) -> list[str]:
        return [p.key for p in self.posts]


def setup_weekly(engine: Engine, **kwargs) -> int:
    """A workspace and a Monday 09:00 Paris digest created the Monday before at noon."""
    with Session(engine) as session:
        make_shop(session, "shop")
        sub = subscribe(
            session,
            "shop",
            "C-DIGEST",
            cadence=kwargs.pop("cadence", "weekly"),
            local_time=kwargs.pop("local_time", "09:00"),
            timezone=kwargs.pop("timezone", "Europe/Paris"),
            day_of_week=0,
            subscriber_user_id="U-OWNER",
            now=kwargs.pop("now", MONDAY_9_PARIS - timedelta(days=7) + timedelta(hours=3)),
        )
        session.commit()
        assert sub.id is not None
        return sub.id


def rows(engine: Engine) -> list[DigestDelivery]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(DigestDelivery).order_by(DigestDelivery.scheduled_at, DigestDelivery.id)
            )
        )


def subscription(engine: Engine, sub_id: int) -> DigestSubscription:
    with Session(engine) as session:
        sub = session.get(DigestSubscription, sub_id)
        assert sub is not None
        return sub


def test_a_due_digest_is_delivered_once_on_time(engine):
    sub_id = setup_weekly(engine)
    chat = FakeChat()
    assert run_due(engine, MONDAY_9_PARIS - MIN, chat, "r1").sent == []
    report = run_due(engine, MONDAY_9_PARIS + timedelta(seconds=30), chat, "r1")
    key = f"digest:{sub_id}:2026-06-15T09:00"
    assert report.sent == [key]
    assert chat.posted_keys() == [key] and chat.posts[0].channel == "C-DIGEST"
    delivery = chat.calls[0]
    assert (delivery.kind, delivery.attempt, delivery.late) == ("digest", 1, False)
    assert delivery.may_have_been_sent is False
    assert (
        delivery.digest is not None
        and delivery.digest.next_send_at == MONDAY_9_PARIS + timedelta(days=7)
    )
    # Again, on this replica or another: nothing more.
    assert run_due(engine, MONDAY_9_PARIS + MIN, chat, "r1").sent == []
    assert run_due(engine, MONDAY_9_PARIS + 2 * MIN, chat, "r2").sent == []
    [row] = rows(engine)
    assert (row.state, row.claimed_by, row.attempts, row.late) == ("sent", "r1", 1, False)
    assert row.external_ref == "ts-1" and row.period_key == "2026-06-15T09:00"
    # Next Monday: the next one.
    run_due(engine, MONDAY_9_PARIS + timedelta(days=7, seconds=5), chat, "r2")
    assert chat.posted_keys() == [key, f"digest:{sub_id}:2026-06-22T09:00"]


def test_downtime_a_send_less_than_a_day_late_goes_once_marked_late_older_are_skipped(engine):
    sub_id = setup_weekly(
        engine, cadence="daily", now=datetime(2026, 6, 1, 12, tzinfo=UTC)
    )  # daily 09:00 Paris from 1 June; the scheduler was down until 15 June 14:00 Paris.
    chat = FakeChat()
    back = datetime(2026, 6, 15, 12, tzinfo=UTC)
    report = run_due(engine, back, chat, "r1")
    today = f"digest:{sub_id}:2026-06-15T09:00"
    assert report.sent == [today]
    assert chat.calls[0].late is True
    skipped = [r for r in rows(engine) if r.state == "skipped"]
    assert len(skipped) == 1 and skipped[0].period_key == "2026-06-14T09:00"
    assert skipped[0].note is not None
    assert "13 digest(s) due 2026-06-02T09:00 to 2026-06-14T09:00" in skipped[0].note
    assert "more than a day late" in skipped[0].note
    # Nothing is replayed later, by anyone.
    assert run_due(engine, back + MIN, chat, "r2").sent == []
    assert run_due(engine, back + timedelta(hours=6), chat, "r3").sent == []
    # The next morning is on time again.
    report = run_due(engine, datetime(2026, 6, 16, 7, 1, tzinfo=UTC), chat, "r2")
    assert report.sent == [f"digest:{sub_id}:2026-06-16T09:00"]
    assert chat.calls[-1].late is False
    assert len(chat.posts) == 2


def test_digests_skipped_as_too_late_are_handed_to_the_next_digest_once(engine):
    sub_id = setup_weekly(engine)
    chat = FakeChat()
    run_due(engine, MONDAY_9_PARIS, chat, "r1")
    # Down for three weeks: 22 and 29 June and 6 July are missed, one row for the outage.
    back = MONDAY_9_PARIS + timedelta(days=23)
    run_due(engine, back, chat, "r1")
    assert len(chat.calls) == 1
    run_due(engine, MONDAY_9_PARIS + timedelta(days=28), chat, "r1")
    delivery = chat.calls[-1]
    assert delivery.digest is not None
    (missed,) = delivery.digest.missed
    assert missed.count == 3
    assert missed.first_due == MONDAY_9_PARIS + timedelta(days=7)
    assert missed.last_due == MONDAY_9_PARIS + timedelta(days=21)
    assert missed.back_at == back
    # A retry of that digest still carries it; once it is sent, the next does not.
    run_due(engine, MONDAY_9_PARIS + timedelta(days=35), chat, "r1")
    assert chat.calls[-1].digest is not None and chat.calls[-1].digest.missed == []
    assert sub_id


def test_a_claim_gone_stale_is_handed_to_the_next_digest_too(engine):
    setup_weekly(engine)
    dead = FakeChat(crash_before_post=True)
    with pytest.raises(Crash):
        run_due(engine, MONDAY_9_PARIS, dead, "dead")
    chat = FakeChat()
    chat.results = [DeliveryResult.retryable("Slack down", posted=False)]
    # Nobody runs for two days: the claim is found stale and skipped.
    report = run_due(engine, MONDAY_9_PARIS + timedelta(days=2), chat, "r1")
    assert report.skipped and not chat.calls
    # The next digest carries it, and so does its retry (not posted, so not told yet).
    first = run_due(engine, MONDAY_9_PARIS + timedelta(days=7), chat, "r1")
    assert first.retrying
    retry = run_due(engine, MONDAY_9_PARIS + timedelta(days=7, minutes=5), chat, "r1")
    assert retry.sent and len(chat.calls) == 2
    for delivery in chat.calls:
        assert delivery.digest is not None
        (missed,) = delivery.digest.missed
        assert (missed.count, missed.first_due, missed.back_at) == (1, MONDAY_9_PARIS, None)
    run_due(engine, MONDAY_9_PARIS + timedelta(days=14), chat, "r1")
    assert chat.calls[-1].digest is not None and chat.calls[-1].digest.missed == []


def test_a_send_more_than_a_day_late_is_skipped_with_a_note(engine):
    sub_id = setup_weekly(engine)
    chat = FakeChat()
    report = run_due(engine, MONDAY_9_PARIS + timedelta(days=1, minutes=1), chat, "r1")
    assert report.sent == [] and chat.posts == []
    [row] = rows(engine)
    assert row.state == "skipped" and row.period_key == "2026-06-15T09:00"
    assert report.skipped == [(f"digest:{sub_id}:2026-06-15T09:00", row.note)]


def test_a_short_dst_day_sends_only_the_newest_of_two_missed_daily_digests(engine):
    # 29 March 2026 in Paris has 23 hours: 09:00 on the 28th and on the 29th are 23h apart,
    # so at 08:30 on the 29th both are less than a day old. One digest, not two at once.
    sub_id = setup_weekly(engine, cadence="daily", now=datetime(2026, 3, 27, 12, tzinfo=UTC))
    chat = FakeChat()
    run_due(engine, datetime(2026, 3, 27, 8, 0, tzinfo=UTC), chat, "r1")  # before creation
    report = run_due(engine, datetime(2026, 3, 29, 7, 30, tzinfo=UTC), chat, "r1")
    assert report.sent == [f"digest:{sub_id}:2026-03-29T09:00"]
    states = {r.period_key: (r.state, r.note) for r in rows(engine)}
    assert states["2026-03-28T09:00"][0] == "skipped"
    assert "superseded" in (states["2026-03-28T09:00"][1] or "")


def test_a_crash_after_posting_is_finished_by_another_replica_without_a_second_post(engine):
    sub_id = setup_weekly(engine)
    key = f"digest:{sub_id}:2026-06-15T09:00"
    chat = FakeChat(crash_after_post=True)
    with pytest.raises(Crash):
        run_due(engine, MONDAY_9_PARIS, chat, "r1")
    [row] = rows(engine)
    assert row.state == "claimed" and row.posting_started_at is not None
    chat.crash_after_post = False
    # The lease (5 minutes) still holds: nobody touches it.
    assert run_due(engine, MONDAY_9_PARIS + MIN, chat, "r2").sent == []
    report = run_due(engine, MONDAY_9_PARIS + leases.LEASE + MIN, chat, "r2")
    assert report.sent == [key]
    retry = chat.calls[-1]
    assert (retry.attempt, retry.may_have_been_sent, retry.idempotency_key) == (2, True, key)
    assert chat.posted_keys() == [key]  # found in the history: posted once
    [row] = rows(engine)
    assert (row.state, row.claimed_by, row.attempts) == ("sent", "r2", 2)
    assert row.external_ref == "found-in-history"


def test_a_crash_before_posting_is_posted_by_another_replica(engine):
    sub_id = setup_weekly(engine)
    chat = FakeChat(crash_before_post=True)
    with pytest.raises(Crash):
        run_due(engine, MONDAY_9_PARIS, chat, "r1")
    chat.crash_before_post = False
    report = run_due(engine, MONDAY_9_PARIS + leases.LEASE + MIN, chat, "r2")
    assert report.sent == [f"digest:{sub_id}:2026-06-15T09:00"]
    assert len(chat.posts) == 1 and chat.calls[-1].may_have_been_sent is True


def test_a_claim_that_never_started_posting_is_retried_as_clean(engine):
    sub_id = setup_weekly(engine)
    claim = leases.claim_slot(
        engine,
        workspace_id="shop",
        subscription_id=sub_id,
        period_key="2026-06-15T09:00",
        scheduled_at=MONDAY_9_PARIS,
        now=MONDAY_9_PARIS,
        replica_id="dead",
    )
    assert claim is not None  # ...and the replica dies while building the digest
    chat = FakeChat()
    assert run_due(engine, MONDAY_9_PARIS + MIN, chat, "r2").sent == []
    run_due(engine, MONDAY_9_PARIS + leases.LEASE, chat, "r2")
    assert len(chat.posts) == 1
    assert (chat.calls[0].attempt, chat.calls[0].may_have_been_sent) == (2, False)


def test_a_replica_that_lost_its_lease_can_neither_post_nor_mark_sent(engine):
    sub_id = setup_weekly(engine)
    slow = leases.claim_slot(
        engine,
        workspace_id="shop",
        subscription_id=sub_id,
        period_key="2026-06-15T09:00",
        scheduled_at=MONDAY_9_PARIS,
        now=MONDAY_9_PARIS,
        replica_id="slow",
    )
    assert slow is not None
    later = MONDAY_9_PARIS + leases.LEASE + MIN
    [fast] = list(leases.reclaim(engine, leases.DIGESTS, later, "fast"))
    assert fast.token == 2
    assert list(leases.reclaim(engine, leases.DIGESTS, later, "third")) == []
    assert leases.begin_posting(engine, slow, later) is False
    assert leases.mark_sent(engine, slow, later) is False
    assert leases.begin_posting(engine, fast, later) is True
    assert leases.mark_sent(engine, fast, later, "ts") is True
    [row] = rows(engine)
    assert (row.state, row.claimed_by) == ("sent", "fast")


def test_an_expired_lease_is_not_posted_by_its_late_holder(engine):
    sub_id = setup_weekly(engine)
    claim = leases.claim_slot(
        engine,
        workspace_id="shop",
        subscription_id=sub_id,
        period_key="2026-06-15T09:00",
        scheduled_at=MONDAY_9_PARIS,
        now=MONDAY_9_PARIS,
        replica_id="paused-vm",
    )
    assert claim is not None
    assert leases.begin_posting(engine, claim, MONDAY_9_PARIS + leases.LEASE) is False


def test_retryable_failures_back_off_then_succeed(engine):
    sub_id = setup_weekly(engine)
    chat = FakeChat()
    chat.results = [DeliveryResult.retryable("ratelimited", posted=False)]
    report = run_due(engine, MONDAY_9_PARIS, chat, "r1")
    assert report.retrying == [(f"digest:{sub_id}:2026-06-15T09:00", "ratelimited")]
    [row] = rows(engine)
    assert (row.state, row.note) == ("claimed", "ratelimited")
    assert row.posting_started_at is None  # the port said nothing was posted
    assert run_due(engine, MONDAY_9_PARIS + timedelta(seconds=30), chat, "r2").sent == []
    report = run_due(engine, MONDAY_9_PARIS + 2 * MIN, chat, "r2")
    assert len(report.sent) == 1
    assert (chat.calls[-1].attempt, chat.calls[-1].may_have_been_sent) == (2, False)


def test_an_adapter_exception_is_retried_and_checked_first(engine):
    setup_weekly(engine)
    chat = FakeChat()

    def broken(delivery: Delivery) -> DeliveryResult:
        chat(delivery)  # posts, then blows up before answering
        raise RuntimeError("socket closed")

    report = run_due(engine, MONDAY_9_PARIS, broken, "r1")
    assert report.retrying and "socket closed" in report.retrying[0][1]
    run_due(engine, MONDAY_9_PARIS + 2 * MIN, chat, "r2")
    assert chat.calls[-1].may_have_been_sent is True
    assert len(chat.posts) == 1
    assert rows(engine)[0].state == "sent"


def test_gives_up_after_the_last_attempt(engine):
    sub_id = setup_weekly(engine)
    chat = FakeChat()
    chat.results = [DeliveryResult.retryable("timeout", posted=False)] * leases.MAX_ATTEMPTS
    now = MONDAY_9_PARIS
    for _ in range(leases.MAX_ATTEMPTS + 2):
        run_due(engine, now, chat, "r1")
        now += timedelta(hours=1)
    digests = [c for c in chat.calls if c.kind == "digest"]
    assert len(digests) == leases.MAX_ATTEMPTS
    [row] = [r for r in rows(engine) if r.kind == "digest"]
    assert (
        row.state == "skipped"
        and row.note == f"gave up after {leases.MAX_ATTEMPTS} attempts: timeout"
    )
    assert row.period_key == "2026-06-15T09:00" and sub_id
    # its subscriber is told, as for a permanent failure, but the digest stays on
    (notice,) = [c for c in chat.calls if c.kind != "digest"]
    assert notice.kind == "giveup_notice" and notice.channel_id == "U-OWNER"
    assert notice.notice is not None and "gave up after 6 attempts" in notice.notice.reason
    assert subscription(engine, sub_id).status == "active"


@pytest.mark.parametrize("reason", ["is_archived", "account_inactive", "not_in_channel"])
def test_a_permanent_failure_pauses_the_subscription_and_tells_the_subscriber(engine, reason):
    sub_id = setup_weekly(engine)
    chat = FakeChat()
    chat.results = [DeliveryResult.permanent(reason)]
    report = run_due(engine, MONDAY_9_PARIS, chat, "r1")
    assert [p.reason for p in report.paused] == [reason]
    sub = subscription(engine, sub_id)
    assert (sub.status, sub.pause_reason) == ("paused", reason)
    notice = chat.calls[-1]
    assert notice.kind == "pause_notice" and notice.channel_id == "U-OWNER"
    assert notice.notice is not None and notice.notice.channel_id == "C-DIGEST"
    assert notice.notice.reason == reason and "Monday at 09:00" in notice.notice.schedule
    assert chat.posted_keys() == [f"notice:{sub_id}:pause:2026-06-15T09:00"]
    states = {r.kind: (r.state, r.note) for r in rows(engine)}
    assert states["digest"] == ("skipped", f"not delivered: {reason}")
    assert states["pause_notice"][0] == "sent"
    # Paused: no digest next week, and the notice is not repeated.
    assert run_due(engine, MONDAY_9_PARIS + timedelta(days=7), chat, "r2").sent == []
    assert len(chat.calls) == 2
    # Resumed on Wednesday: the next Monday only, nothing missed while paused is replayed.
    with Session(engine) as session:
        resume_subscription(session, "shop", sub_id, now=MONDAY_9_PARIS + timedelta(days=9))
        session.commit()
    run_due(engine, MONDAY_9_PARIS + timedelta(days=9, hours=1), chat, "r2")
    report = run_due(engine, MONDAY_9_PARIS + timedelta(days=14), chat, "r2")
    assert report.sent == [f"digest:{sub_id}:2026-06-29T09:00"]


# --- races between replicas ---------------------------------------------------------------


def _race(url: str, now: datetime, chat: FakeChat, replicas: int) -> list:
    """`replicas` threads, each with its own engine (its own connections), released together."""
    barrier = threading.Barrier(replicas)
    reports: list = []
    errors: list[BaseException] = []

    def replica(i: int) -> None:
        eng = make_engine(url)
        try:
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))  # connect before the start line
            barrier.wait()
            reports.append(run_due(eng, now, chat, f"replica-{i}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(reports) == replicas
    return reports


@pytest.fixture
def race_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_replicas_racing_for_due_digests_deliver_each_once(engine, race_url):
    # Twelve channels due at the same minute, eight replicas released together: every
    # replica walks the same subscriptions, so they collide on each one.
    sub_id = setup_weekly(engine)
    with Session(engine) as session:
        for i in range(11):
            subscribe(session, "shop", f"C-{i}", timezone="Europe/Paris", day_of_week=0,
                      now=MONDAY_9_PARIS - timedelta(days=3))  # fmt: skip
        session.commit()
    chat = FakeChat()
    reports = _race(race_url, MONDAY_9_PARIS + timedelta(seconds=1), chat, replicas=8)
    assert len(chat.calls) == 12
    assert len(set(chat.posted_keys())) == 12
    assert f"digest:{sub_id}:2026-06-15T09:00" in chat.posted_keys()
    assert sum(len(r.sent) for r in reports) == 12
    assert [r.state for r in rows(engine)] == ["sent"] * 12


def test_replicas_racing_for_an_expired_claim_deliver_it_once(engine, race_url):
    sub_id = setup_weekly(engine)
    crashed = FakeChat(crash_after_post=True)
    with pytest.raises(Crash):
        run_due(engine, MONDAY_9_PARIS, crashed, "dead")
    chat = FakeChat()
    chat.posts = list(crashed.posts)  # the channel already shows the crashed replica's post
    reports = _race(race_url, MONDAY_9_PARIS + leases.LEASE + MIN, chat, replicas=8)
    assert len(chat.calls) == 1 and chat.calls[0].may_have_been_sent
    assert len(chat.posts) == 1
    assert sum(len(r.sent) for r in reports) == 1
    assert [r.state for r in rows(engine)] == ["sent"] and sub_id
