"""One tick of the scheduler: check alert rules, claim what is due, hand it to a delivery port.

`run_due` is meant to be called every minute or so by every replica (a loop in
the bot process, a cron job, anything). Calling it too often is harmless: work
is claimed in the database (journey.schedule.leases), so each digest slot and
each alert event is handed to `deliver` once, whichever replica gets there
first. It knows nothing about Slack: `deliver` is a port the Slack adapter
implements (post the digest, DM the subscriber...) and answers with a
DeliveryResult.

Catch-up after downtime: a digest less than a day late is sent once, marked
late; older missed digests are not sent but recorded as skipped with a note,
one row per outage; when several missed digests are less than a day old (a
daily digest after 23 hours down), only the newest goes out. The next digest
posted carries the skipped ones (`Digest.missed`), so its channel learns why it
heard nothing, rather than only the server log and the row's note.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session, select

from journey.errors import JourneyError
from journey.models.schedule import AlertRule, DigestSubscription
from journey.periods import zone
from journey.schedule import leases
from journey.schedule.alerts import CHECK_INTERVAL, AlertNotice, Transition, check_due_rules
from journey.schedule.calendar import Schedule, local_instant, slots_between
from journey.schedule.digests import Digest, MissedDigest, digest_for_subscription
from journey.schedule.leases import (
    ALERTS,
    DIGESTS,
    EVERYTHING,
    GIVE_UP,
    LEASE,
    MAX_ATTEMPTS,
    Claim,
    Scope,
    is_stale,
)

log = logging.getLogger(__name__)

# Deliveries that tell a subscriber something (never stale: they are about the past).
NOTICES = ("pause_notice", "giveup_notice")
# How far back a subscription's schedule is scanned after a long outage.
LOOKBACK = timedelta(days=400)


@dataclass(frozen=True)
class PauseNotice:
    """Tells a subscriber their digest stopped, and why (sent to them directly)."""

    subscription_id: int
    channel_id: str  # the channel whose digest was paused
    reason: str
    schedule: str  # "every Monday at 09:00 (Europe/Paris)"


@dataclass(frozen=True)
class Delivery:
    """One thing to post, handed to the delivery port.

    `channel_id` is where: a channel for digests and alerts, the subscriber's
    user id for a pause notice (a direct message). `idempotency_key` is the same
    on every attempt: tag the message with it. `posted_ref` is set when an earlier
    attempt posted and recorded the message's reference: answer ok with it, post
    nothing. Else, when `may_have_been_sent` is set, an earlier attempt started
    posting and never confirmed: look for a message with this key (posted after
    `posting_since`) before posting again, and answer ok if it is there. Call
    `on_posted(ref)` as soon as the chat accepted the message, before anything else.
    """

    kind: str  # digest | alert | pause_notice | giveup_notice
    idempotency_key: str
    workspace_id: str
    channel_id: str
    attempt: int
    may_have_been_sent: bool
    late: bool
    scheduled_at: datetime
    digest: Digest | None = None
    alert: AlertNotice | None = None
    notice: PauseNotice | None = None
    posted_ref: str | None = None
    posting_since: datetime | None = None
    on_posted: Callable[[str], object] | None = field(default=None, compare=False, repr=False)
    # An alert's: who pointed its rule at the channel, for the adapter to tell when the
    # rule stops for good (the delivery is permanent); None when nobody is known.
    set_by: str | None = None


@dataclass(frozen=True)
class DeliveryResult:
    """What the port did.

    ok: posted (or found already posted); `external_ref` is kept (a message ts).
    permanent: it can never work as things are (archived channel, app removed,
    not in channel): the digest subscription is paused and its subscriber told,
    an alert rule is disabled. retryable: try again later (rate limit, timeout,
    Slack down); `posted` False when the port knows nothing was posted.
    """

    status: str  # ok | permanent | retryable
    reason: str | None = None
    external_ref: str | None = None
    posted: bool | None = None
    retry_after: float | None = None  # seconds Slack asked to wait (a 429's Retry-After)

    @classmethod
    def ok(cls, external_ref: str | None = None) -> DeliveryResult:
        return cls("ok", external_ref=external_ref)

    @classmethod
    def permanent(cls, reason: str) -> DeliveryResult:
        return cls("permanent", reason=reason)

    @classmethod
    def retryable(
        cls, reason: str, posted: bool | None = None, retry_after: float | None = None
    ) -> DeliveryResult:
        return cls("retryable", reason=reason, posted=posted, retry_after=retry_after)


class DeliveryPort(Protocol):
    """What the chat adapter implements: post one delivery, say how it went."""

    def __call__(self, delivery: Delivery, /) -> DeliveryResult: ...


@dataclass(frozen=True)
class PausedSubscription:
    subscription_id: int
    workspace_id: str
    channel_id: str
    subscriber_user_id: str | None
    reason: str


@dataclass
class RunReport:
    """What one tick did (for logs and tests); keys are idempotency keys."""

    replica_id: str
    now: datetime
    sent: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    retrying: list[tuple[str, str]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # lease taken over by another replica
    paused: list[PausedSubscription] = field(default_factory=list)
    disabled_rules: list[tuple[int, str]] = field(default_factory=list)
    alerts: list[Transition] = field(default_factory=list)


def _clock(now: datetime) -> Callable[[], datetime]:
    """`now` advanced by the real time elapsed since the tick began, so a long tick's
    later leases start when they are actually taken; tests pass a fixed `now` and see
    it move by milliseconds only."""
    start = time.monotonic()
    return lambda: now + timedelta(seconds=time.monotonic() - start)


# In the note of every digest skipped for being too late (and only those): how the next
# digest finds the ones to tell its channel about.
STALE = "more than a day late"
_MISSED = re.compile(r"^(\d+) digest\(s\) due (\d{4}-\d\d-\d\dT\d\d:\d\d)")


def _missed_note(stale: list, now: datetime) -> str:
    first, last = stale[0], stale[-1]
    span = first.key if len(stale) == 1 else f"{first.key} to {last.key}"
    return (
        f"{len(stale)} digest(s) due {span} (local time) not sent: the scheduler was not "
        f"running; skipped because {STALE}."
    )


def _missed(engine: Engine, sub: DigestSubscription, before: datetime) -> list[MissedDigest]:
    """The digests skipped as too late since this subscription's last post, read back
    from their rows: an outage's row (from `_missed_note`) says how many slots it covers
    and the first one's local time; a stale claim is one slot."""
    assert sub.id is not None
    out: list[MissedDigest] = []
    for at, _created, _note in leases.skipped_since_sent(engine, sub.id, before, f"{GIVE_UP}%"):
        out.append(MissedDigest(1, at, at, None, gave_up=True))
    for at, created, note in leases.skipped_since_sent(engine, sub.id, before, f"%{STALE}%"):
        match = _MISSED.match(note)
        if match is None:
            out.append(MissedDigest(1, at, at, None))
            continue
        try:
            first = local_instant(datetime.fromisoformat(match[2]), zone(sub.timezone))
        except Exception:  # an unreadable zone or key: the last slot is still known
            first = at
        out.append(MissedDigest(int(match[1]), min(first, at), at, created))
    return sorted(out, key=lambda m: m.first_due)


