"""Leases on deliveries: each (subscription, period) and each alert event delivered once,
however many replicas share the database, across crashes and restarts.

How a delivery goes, and why each step is there:

1. Claim. A digest slot is claimed by INSERTing its row in state `claimed`, with
   `ON CONFLICT (subscription_id, period_key) DO NOTHING`: of any number of replicas
   racing for the slot, exactly one insert returns a row (PostgreSQL makes the
   losers wait for the winner's commit, then do nothing). Alert notifications are
   queued as `pending` rows by the evaluation and claimed like expired leases
   (step 5).
2. Lease. The claim carries `lease_expires_at` (LEASE, 5 minutes) and a fencing
   token, `attempts`. Every later write is conditional on the token, so a replica
   that stalled past its lease cannot overwrite the work of the one that took over.
3. Before posting, the holder records `posting_started_at` with a conditional
   UPDATE that also checks the lease is still live. If that fails the lease was
   lost and the holder does not post. Once it succeeds, any later holder knows an
   earlier attempt may have reached the channel.
4. Post, then mark `sent` (conditional on the token).
5. Crash recovery. A claimed row whose lease expired is reclaimed by a conditional
   UPDATE (`attempts = seen AND lease_expires_at <= now`), so only one replica
   takes it over. If an earlier attempt recorded what the chat answered
   (`note_posted`: `external_ref`, right after the post), the message is there and
   the delivery goes out with `posted_ref`: the adapter answers ok without posting.
   Else, if `posting_started_at` is set, it goes out with `may_have_been_sent` and
   its idempotency key, and the adapter must look for that key in the channel
   before posting again (Slack: message metadata on the bot's recent messages).

What this guarantees, honestly:

- Claims are exactly-once: no two replicas hold a slot's lease at the same time,
  a slot is never claimed twice after it is sent or skipped, and a crash before
  posting loses nothing (the lease expires, another replica posts).
- The post itself cannot be made atomic with the database. Between "posted" and
  "marked sent" a crash leaves the row claimed with `posting_started_at` set.
  The next holder is told so. If the adapter checks and finds the message, the
  result is exactly once. If it cannot check (the history is unreadable, or the
  message was deleted), it has to pick: post again (at-least-once, a possible
  duplicate) or give up (at-most-once, a possible loss). Digests and alerts take
  at-least-once: a repeated digest is a smaller harm than a silent Monday.
- A replica that stalls for longer than the lease *between* step 3 and the post
  landing can still post late, after another replica has checked and posted:
  that is a duplicate. Keep the adapter's HTTP timeout well under LEASE (Slack
  calls take seconds; the lease is minutes).
- `now` is each replica's own clock. Skew of seconds between replicas only shifts
  when a lease counts as expired, never who holds it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from journey.models.types import from_epoch, to_epoch

LEASE = timedelta(minutes=5)
# A send claimed more than this after its time is flagged late.
LATE_AFTER = timedelta(minutes=15)
# A send more than this late is not sent at all: it is recorded as skipped with a note.
SKIP_AFTER = timedelta(days=1)
MAX_ATTEMPTS = 6
RECLAIM_BATCH = 100

DIGESTS = "digest_delivery"
ALERTS = "alert_notification"
_TABLES = (DIGESTS, ALERTS)


@dataclass(frozen=True)
class Claim:
    """A lease this replica holds on one delivery row.

    `token` is the row's `attempts` after the claim: the fencing token every write
    of this holder is conditional on. `prior_posting` is set when an earlier
    attempt began posting and never confirmed: the message may already be there.
    `posted_ref` is what an earlier attempt recorded right after the chat answered
    (`note_posted`, a Slack message ts): then the message is there for sure.
    """

    table: str
    id: int
    token: int
    replica_id: str
    workspace_id: str
    scheduled_at: datetime
    late: bool
    prior_posting: datetime | None
    kind: str  # digest | pause_notice | giveup_notice | alert
    key: str  # period_key (digests) or event_key (alerts)
    subscription_id: int | None = None
    alert_state_id: int | None = None
    rule_id: int | None = None
    payload: dict[str, Any] | None = None
    posted_ref: str | None = None

    @property
    def may_have_been_sent(self) -> bool:
        return self.prior_posting is not None

    @property
    def idempotency_key(self) -> str:
        """Stable across attempts: what the adapter tags the message with and looks for."""
        if self.table == DIGESTS:
            prefix = "digest" if self.kind == "digest" else "notice"
            return f"{prefix}:{self.subscription_id}:{self.key}"
        return f"alert:{self.alert_state_id}:{self.key}"


@dataclass(frozen=True)
class Scope:
    """Which deliveries one tick may take, so two kinds of process can share a database
    without taking each other's work: the local console takes only its own workspace's
    (`workspace_id`), the Slack bot everything except what is addressed to the console's
    channel (`exclude_channel`). The default takes everything."""

    workspace_id: str | None = None
    exclude_channel: str | None = None

    def includes(self, workspace_id: str, channel_id: str | None) -> bool:
        if self.workspace_id is not None and workspace_id != self.workspace_id:
            return False
        return self.exclude_channel is None or channel_id != self.exclude_channel

    def sql(self, table: str) -> tuple[str, dict[str, Any]]:
        """` AND ...` conditions on `table` (a delivery table or alert_rule), and params."""
        parts: list[str] = []
        params: dict[str, Any] = {}
        if self.workspace_id is not None:
            parts.append("workspace_id = :scope_ws")
            params["scope_ws"] = self.workspace_id
        if self.exclude_channel is not None:
            params["scope_channel"] = self.exclude_channel
            parts.append(
                {
                    DIGESTS: "subscription_id NOT IN (SELECT id FROM digest_subscription "
                    "WHERE channel_id = :scope_channel)",
                    ALERTS: "rule_id NOT IN (SELECT id FROM alert_rule "
                    "WHERE channel_id = :scope_channel)",
                    "alert_rule": "channel_id <> :scope_channel",
                }[table]
            )
        return "".join(f" AND {p}" for p in parts), params


EVERYTHING = Scope()


def is_late(scheduled_at: datetime, now: datetime) -> bool:
    return now - scheduled_at > LATE_AFTER


def is_stale(scheduled_at: datetime, now: datetime) -> bool:
    return now - scheduled_at > SKIP_AFTER


def _check_table(table: str) -> None:
    if table not in _TABLES:
        raise ValueError(f"not a delivery table: {table!r}")


def last_scheduled(engine: Engine) -> dict[int, datetime]:
    """The latest scheduled digest (sent, skipped or claimed) of each subscription:
    where its schedule resumes. Pause notices do not count."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT subscription_id, MAX(scheduled_at) FROM digest_delivery "
                "WHERE kind = 'digest' GROUP BY subscription_id"
            )
        ).all()
    return {int(sub): from_epoch(at) for sub, at in rows}


