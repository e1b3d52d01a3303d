"""`/journey digest ...` and `/journey alerts ...`: thin shells over journey.schedule.

Synchronous database work, run in a worker thread by the listener like the
reports. Slack-specific inputs (the channel, the user, their timezone from
users.info) come in as arguments; the answer is a Message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.blocks.digest import ALERT_NAMES, alerts_list_message, digest_message, local_time
from bot.blocks.message import Message, context, section
from bot.blocks.mrkdwn import Mrkdwn, channel_link, md, mention, stored_reason, turned_off_by
from bot.commands.language import AlertsRequest, DigestRequest
from journey.db import session_scope
from journey.models.schedule import AlertRule, AlertState, DigestSubscription
from journey.schedule import (
    Digest,
    Schedule,
    digest_for_subscription,
    ensure_default_rules,
    next_send_after,
    pause_subscription,
    subscribe,
)
from journey.schedule.acks import acknowledge, firing_alerts
from journey.schedule.alerts import route_default_rules
from journey.workspaces import get_workspace

SET_EXAMPLE = "`/journey digest weekly monday 09:00`"


def _note(text: str, *more: str) -> Message:
    """A short answer; `text` and `more` may be Mrkdwn with the bot's own links."""
    return Message(text, [section(text), *(context(m) for m in more)])


def _sub(session: Session, workspace_id: str, channel_id: str) -> DigestSubscription | None:
    return session.exec(
        select(DigestSubscription).where(
            DigestSubscription.workspace_id == workspace_id,
            DigestSubscription.channel_id == channel_id,
        )
    ).first()


def _cadence_words(sub: DigestSubscription) -> str:
    """The command that sets this schedule again, e.g. `weekly monday 09:00`."""
    from journey.schedule.calendar import WEEKDAYS

    if sub.cadence == "weekly":
        return f"weekly {WEEKDAYS[sub.day_of_week or 0]} {sub.local_time}"
    if sub.cadence == "monthly":
        return f"monthly {sub.day_of_month or 1} {sub.local_time}"
    return f"daily {sub.local_time}"


def _threshold_words(request: AlertsRequest) -> str:
    """What a threshold change set, in words: only the parts given."""
    parts = []
    if request.percent is not None:
        parts.append(f"needs a drop of {request.percent:g}% or more")
    if request.min_sample is not None:
        unit = "purchases" if request.kind == "high_value_churn" else "customers"
        parts.append(f"needs at least {request.min_sample} {unit} in each group")
    if request.cooldown_hours is not None:
        parts.append(f"waits {_hours(request.cooldown_hours)} before announcing again")
    return " and ".join(parts) if len(parts) < 3 else f"{parts[0]}, {parts[1]} and {parts[2]}"


def _hours(hours: int) -> str:
    return f"{hours}h"  # as typed in the form (`cooldown 48h`); days are entered as hours


def _limits_line(rules: Sequence[AlertRule]) -> str:
    """Each rule's minimum sample and cooldown, and the form that changes them."""
    each = [
        f"{ALERT_NAMES.get(r.kind, r.kind).split(' (')[0]}: at least {r.min_sample} "
        f"{'purchases' if r.kind == 'high_value_churn' else 'customers'} per group, "
        f"{_hours(r.cooldown_hours)} cooldown"
        for r in rules
    ]
    return (
        "Minimum sample and cooldown: "
        + "; ".join(each)
        + ". `/journey alerts threshold KIND [PERCENT] [min N] [cooldown 48h]` changes them."
    )


def _alerts_hint(rules: list[AlertRule], given_here: set[str], channel_id: str) -> str | Mrkdwn:
    """Where the alerts go, after a digest is set: here now, or where they went before
    (and how to bring them here)."""
    if given_here:
        names = ", ".join(ALERT_NAMES.get(k, k).split(" (")[0] for k in sorted(given_here))
        return (
            f"Alerts ({names}) had no channel and now post here too. "
            "`/journey alerts` lists them; `/journey digest now` shows a preview."
        )
    elsewhere = sorted({r.channel_id for r in rules if r.channel_id and r.channel_id != channel_id})
    if not elsewhere:
        return "`/journey digest now` shows a preview; `/journey digest off` stops it."
    where = Mrkdwn(", ").join(
        "a direct message with the installer" if c.startswith("D") else channel_link(c)
        for c in elsewhere
    )
    return md("Alerts post in {}; `/journey alerts channel` here moves them here.", where)


def digest_preview(
    engine: Engine,
    workspace_id: str,
    channel_id: str,
    timezone: str,
    now: datetime | None = None,
) -> Digest:
    """`/journey digest now`: the digest this channel would get now, for callers that
    want the digest itself as well as its message (the console saves its chart)."""
    now = now or datetime.now(UTC)
    with session_scope(engine) as session:
        get_workspace(session, workspace_id)  # NotFound: the "no data yet" answer
        sub = _sub(session, workspace_id, channel_id)
        return _preview(session, workspace_id, sub, channel_id, timezone, now)