def _due_digest_claims(
    engine: Engine,
    now: datetime,
    clock: Callable[[], datetime],
    replica_id: str,
    lease: timedelta,
    report: RunReport,
    scope: Scope = EVERYTHING,
) -> Iterator[Claim]:
    """Claim the due slot of every active subscription in `scope`, one at a time (the
    caller delivers each before the next is claimed, so no lease ages while others are
    worked on); record missed ones as skipped."""
    query = select(DigestSubscription).where(DigestSubscription.status == "active")
    if scope.workspace_id is not None:
        query = query.where(DigestSubscription.workspace_id == scope.workspace_id)
    with Session(engine) as session:
        subs = [s for s in session.exec(query) if scope.includes(s.workspace_id, s.channel_id)]
    last = leases.last_scheduled(engine)
    for sub in subs:
        assert sub.id is not None
        try:
            schedule = Schedule.of(sub)
        except JourneyError as exc:
            log.warning("digest subscription %s has a bad schedule: %s", sub.id, exc)
            continue
        anchors = [sub.created_at, now - LOOKBACK]
        anchors += [t for t in (sub.resumed_at, last.get(sub.id)) if t is not None]
        slots = slots_between(schedule, max(anchors), now)
        if not slots:
            continue
        stale = [s for s in slots if is_stale(s.at, now)]
        fresh = [s for s in slots if not is_stale(s.at, now)]
        common = {"workspace_id": sub.workspace_id, "subscription_id": sub.id, "now": clock()}
        if stale:
            note = _missed_note(stale, now)
            if leases.record_skipped(
                engine, **common, period_key=stale[-1].key, scheduled_at=stale[-1].at, note=note
            ):
                report.skipped.append((f"digest:{sub.id}:{stale[-1].key}", note))
        for older in fresh[:-1]:
            note = f"superseded by the digest of {fresh[-1].key}, due less than a day later."
            if leases.record_skipped(
                engine, **common, period_key=older.key, scheduled_at=older.at, note=note
            ):
                report.skipped.append((f"digest:{sub.id}:{older.key}", note))
        if fresh:
            claim = leases.claim_slot(
                engine,
                workspace_id=sub.workspace_id,
                subscription_id=sub.id,
                period_key=fresh[-1].key,
                scheduled_at=fresh[-1].at,
                now=clock(),
                replica_id=replica_id,
                lease=lease,
            )
            if claim is not None:
                yield claim