def claim_slot(
    engine: Engine,
    *,
    workspace_id: str,
    subscription_id: int,
    period_key: str,
    scheduled_at: datetime,
    now: datetime,
    replica_id: str,
    kind: str = "digest",
    lease: timedelta = LEASE,
) -> Claim | None:
    """Claim one slot by inserting its row; None when another replica has it (or had it)."""
    late = is_late(scheduled_at, now)
    with engine.begin() as conn:
        row = conn.execute(
            text(
                "INSERT INTO digest_delivery (workspace_id, subscription_id, kind, period_key, "
                "scheduled_at, state, claimed_by, lease_expires_at, attempts, late, created_at) "
                "VALUES (:ws, :sub, :kind, :key, :at, 'claimed', :me, :exp, 1, :late, :now) "
                "ON CONFLICT (subscription_id, period_key) DO NOTHING RETURNING id"
            ),
            {
                "ws": workspace_id,
                "sub": subscription_id,
                "kind": kind,
                "key": period_key,
                "at": to_epoch(scheduled_at),
                "me": replica_id,
                "exp": to_epoch(now + lease),
                "late": late,
                "now": to_epoch(now),
            },
        ).first()
    if row is None:
        return None
    return Claim(
        table=DIGESTS,
        id=int(row[0]),
        token=1,
        replica_id=replica_id,
        workspace_id=workspace_id,
        scheduled_at=scheduled_at,
        late=late,
        prior_posting=None,
        kind=kind,
        key=period_key,
        subscription_id=subscription_id,
    )


def record_skipped(
    engine: Engine,
    *,
    workspace_id: str,
    subscription_id: int,
    period_key: str,
    scheduled_at: datetime,
    now: datetime,
    note: str,
) -> bool:
    """Record a slot as skipped (with why) unless it already has a row; True if recorded."""
    with engine.begin() as conn:
        row = conn.execute(
            text(
                "INSERT INTO digest_delivery (workspace_id, subscription_id, kind, period_key, "
                "scheduled_at, state, attempts, late, note, created_at) "
                "VALUES (:ws, :sub, 'digest', :key, :at, 'skipped', 0, :late, :note, :now) "
                "ON CONFLICT (subscription_id, period_key) DO NOTHING RETURNING id"
            ),
            {
                "ws": workspace_id,
                "sub": subscription_id,
                "key": period_key,
                "at": to_epoch(scheduled_at),
                "late": True,
                "note": note[:500],
                "now": to_epoch(now),
            },
        ).first()
    return row is not None


