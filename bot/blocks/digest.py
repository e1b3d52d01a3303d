"""Digests, alerts and pause notices as Slack messages.

Numbers are text first (searchable, copyable, readable in a notification and
by screen readers); every message goes through `Message.payload()`, so it fits
Slack's limits whatever the data. The buttons (acknowledge an alert, open the
full report) are footer blocks, kept when a long message is trimmed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from slack_sdk.models.blocks import Block

from bot.blocks.message import Message, actions, button, clip, context, header, section
from bot.blocks.mrkdwn import Mrkdwn, channel_link, md, stored_reason
from journey.metrics.churn import AT_RISK_BELOW, LOST_BELOW
from journey.periods import zone
from journey.playbooks import Playbook
from journey.render.format import customer_label, money, owner, pct, period, points, sources_label
from journey.render.sentences import people_sentence
from journey.reports import FunnelReport
from journey.schedule.alerts import AlertNotice
from journey.schedule.digests import BestChannel, Digest, Headline, MissedDigest
from journey.schedule.runner import PauseNotice

A_ALERT_ACK = "journey_alert_ack"
# One id per report (action ids must differ within a block); the listener matches the prefix.
A_OPEN_REPORT = "journey_open_report"


def open_report_id(kind: str) -> str:
    return f"{A_OPEN_REPORT}:{kind}"


# The report an alert's "Open report" button opens: the one that lists what it is about
# (high-value churn: the churn report's customers, not the retention cohorts).
ALERT_REPORTS = {
    "retention_drop": "retention",
    "funnel_step_drop": "funnel",
    "high_value_churn": "churn",
}
CADENCE_TITLE = {"daily": "Daily digest", "weekly": "Weekly digest", "monthly": "Monthly digest"}
ALERT_NAMES = {
    "retention_drop": "retention (repeat purchases)",
    "funnel_step_drop": "funnel (a step's conversion)",
    "high_value_churn": "churn (valuable customers not coming back)",
}


def local_time(moment: datetime, timezone: str) -> str:
    """`Mon 22 Jun 2026, 09:00 (Europe/Paris)`."""
    try:
        here = moment.astimezone(zone(timezone))
    except Exception:  # an unknown zone must not break a message
        here, timezone = moment, "UTC"
    return f"{here.strftime('%a %d %b %Y, %H:%M')} ({timezone})"


def period_word(start: datetime, end: datetime) -> str:
    """An inclusive ISO date range for /journey commands: `2026-06-08..2026-06-14`.

    The period's bounds are local midnights of the workspace; noon of a local day
    falls on the same UTC date for every zone within 11 hours of UTC.
    """
    first = (start + timedelta(hours=12)).date()
    last = (end - timedelta(hours=12)).date()
    return f"{first.isoformat()}..{last.isoformat()}"


def _headline(h: Headline, currency: str) -> str:
    if h.unit == "cents":
        now, before = money(h.current, currency), money(h.previous, currency)
    elif h.unit == "share":
        now, before = pct(h.current), pct(h.previous)
    else:
        now, before = f"{h.current:,.0f}", f"{h.previous:,.0f}"
    if h.unit == "share":
        change = points(h.delta_points)
    elif h.change is None:
        change = "new" if h.current and not h.previous else "no change"
    else:
        change = f"{h.change * 100:+.0f}%"
    arrow = ""
    if h.change is not None and h.change != 0:
        arrow = ":arrow_up_small: " if h.change > 0 else ":arrow_down_small: "
    return f"{arrow}*{h.label}:* {now} ({change}; {before} the period before)"


def _playbook(playbook: Playbook, limit: int = 3) -> str:
    steps = "\n".join(f"• {a}" for a in playbook.actions[:limit])
    return f"*What to try ({playbook.stage}):* {playbook.goal}\n{steps}"


def _names(names: list[str], total: int) -> str:
    shown = ", ".join(names)
    more = total - len(names)
    return shown + (f" and {more} more" if more > 0 else "")


def _span(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    if days >= 1:
        n = int(days)
        return f"{n} day{'s' if n != 1 else ''}"
    hours = max(1, int(delta.total_seconds() // 3600))
    return f"{hours} hour{'s' if hours != 1 else ''}"


def missed_line(missed: MissedDigest, timezone: str) -> str:
    """Why the channel did not get some earlier digests: they would have been more than a
    day late, so they were skipped rather than posted out of date."""
    if missed.gave_up:
        return (
            f"The digest due {local_time(missed.first_due, timezone)} could not be posted: "
            "Slack kept failing through every attempt, so it was given up."
        )
    if missed.count == 1:
        what = f"The digest due {local_time(missed.first_due, timezone)} was skipped"
    else:
        what = (
            f"{missed.count} digests due {local_time(missed.first_due, timezone)} to "
            f"{local_time(missed.last_due, timezone)} were skipped"
        )
    if missed.back_at is not None and missed.back_at > missed.first_due:
        why = f"journey was down for {_span(missed.back_at - missed.first_due)}"
    else:
        why = "journey could not send it within a day"
    return f"{what}: {why}, and a digest more than a day late is not sent."


UNIT = {"daily": "day", "weekly": "week", "monthly": "month"}
# How the churn report decided who is at risk, as the digest says it.
AT_RISK_HOW = {
    # The words /journey churn defines "at risk" with (journey/render/sentences.py).
    "bg_nbd": (
        f" (the churn model: repeat buyers with a {LOST_BELOW:.0%} to {AT_RISK_BELOW:.0%} "
        "chance of still being customers)"
    ),
    "heuristic": " (by the usual-gap rule; the churn model could not be fitted)",
}


def quiet_line(digest: Digest) -> str:
    """A workspace with data but nothing in this period nor the one before: one line
    instead of a page of zeros."""
    unit = UNIT.get(digest.cadence, "period")
    text = f"No customer activity this {unit} ({period(digest.period)}) nor the {unit} before"
    if digest.last_activity_at is not None:
        try:
            local = digest.last_activity_at.astimezone(zone(digest.timezone))
        except Exception:  # an unknown zone must not break a message
            local = digest.last_activity_at
        text += f"; the latest was on {local.date().isoformat()}"
    return text + "."


def funnel_line(funnel: FunnelReport) -> str:
    """The period's funnel in one line: each stage's count and its conversion from the
    stage before, so the biggest drop below has its context."""
    if not funnel.entered or not funnel.stages:
        return (
            f"*Funnel:* nobody new entered the journey this period "
            f"({funnel.previous_entered:,} the period before)."
        )
    steps = []
    for s in funnel.stages:
        step = f"{s.stage} {s.reached:,}"
        if s.step is not None and s.step.value is not None:
            step += f" ({pct(s.step.value, 0)})"
        steps.append(step)
    return (
        f"*Funnel* ({funnel.entered:,} customers entered, {funnel.previous_entered:,} the "
        f"period before; % of the stage before): {' → '.join(steps)}"
    )


def _with_sources(digest: Digest) -> list[str]:
    """The review names, each with the sources the person appears in when known."""
    sources = digest.review_sources or [()] * len(digest.review_names)
    return [
        f"{name} ({sources_label(where)})" if where else name
        for name, where in zip(digest.review_names, sources, strict=False)
    ]


def _people_blocks(digest: Digest) -> list[Block]:
    """Who to call and who to ask for a review: names, not numbers, so they are worth
    showing even when nothing else happened."""
    blocks: list[Block] = []
    if digest.at_risk_count:
        names = [customer_label(c) for c in digest.at_risk]
        how = AT_RISK_HOW.get(digest.at_risk_method or "", "")
        # The total is as of the period's end, as `/journey churn DAY` counts it: plain
        # `/journey churn` (as of now) shows another number a day or a week later.
        last_day = period_word(digest.period.start, digest.period.end).split("..")[1]
        blocks.append(
            section(
                f"*Newly at risk:* {digest.at_risk_count} customer"
                f"{'s' if digest.at_risk_count != 1 else ''} "
                f"({money(digest.at_risk_value_cents, digest.currency)} a year at stake), "
                f"most value first: {_names(names, digest.at_risk_count)}. "
                f"{digest.at_risk_total} at risk in all on {last_day}{how}: "
                f"`/journey churn {last_day}` for the list (`/journey churn` alone: today's)."
            )
        )
    if digest.review_candidates:
        blocks.append(
            section(
                f"*Ask for a review:* {digest.review_candidates} happy customers waiting: "
                f"{_names(_with_sources(digest), digest.review_candidates)}. "
                "`/journey reviews` to mark them."
            )
        )
    return blocks


def best_channel_line(best: BestChannel, currency: str) -> str:
    """The value report's best channel in one line (plain text: `section` escapes the
    channel name, which comes from the data)."""
    low, high = best.interval
    return (
        f"*Most valuable customers:* those from {best.channel}, "
        f"{money(best.value_per_customer_cents, currency)} each over the next "
        f"{best.horizon_months} months (95% interval {money(low, currency)} to "
        f"{money(high, currency)}; {best.customers:,} customers acquired in "
        f"{best.window.label}). `/journey value` for every channel."
    )


def digest_message(digest: Digest, *, late: bool = False, preview: bool = False) -> Message:
    """A digest as a channel message: headlines, biggest drop and what to do, who to
    call, who to ask for a review, and when the next one comes."""
    whose = owner(digest, ids=False)
    title = " · ".join(
        part
        for part in (CADENCE_TITLE.get(digest.cadence, "Digest"), whose, period(digest.period))
        if part
    )
    blocks: list[Block] = [header(title)]
    lines = [f"{title}."]
    if preview:
        blocks.append(context(":eyes: Preview: only you can see this."))
    if late:
        due = local_time(digest.scheduled_at, digest.timezone)
        blocks.append(
            context(f":hourglass: Late: this digest was due {due}; journey was not running then.")
        )
        lines.append("(late)")
    for missed in digest.missed[-3:]:
        note = missed_line(missed, digest.timezone)
        blocks.append(context(f":warning: {note}"))
        lines.append(note)
    if not digest.has_data:
        text = " ".join(digest.notes) or "No customer data yet."
        blocks.append(section(text))
        lines.append(text)
    elif digest.quiet:
        text = quiet_line(digest)
        blocks.append(section(text))
        lines.append(text)
        blocks += _people_blocks(digest)
    else:
        heads = [_headline(h, digest.currency) for h in digest.headlines]
        blocks.append(section("\n".join(heads)))
        lines += [
            f"{h.label}: {h.current:,.0f}" if h.unit == "count" else "" for h in digest.headlines
        ]
        if digest.funnel is not None:
            blocks.append(section(funnel_line(digest.funnel)))
            if joined := people_sentence(digest.funnel.people):
                blocks.append(context(joined))
        drop = digest.biggest_drop
        if drop is not None:
            was = pct(drop.previous.value) if drop.previous.value is not None else "n/a"
            text = (
                f"*Biggest drop-off:* {drop.from_stage} → {drop.to_stage}: "
                f"{pct(drop.current.value)} continue ({drop.current.numerator} of "
                f"{drop.current.denominator}; {was} the period before)."
            )
            if digest.biggest_drop_playbook is not None:
                text += "\n" + _playbook(digest.biggest_drop_playbook)
            blocks.append(section(text))
        blocks += _people_blocks(digest)
        if digest.best_channel is not None:
            blocks.append(section(best_channel_line(digest.best_channel, digest.currency)))
        if digest.notes:
            blocks.append(context(" ".join(digest.notes)))
    if digest.next_send_at:
        nxt = (
            f"Next digest {local_time(digest.next_send_at, digest.timezone)} · "
            "`/journey digest` to change or stop it."
        )
    elif preview:
        nxt = (
            "This channel gets no digest yet: `/journey digest weekly monday 09:00` sends "
            "it one like this preview."
        )
    else:
        nxt = "No next digest scheduled · `/journey digest` to change or stop it."
    footer: list[Block] = [context(nxt)]
    word = period_word(digest.period.start, digest.period.end)
    footer.append(
        actions(
            button("Open funnel report", open_report_id("funnel"), {"k": "funnel", "p": word}),
            button(
                "Open retention report",
                open_report_id("retention"),
                {"k": "retention", "p": word},
            ),
            block_id="journey_digest_actions",
        )
    )
    text = " ".join(x for x in lines if x)
    return Message(clip(text, 3000), blocks, footer)


def _window(a: datetime, b: datetime) -> str:
    return f"{a.date().isoformat()} to {(b - timedelta(seconds=1)).date().isoformat()}"


def alert_message(notice: AlertNotice, *, late: bool = False) -> Message:
    """An alert as a channel message: what dropped, by how much, against what, how sure,
    and what to do; with buttons to acknowledge it and open the report."""
    fired = notice.event == "fired"
    icon = ":rotating_light:" if fired else ":white_check_mark:"
    blocks: list[Block] = [header(f"{notice.title}")]
    blocks.append(section(f"{icon} {notice.summary}"))
    drop = "n/a" if notice.relative_drop is None else f"{notice.relative_drop * 100:.0f}%"
    p = "n/a" if notice.p_value is None else f"{notice.p_value:.3f}"
    blocks.append(
        section(
            f"*Recent:* {pct(notice.recent.value)} ({notice.recent.numerator} of "
            f"{notice.recent.denominator}) of {notice.recent_group} {notice.outcome}, "
            f"{_window(*notice.recent_window)}.\n"
            f"*Baseline:* {pct(notice.baseline.value)} ({notice.baseline.numerator} of "
            f"{notice.baseline.denominator}) of {notice.baseline_group}, "
            f"{_window(*notice.baseline_window)}.\n"
            f"*Relative drop:* {drop} · *p-value:* {p} (one-sided test: how likely a drop "
            "this size is by chance alone)."
        )
    )
    if notice.customers:
        blocks.append(section(f"*Customers to call first:* {', '.join(notice.customers)}"))
    if fired and notice.playbook is not None:
        blocks.append(section(_playbook(notice.playbook)))
    if late:
        blocks.append(context(":hourglass: Posted late: journey was not running when it fired."))
    kind = ALERT_NAMES.get(notice.kind, notice.kind)
    footer: list[Block] = [
        context(f"Alert: {kind}. `/journey alerts` to change thresholds or turn it off.")
    ]
    report = ALERT_REPORTS.get(notice.kind, "retention")
    buttons = []
    if fired:
        buttons.append(
            button(
                "Acknowledge",
                A_ALERT_ACK,
                {"r": notice.rule_id, "key": notice.key[:100]},
                style="primary",
            )
        )
    buttons.append(
        button(
            f"Open {report} report",
            open_report_id(report),
            # churn is judged on one day (today): a length of time would change nothing
            {"k": report, "p": None if report == "churn" else "90d"},
        )
    )
    footer.append(actions(*buttons, block_id="journey_alert_actions"))
    return Message(clip(notice.summary, 3000), blocks, footer)


def pause_notice_message(notice: PauseNotice) -> Message:
    """The direct message telling a subscriber their digest stopped, why and how to fix it."""
    text = md(
        "I paused the digest in {where} ({schedule}): {reason} "
        "Once that is fixed, run `/journey digest` with its schedule in {where} to turn it "
        "back on (e.g. `/journey digest weekly monday 09:00`).",
        where=channel_link(notice.channel_id),
        schedule=notice.schedule,
        reason=stored_reason(notice.reason),
    )
    return Message(
        text,
        [
            header("Your journey digest is paused"),
            section(md(":pause_button: {}", text)),
            context(
                "Nothing is lost: the numbers are all still there; digests missed while "
                "paused are not sent afterwards."
            ),
        ],
    )


def alert_stopped_message(kind: str, channel_id: str, reason: str) -> Message:
    """The direct message telling whoever pointed an alert at a channel that it stopped
    (its rule is off, as `/journey alerts` shows), why, and how to turn it back on."""
    name = ALERT_NAMES.get(kind, kind).split(" (")[0]
    text = md(
        "I turned off the {} alert, which posted in {}: {} Once that is fixed, run "
        "`/journey alerts channel` in the channel that should get alerts, then "
        "`/journey alerts on`.",
        name,
        channel_link(channel_id),
        stored_reason(reason),
    )
    return Message(
        text,
        [
            header("A journey alert is off"),
            section(md(":pause_button: {}", text)),
            context("Nothing is lost: `/journey alerts` lists every alert and its state."),
        ],
    )


def giveup_notice_message(notice: PauseNotice, due: datetime) -> Message:
    """The direct message telling a subscriber one digest could not be posted at all
    (every attempt failed, e.g. during a Slack outage); the digest itself stays on."""
    text = md(
        "I could not post the digest due {due} in {where} ({schedule}): {reason} "
        "The digest stays on; the next one will say this one is missing.",
        due=local_time(due, "UTC"),
        where=channel_link(notice.channel_id),
        schedule=notice.schedule,
        reason=stored_reason(notice.reason),
    )
    return Message(
        text,
        [
            header("A journey digest could not be posted"),
            section(md(":warning: {}", text)),
            context("Nothing is lost: `/journey digest now` in the channel shows it today."),
        ],
    )


def alerts_list_message(
    rows: list[tuple[str, bool, str | None, float, str | None, list[str]]],
    prefix: str | None = None,
) -> Message:
    """rows: (kind, enabled, channel id, relative threshold, disabled reason, firing keys).
    `prefix` (what a command just did) may be Mrkdwn with the bot's own mentions."""
    lines = []
    for kind, enabled, channel, threshold, reason, firing in rows:
        state = "on" if enabled and channel else "off"
        where = (
            md(" in {}", channel_link(channel))
            if channel
            else " (no channel: `/journey alerts channel`)"
        )
        line = md(
            "• *{name}*: {state}{where}, alerts on a drop of {pct:.0f}% or more",
            name=ALERT_NAMES.get(kind, kind),
            state=state,
            where=where if enabled else "",
            pct=threshold * 100,
        )
        if firing:
            line += md(" · :rotating_light: firing: {}", ", ".join(firing))
        if reason and not enabled:
            line += md(" · stopped: {}", stored_reason(reason))
        lines.append(line)
    text = md("Alerts for this workspace:\n{}", Mrkdwn("\n").join(lines))
    if prefix:
        text = md("{}\n{}", prefix, text)
    return Message(
        text,
        [
            section(text),
            context(
                "Checked after every sync that brings new data, and at least daily. An alert fires only on a drop at least that large, on "
                "enough customers, that is unlikely to be chance (p < 0.04). "
                "`/journey alerts on|off [KIND]`, `/journey alerts channel`, "
                "`/journey alerts threshold KIND [PERCENT] [min N] [cooldown 48h]`."
            ),
        ],
    )