def _build(engine: Engine, claim: Claim, now: datetime) -> Delivery | str:
    """The Delivery for a claim, or the reason it must be skipped."""
    common = {
        "idempotency_key": claim.idempotency_key,
        "workspace_id": claim.workspace_id,
        "attempt": claim.token,
        "may_have_been_sent": claim.may_have_been_sent,
        "late": claim.late,
        "scheduled_at": claim.scheduled_at,
        "posted_ref": claim.posted_ref,
        "posting_since": claim.prior_posting,
        "on_posted": lambda ref: leases.note_posted(engine, claim, ref),
    }
    with Session(engine) as session:
        if claim.table == ALERTS:
            rule = session.get(AlertRule, claim.rule_id)
            if rule is None or not rule.enabled or not rule.channel_id:
                return "the alert rule was disabled or has no channel"
            alert = AlertNotice.from_payload(claim.payload or {})
            return Delivery(
                kind="alert", channel_id=rule.channel_id, alert=alert, set_by=rule.set_by, **common
            )
        sub = session.get(DigestSubscription, claim.subscription_id)
        if sub is None:
            return "the subscription no longer exists"
        if claim.kind == "giveup_notice":
            if not sub.subscriber_user_id:
                return "the subscription has no subscriber to tell"
            notice = PauseNotice(
                sub.id or 0,
                sub.channel_id,
                leases.note_of(engine, claim) or "Slack kept failing",
                Schedule.of(sub).describe(),
            )
            return Delivery(
                kind="giveup_notice", channel_id=sub.subscriber_user_id, notice=notice, **common
            )
        if claim.kind == "pause_notice":
            if not sub.subscriber_user_id:
                return "the subscription has no subscriber to tell"
            notice = PauseNotice(
                sub.id or 0,
                sub.channel_id,
                sub.pause_reason or "unknown",
                Schedule.of(sub).describe(),
            )
            return Delivery(
                kind="pause_notice", channel_id=sub.subscriber_user_id, notice=notice, **common
            )
        if sub.status != "active":
            return f"the subscription is {sub.status}"
        digest = digest_for_subscription(session, sub, claim.scheduled_at, now=now)
        missed = _missed(engine, sub, claim.scheduled_at)
        if missed:
            digest = replace(digest, missed=missed)
        return Delivery(kind="digest", channel_id=sub.channel_id, digest=digest, **common)


def _deliver(
    engine: Engine,
    claim: Claim,
    clock: Callable[[], datetime],
    deliver: DeliveryPort,
    report: RunReport,
    lease: timedelta,
) -> None:
    key = claim.idempotency_key
    now = clock()
    if claim.token > MAX_ATTEMPTS:
        _give_up(engine, claim, f"{GIVE_UP} {MAX_ATTEMPTS} attempts", clock, deliver, report, lease)
        return
    if claim.kind not in NOTICES and is_stale(claim.scheduled_at, now):
        note = f"{STALE}, not sent"
        if claim.may_have_been_sent:
            note += " (an earlier attempt may have posted it)"
        if leases.mark_skipped(engine, claim, now, note):
            report.skipped.append((key, note))
        return
    try:
        built = _build(engine, claim, now)
    except Exception as exc:
        log.exception("could not build %s", key)
        reason = f"could not build it: {exc}"
        if leases.release_for_retry(
            engine, claim, now + leases.retry_delay(claim.token), reason, posted=False
        ):
            report.retrying.append((key, reason))
        return
    if isinstance(built, str):
        if leases.mark_skipped(engine, claim, now, built):
            report.skipped.append((key, built))
        return
    if not leases.begin_posting(engine, claim, clock()):
        report.lost.append(key)
        return
    try:
        result = deliver(built)
    except Exception as exc:  # an adapter bug must not stop the other deliveries
        log.exception("delivery port failed on %s", key)
        result = DeliveryResult.retryable(f"delivery port error: {exc}")
    now = clock()
    if result.status == "ok":
        if leases.mark_sent(engine, claim, now, result.external_ref):
            report.sent.append(key)
        else:
            log.warning("%s was posted after its lease was taken over", key)
            report.lost.append(key)
        return
    reason = result.reason or result.status
    if result.status == "permanent":
        _fail(engine, claim, built, reason, clock, deliver, report, lease)
        return
    if claim.token >= MAX_ATTEMPTS:
        note = f"{GIVE_UP} {claim.token} attempts: {reason}"
        _give_up(engine, claim, note, clock, deliver, report, lease)
        return
    retry_at = now + max(
        leases.retry_delay(claim.token), timedelta(seconds=result.retry_after or 0)
    )
    log.warning(
        "%s attempt %d of %d failed (%s); next try at %s",
        key,
        claim.token,
        MAX_ATTEMPTS,
        reason,
        retry_at.strftime("%H:%M:%S UTC"),
    )
    if leases.release_for_retry(engine, claim, retry_at, reason, posted=result.posted):
        report.retrying.append((key, reason))
    else:
        report.lost.append(key)