def skipped_since_sent(
    engine: Engine, subscription_id: int, before: datetime, note_like: str
) -> list[tuple[datetime, datetime, str]]:
    """(scheduled_at, created_at, note) of the subscription's digests skipped after its
    latest sent one and before `before`, whose note matches `note_like` (SQL LIKE):
    what the channel has not been told about yet. Once a later digest is sent they
    fall before it, so each is told once however often this is asked."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT scheduled_at, created_at, note FROM digest_delivery "
                "WHERE subscription_id = :sub AND kind = 'digest' AND state = 'skipped' "
                "AND scheduled_at < :before AND note LIKE :like AND scheduled_at > "
                "COALESCE((SELECT MAX(scheduled_at) FROM digest_delivery WHERE "
                "subscription_id = :sub AND kind = 'digest' AND state = 'sent'), -1) "
                "ORDER BY scheduled_at"
            ),
            {"sub": subscription_id, "before": to_epoch(before), "like": note_like},
        ).all()
    return [(from_epoch(at), from_epoch(created), str(note)) for at, created, note in rows]


def _claim_from_row(table: str, row: Any, token: int, replica_id: str, late: bool) -> Claim:
    m = row._mapping
    prior = m["posting_started_at"]
    common = {
        "table": table,
        "id": int(m["id"]),
        "token": token,
        "replica_id": replica_id,
        "workspace_id": m["workspace_id"],
        "scheduled_at": from_epoch(m["scheduled_at"]),
        "late": late,
        "prior_posting": None if prior is None else from_epoch(prior),
        "posted_ref": m.get("external_ref"),
    }
    if table == DIGESTS:
        return Claim(
            **common,
            kind=m["kind"],
            key=m["period_key"],
            subscription_id=int(m["subscription_id"]),
        )
    return Claim(
        **common,
        kind="alert",
        key=m["event_key"],
        alert_state_id=int(m["alert_state_id"]),
        rule_id=int(m["rule_id"]),
        payload=json.loads(m["payload"]) if isinstance(m["payload"], str) else m["payload"],
    )


def reclaim(
    engine: Engine,
    table: str,
    now: datetime,
    replica_id: str,
    lease: timedelta = LEASE,
    limit: int = RECLAIM_BATCH,
    clock: Callable[[], datetime] | None = None,
    scope: Scope = EVERYTHING,
) -> Iterator[Claim]:
    """Take over rows nobody holds: queued (`pending`) ones and claims whose lease expired
    (a crashed replica, or a retry whose backoff is over). One conditional UPDATE per
    row, so of several replicas reclaiming the same row exactly one wins. A generator:
    each row is taken only when the caller asks for the next, so its lease starts when
    it is about to be worked on. Only rows in `scope` are taken."""
    _check_table(table)
    where, scope_params = scope.sql(table)
    extra = (
        "subscription_id, kind, period_key"
        if table == DIGESTS
        else "alert_state_id, rule_id, event_key, payload"
    )
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, workspace_id, scheduled_at, attempts, posting_started_at, "
                f"external_ref, {extra} "
                f"FROM {table} WHERE (state = 'pending' OR (state = 'claimed' "
                f"AND lease_expires_at <= :now)){where} ORDER BY scheduled_at, id LIMIT :limit"
            ),
            {"now": to_epoch(now), "limit": limit, **scope_params},
        ).all()
    for row in rows:
        at = clock() if clock else now
        seen = int(row._mapping["attempts"])
        late = is_late(from_epoch(row._mapping["scheduled_at"]), at)
        with engine.begin() as conn:
            won = conn.execute(
                text(
                    f"UPDATE {table} SET state = 'claimed', claimed_by = :me, "
                    "lease_expires_at = :exp, attempts = attempts + 1, late = :late "
                    "WHERE id = :id AND attempts = :seen AND (state = 'pending' OR "
                    "(state = 'claimed' AND lease_expires_at <= :now))"
                ),
                {
                    "me": replica_id,
                    "exp": to_epoch(at + lease),
                    "late": late,
                    "id": row._mapping["id"],
                    "seen": seen,
                    "now": to_epoch(at),
                },
            ).rowcount
        if won == 1:
            yield _claim_from_row(table, row, seen + 1, replica_id, late)


def _fenced(
    conn: Connection, claim: Claim, sets: str, params: dict[str, Any], extra: str = ""
) -> bool:
    result = conn.execute(
        text(
            f"UPDATE {claim.table} SET {sets} WHERE id = :id AND attempts = :token "
            f"AND state = 'claimed'{extra}"
        ),
        {"id": claim.id, "token": claim.token, **params},
    )
    return result.rowcount == 1


def begin_posting(engine: Engine, claim: Claim, now: datetime) -> bool:
    """Record that this holder is about to post; False (do not post) if the lease is gone.

    The first attempt's time is kept when an earlier one may have posted: a later check
    looks for the message from then on (a history read starting at the latest attempt
    would miss a post the first one made)."""
    with engine.begin() as conn:
        return _fenced(
            conn,
            claim,
            "posting_started_at = COALESCE(posting_started_at, :now)",
            {"now": to_epoch(now)},
            " AND lease_expires_at > :now",
        )


def note_posted(engine: Engine, claim: Claim, external_ref: str) -> bool:
    """Record what the chat answered (the message's ts) the moment it answered, before
    anything else of the attempt can fail: a later attempt then knows the message is
    there from the database alone, with no need to search the channel (whose history
    Slack may allow once a minute, 15 messages at a time). False if the lease is gone."""
    with engine.begin() as conn:
        return _fenced(conn, claim, "external_ref = :ref", {"ref": external_ref[:100]})


def mark_sent(engine: Engine, claim: Claim, now: datetime, external_ref: str | None = None) -> bool:
    """Final: sent. False when another replica took the row over meanwhile."""
    with engine.begin() as conn:
        return _fenced(
            conn,
            claim,
            "state = 'sent', sent_at = :now, lease_expires_at = NULL, external_ref = :ref, "
            "note = NULL",
            {"now": to_epoch(now), "ref": external_ref},
        )


def mark_skipped(engine: Engine, claim: Claim, now: datetime, note: str) -> bool:
    """Final: not sent, and why."""
    with engine.begin() as conn:
        return _fenced(
            conn,
            claim,
            "state = 'skipped', lease_expires_at = NULL, note = :note",
            {"note": note[:500]},
        )


def release_for_retry(
    engine: Engine,
    claim: Claim,
    retry_at: datetime,
    note: str,
    posted: bool | None = None,
) -> bool:
    """Give the row back until `retry_at` (any replica may then reclaim it).

    `posted` False means the adapter knows nothing reached the channel in this
    attempt: the "may have been sent" mark goes back to what it was before it.
    Otherwise (unknown) the mark stays, and the next attempt checks first.
    """
    sets = "lease_expires_at = :retry, note = :note"
    params: dict[str, Any] = {"retry": to_epoch(retry_at), "note": note[:500]}
    if posted is False:
        sets += ", posting_started_at = :prior"
        params["prior"] = to_epoch(claim.prior_posting) if claim.prior_posting else None
    with engine.begin() as conn:
        return _fenced(conn, claim, sets, params)


def retry_delay(attempt: int, jitter: float | None = None) -> timedelta:
    """1, 2, 4, 8 ... minutes after the attempt, at most an hour, each stretched or shrunk
    by up to a fifth at random (`jitter` in [-1, 1] fixes it, for tests): replicas and
    channels that failed together (a Slack outage) do not all come back in the same
    second."""
    spread = random.uniform(-1.0, 1.0) if jitter is None else jitter
    minutes = min(60, 2 ** max(0, attempt - 1))
    return timedelta(seconds=minutes * 60 * (1 + 0.2 * spread))


def fail_permanently(
    engine: Engine,
    claim: Claim,
    now: datetime,
    reason: str,
    *,
    pause_subscription: bool,
    notify_user: str | None,
    lease: timedelta = LEASE,
) -> tuple[bool, Claim | None]:
    """Final: this delivery can never succeed (archived channel, app removed...).

    In one transaction: the row is skipped with the reason; for a digest the
    subscription is paused (if still active) and, when it was, a notice to the
    subscriber is queued, claimed by this replica so it goes out now. Committing
    them together means a crash can neither pause silently nor notify twice.
    Returns (whether this holder still had the row, the notice's claim if any).
    """
    with engine.begin() as conn:
        if not _fenced(
            conn,
            claim,
            "state = 'skipped', lease_expires_at = NULL, note = :note",
            {"note": f"not delivered: {reason}"[:500]},
        ):
            return False, None
        if not pause_subscription or claim.subscription_id is None:
            return True, None
        paused = conn.execute(
            text(
                "UPDATE digest_subscription SET status = 'paused', pause_reason = :reason, "
                "paused_at = :now WHERE id = :id AND status = 'active'"
            ),
            {"reason": reason[:300], "now": to_epoch(now), "id": claim.subscription_id},
        ).rowcount
        if paused != 1 or not notify_user:
            return True, None
        key = f"pause:{claim.key}"[:40]
        row = conn.execute(
            text(
                "INSERT INTO digest_delivery (workspace_id, subscription_id, kind, period_key, "
                "scheduled_at, state, claimed_by, lease_expires_at, attempts, late, created_at) "
                "VALUES (:ws, :sub, 'pause_notice', :key, :now, 'claimed', :me, :exp, 1, :late, "
                ":now) ON CONFLICT (subscription_id, period_key) DO NOTHING RETURNING id"
            ),
            {
                "ws": claim.workspace_id,
                "sub": claim.subscription_id,
                "key": key,
                "now": to_epoch(now),
                "me": claim.replica_id,
                "exp": to_epoch(now + lease),
                "late": False,
            },
        ).first()
    if row is None:
        return True, None
    return True, Claim(
        table=DIGESTS,
        id=int(row[0]),
        token=1,
        replica_id=claim.replica_id,
        workspace_id=claim.workspace_id,
        scheduled_at=now,
        late=False,
        prior_posting=None,
        kind="pause_notice",
        key=key,
        subscription_id=claim.subscription_id,
    )


GIVE_UP = "gave up after"  # how every given-up digest's note begins (runner._missed reads it)


def give_up(
    engine: Engine,
    claim: Claim,
    now: datetime,
    note: str,
    *,
    notify_user: str | None,
    lease: timedelta = LEASE,
) -> tuple[bool, Claim | None]:
    """Final for a digest whose attempts all failed (a long Slack outage): the row is
    skipped with `note` (beginning with GIVE_UP) and, in the same transaction, a notice
    to the subscriber is queued and claimed by this replica, as `fail_permanently` does
    for a pause; the subscription stays on. Returns (whether this holder still had the
    row, the notice's claim if any)."""
    with engine.begin() as conn:
        if not _fenced(
            conn,
            claim,
            "state = 'skipped', lease_expires_at = NULL, note = :note",
            {"note": note[:500]},
        ):
            return False, None
        if claim.kind != "digest" or claim.subscription_id is None or not notify_user:
            return True, None
        key = f"gaveup:{claim.key}"[:40]
        row = conn.execute(
            text(
                "INSERT INTO digest_delivery (workspace_id, subscription_id, kind, period_key, "
                "scheduled_at, state, claimed_by, lease_expires_at, attempts, late, created_at, "
                "note) VALUES (:ws, :sub, 'giveup_notice', :key, :due, 'claimed', :me, :exp, 1, "
                ":late, :now, :note) ON CONFLICT (subscription_id, period_key) DO NOTHING "
                "RETURNING id"
            ),
            {
                "ws": claim.workspace_id,
                "sub": claim.subscription_id,
                "key": key,
                "due": to_epoch(claim.scheduled_at),
                "now": to_epoch(now),
                "me": claim.replica_id,
                "exp": to_epoch(now + lease),
                "late": False,
                "note": note[:500],
            },
        ).first()
    if row is None:
        return True, None
    return True, Claim(
        table=DIGESTS,
        id=int(row[0]),
        token=1,
        replica_id=claim.replica_id,
        workspace_id=claim.workspace_id,
        scheduled_at=claim.scheduled_at,
        late=False,
        prior_posting=None,
        kind="giveup_notice",
        key=key,
        subscription_id=claim.subscription_id,
    )


def note_of(engine: Engine, claim: Claim) -> str | None:
    """The note stored on a claimed row (a give-up notice carries its digest's reason)."""
    with engine.connect() as conn:
        assert claim.table in _TABLES
        row = conn.execute(text(f"SELECT note FROM {claim.table} WHERE id = :id"), {"id": claim.id})
        found = row.first()
    return None if found is None or found[0] is None else str(found[0])


def disable_rule(engine: Engine, rule_id: int, reason: str) -> None:
    """An alert rule whose channel cannot be posted to stops until someone sets it again."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE alert_rule SET enabled = :no, disabled_reason = :reason "
                "WHERE id = :id AND enabled = :yes"
            ),
            {"no": False, "yes": True, "reason": reason[:300], "id": rule_id},
        )