def _preview(
    session: Session,
    workspace_id: str,
    sub: DigestSubscription | None,
    channel_id: str,
    timezone: str,
    now: datetime,
) -> Digest:
    """The channel's own digest settings, else a weekly digest in `timezone`. Without
    settings of its own there is no next digest: the preview must not promise one (it said
    "Next digest Mon 09:00" where /journey digest said the channel gets none)."""
    if sub is None:
        weekly = DigestSubscription(
            workspace_id=workspace_id,
            channel_id=channel_id,
            cadence="weekly",
            day_of_week=0,
            local_time="09:00",
            timezone=timezone,
            created_at=now,
        )
        return replace(digest_for_subscription(session, weekly, now, now=now), next_send_at=None)
    return digest_for_subscription(session, sub, now, now=now)


def digest_reply(
    engine: Engine,
    workspace_id: str,
    channel_id: str,
    user_id: str,
    timezone: str,
    request: DigestRequest,
    now: datetime | None = None,
    zone_words: str | None = None,
) -> Message:
    """`zone_words` says whose clock the times are on ("<@U1>'s Slack timezone" in Slack,
    "this computer's timezone" in the local console)."""
    now = now or datetime.now(UTC)
    whose = zone_words or md("{}'s Slack timezone", mention(user_id))
    with session_scope(engine) as session:
        get_workspace(session, workspace_id)  # NotFound: the "no data yet" answer
        sub = _sub(session, workspace_id, channel_id)
        if request.action == "set":
            assert request.cadence is not None
            sub = subscribe(
                session,
                workspace_id,
                channel_id,
                cadence=request.cadence,
                local_time=request.local_time,
                timezone=timezone,
                day_of_week=request.day_of_week,
                day_of_month=request.day_of_month,
                subscriber_user_id=user_id,
                now=now,
            )
            # The first digest channel is where the team reads its numbers: alerts that
            # have nowhere to go yet go there too (rules with a channel keep it).
            before = ensure_default_rules(session, workspace_id, now=now)
            unrouted = {r.kind for r in before if r.channel_id is None and r.enabled}
            rules = route_default_rules(session, workspace_id, channel_id, now=now)
            for rule in rules:
                if rule.kind in unrouted and rule.channel_id == channel_id:
                    rule.set_by = user_id  # told if its alerts stop (bot/posting/delivery.py)
                    session.add(rule)
            schedule = Schedule.of(sub)
            first = next_send_after(schedule, now).at
            hint = _alerts_hint(rules, unrouted, channel_id)
            return _note(
                md(
                    ":white_check_mark: This channel gets a digest {}, in {}. The first one "
                    "comes {}.",
                    schedule.describe(),
                    whose,
                    local_time(first, sub.timezone),
                ),
                hint,
            )
        if request.action == "off":
            if sub is None or sub.status != "active":
                return _note("This channel has no digest running, so there is nothing to stop.")
            assert sub.id is not None
            pause_subscription(session, workspace_id, sub.id, turned_off_by(user_id), now)
            return _note(
                f"Digest stopped in this channel (it was {Schedule.of(sub).describe()}). "
                f"Start it again with `/journey digest {_cadence_words(sub)}`."
            )
        if request.action == "now":
            digest = _preview(session, workspace_id, sub, channel_id, timezone, now)
            return digest_message(digest, preview=True)
        # show
        others = [
            s.channel_id
            for s in session.exec(
                select(DigestSubscription).where(
                    DigestSubscription.workspace_id == workspace_id,
                    DigestSubscription.status == "active",
                    DigestSubscription.channel_id != channel_id,
                )
            )
        ]
        elsewhere = (
            md("Digests also go to {}.", Mrkdwn(", ").join(channel_link(c) for c in others[:20]))
            if others
            else ""
        )
        if sub is None:
            return _note(
                f"This channel gets no digest. An admin can start one with {SET_EXAMPLE} "
                "(also `daily [HH:MM]` or `monthly [DAY] [HH:MM]`; times are in "
                f"{zone_words or 'your Slack timezone'}).",
                *([elsewhere] if elsewhere else []),
            )
        schedule = Schedule.of(sub)
        if sub.status != "active":
            return _note(
                md(
                    ":pause_button: The digest here ({}) is paused: {}. Turn it back on with "
                    "`/journey digest {}`.",
                    schedule.describe(),
                    stored_reason(sub.pause_reason) if sub.pause_reason else "no reason recorded",
                    _cadence_words(sub),
                ),
                *([elsewhere] if elsewhere else []),
            )
        nxt = next_send_after(schedule, now).at
        return _note(
            f"This channel gets a digest {schedule.describe()}. Next: "
            f"{local_time(nxt, sub.timezone)}.",
            md(
                "`/journey digest now` for a preview, `/journey digest off` to stop it. {}",
                elsewhere,
            )
            if elsewhere
            else "`/journey digest now` for a preview, `/journey digest off` to stop it.",
        )