def _give_up(
    engine: Engine,
    claim: Claim,
    note: str,
    clock: Callable[[], datetime],
    deliver: DeliveryPort,
    report: RunReport,
    lease: timedelta,
) -> None:
    """Every attempt failed: skip the digest and tell its subscriber now, as a permanent
    failure does (the subscription stays on); the channel's next digest mentions it."""
    key = claim.idempotency_key
    log.error("%s %s", key, note)
    subscriber = None
    if claim.table == DIGESTS and claim.kind == "digest":
        with Session(engine) as session:
            sub = session.get(DigestSubscription, claim.subscription_id)
            subscriber = sub.subscriber_user_id if sub else None
    held, notice = leases.give_up(engine, claim, clock(), note, notify_user=subscriber, lease=lease)
    if not held:
        report.lost.append(key)
        return
    report.skipped.append((key, note))
    if notice is not None:
        _deliver(engine, notice, clock, deliver, report, lease)


def _fail(
    engine: Engine,
    claim: Claim,
    delivery: Delivery,
    reason: str,
    clock: Callable[[], datetime],
    deliver: DeliveryPort,
    report: RunReport,
    lease: timedelta,
) -> None:
    key = claim.idempotency_key
    is_digest = claim.table == DIGESTS and claim.kind == "digest"
    subscriber = None
    if is_digest:
        with Session(engine) as session:
            sub = session.get(DigestSubscription, claim.subscription_id)
            subscriber = sub.subscriber_user_id if sub else None
    held, notice = leases.fail_permanently(
        engine,
        claim,
        clock(),
        reason,
        pause_subscription=is_digest,
        notify_user=subscriber,
        lease=lease,
    )
    if not held:
        report.lost.append(key)
        return
    report.skipped.append((key, f"not delivered: {reason}"))
    log.warning(
        "%s cannot be delivered (%s): %s",
        key,
        reason,
        "digest paused, subscriber told"
        if is_digest
        else "alert rule disabled"
        if claim.table == ALERTS
        else "given up",
    )
    if is_digest:
        report.paused.append(
            PausedSubscription(
                claim.subscription_id or 0,
                claim.workspace_id,
                delivery.channel_id,
                subscriber,
                reason,
            )
        )
        if notice is not None:
            _deliver(engine, notice, clock, deliver, report, lease)
    elif claim.table == ALERTS and claim.rule_id is not None:
        leases.disable_rule(engine, claim.rule_id, reason)
        report.disabled_rules.append((claim.rule_id, reason))


def run_due(
    engine: Engine,
    now: datetime,
    deliver: DeliveryPort | Callable[[Delivery], DeliveryResult],
    replica_id: str,
    *,
    lease: timedelta = LEASE,
    alert_interval: timedelta = CHECK_INTERVAL,
    scope: Scope = EVERYTHING,
) -> RunReport:
    """Check due alert rules, then claim and deliver what is due as of `now`.

    Safe to run on any number of replicas at once, and again after a crash: see
    journey.schedule.leases for what is guaranteed and what is not. `scope` limits
    what the tick takes (leases.Scope): the local console takes only its own
    workspace's digests and alerts, the Slack bot all but the console's, so neither
    claims (and so takes away) the other's.
    """
    clock = _clock(now)
    report = RunReport(replica_id, now)
    report.alerts = check_due_rules(engine, now, alert_interval, scope=scope)
    for claim in _due_digest_claims(engine, now, clock, replica_id, lease, report, scope=scope):
        _deliver(engine, claim, clock, deliver, report, lease)
    for table in (DIGESTS, ALERTS):
        for claim in leases.reclaim(
            engine, table, clock(), replica_id, lease, clock=clock, scope=scope
        ):
            _deliver(engine, claim, clock, deliver, report, lease)
    return report