def _acknowledge_firing(
    engine: Engine, workspace_id: str, user_id: str, request: AlertsRequest, now: datetime
) -> str | Mrkdwn | None:
    """`/journey alerts ack [KIND]`: the Acknowledge button for every announced alert
    firing now (of that kind), for where there is no button (the console) or it scrolled
    away. Each goes through the same first-click-wins record as the button."""
    if request.action != "ack":
        return None
    with session_scope(engine) as session:
        get_workspace(session, workspace_id)
        firing = [
            a
            for a in firing_alerts(session, workspace_id)
            if a.announced and (request.kind is None or a.kind == request.kind)
        ]
    if not firing:
        return "No announced alert is firing" + (
            f" for {ALERT_NAMES.get(request.kind, request.kind).split(' (')[0]}."
            if request.kind
            else "."
        )
    lines = []
    for alert in firing:
        result = acknowledge(
            engine, workspace_id, rule_id=alert.rule_id, key=alert.key, user_id=user_id, now=now
        )
        if result.status == "acknowledged":
            lines.append(md(":white_check_mark: {}: acknowledged by you.", alert.title))
        elif result.status == "already" and result.ack is not None:
            when = result.ack.acked_at.strftime("%Y-%m-%d %H:%M")
            lines.append(
                md(
                    "{}: already acknowledged by {} ({} UTC).",
                    alert.title,
                    mention(result.ack.user_id),
                    when,
                )
            )
    return Mrkdwn("\n").join(lines) or None


def alerts_reply(
    engine: Engine,
    workspace_id: str,
    channel_id: str,
    user_id: str,
    request: AlertsRequest,
    now: datetime | None = None,
) -> Message:
    now = now or datetime.now(UTC)
    acked = _acknowledge_firing(engine, workspace_id, user_id, request, now)
    with session_scope(engine) as session:
        get_workspace(session, workspace_id)
        rules = ensure_default_rules(session, workspace_id, now=now)
        chosen = [r for r in rules if request.kind is None or r.kind == request.kind]
        names = ", ".join(ALERT_NAMES.get(r.kind, r.kind).split(" (")[0] for r in chosen)
        done = acked or ""
        if request.action == "on":
            for rule in chosen:
                rule.enabled, rule.disabled_reason = True, None
                if rule.channel_id is None:
                    rule.channel_id, rule.set_by = channel_id, user_id
                session.add(rule)
            done = f":white_check_mark: Alerts on: {names}."
        elif request.action == "off":
            for rule in chosen:
                rule.enabled, rule.disabled_reason = False, turned_off_by(user_id)
                session.add(rule)
            done = f"Alerts off: {names}."
        elif request.action == "channel":
            for rule in rules:
                rule.channel_id, rule.set_by = channel_id, user_id
                session.add(rule)
            done = ":white_check_mark: Alerts now post in this channel."
        elif request.action == "threshold":
            for rule in chosen:
                if request.percent is not None:
                    rule.min_relative_drop = request.percent / 100
                if request.min_sample is not None:
                    rule.min_sample = request.min_sample
                if request.cooldown_hours is not None:
                    rule.cooldown_hours = request.cooldown_hours
                session.add(rule)
            done = f":white_check_mark: The {names} alert now {_threshold_words(request)}."
        session.flush()
        firing: dict[int, list[str]] = {}
        for state in session.exec(
            select(AlertState).where(
                AlertState.workspace_id == workspace_id, AlertState.state == "firing"
            )
        ):
            firing.setdefault(state.rule_id, []).append(state.key)
        limits = _limits_line(
            session.exec(
                select(AlertRule)
                .where(AlertRule.workspace_id == workspace_id)
                .order_by(AlertRule.id)  # type: ignore[arg-type]
            ).all()
        )
        rows = [
            (
                r.kind,
                r.enabled,
                r.channel_id,
                r.min_relative_drop,
                r.disabled_reason,
                firing.get(r.id or 0, []),
            )
            for r in session.exec(
                select(AlertRule)
                .where(AlertRule.workspace_id == workspace_id)
                .order_by(AlertRule.id)
            )
        ]
    listed = alerts_list_message(rows, prefix=done or None)
    # The list shows each rule's drop threshold; its minimum sample and cooldown, which a
    # workspace can set too, follow it in one line, before the list's footer.
    return Message(
        md("{}\n{}", listed.text, limits),
        [*listed.blocks[:1], context(limits), *listed.blocks[1:]],
    )
