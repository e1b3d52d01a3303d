"""The App Home tab: the workspace at a glance, and its digests and alerts.

Lists are one section each (one line per item) rather than a block per item, so
the view stays far under Slack's 100 blocks whatever the workspace has set up;
long lists end with "and N more" and the command that shows the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block, DividerBlock
from slack_sdk.models.views import View

from bot.blocks.digest import ALERT_NAMES, local_time
from bot.blocks.imports import A_OPEN
from bot.blocks.message import SECTION_TEXT, actions, button, context, header, section
from bot.blocks.mrkdwn import Mrkdwn, channel_link, md, mention, mrkdwn, stored_reason
from journey.render.format import count, money, owner, pct, period
from journey.render.text import AT_RISK_SOURCE
from journey.reporting import Overview
from journey.reports import ValueReport
from journey.schedule.acks import FiringAlert
from journey.schedule.calendar import WEEKDAYS
from journey.schedule.status import DigestStatus, RuleStatus, ScheduleStatus

HOME_BLOCKS = 100
SOURCES_SHOWN = 20
LINES_SHOWN = 15  # per list: keeps each section well under Slack's 3,000 characters


def _lines(lines: list[Mrkdwn], total: int, rest: str) -> Mrkdwn:
    """Bullet lines that fit one section; "and N more" (with where to see them) after."""
    shown: list[Mrkdwn] = []
    for line in lines[:LINES_SHOWN]:
        if sum(len(s) + 1 for s in shown) + len(line) + 200 > SECTION_TEXT:
            break
        shown.append(line)
    more = total - len(shown)
    if more > 0:
        shown.append(mrkdwn(f"…and {more} more: {rest}"))
    return Mrkdwn("\n").join(shown)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def cadence_words(d: DigestStatus) -> str:
    """What to type after `/journey digest` to set this schedule again."""
    if d.cadence == "weekly":
        return f"weekly {WEEKDAYS[d.day_of_week or 0]} {d.local_time}"
    if d.cadence == "monthly":
        return f"monthly {d.day_of_month or 1} {d.local_time}"
    return f"daily {d.local_time}"


def _digest_line(d: DigestStatus) -> Mrkdwn:
    where = channel_link(d.channel_id)
    if d.active:
        nxt = f"next {local_time(d.next_send_at, d.timezone)}" if d.next_send_at else "no next send"
        return md("• {}: {}; {}", where, d.schedule, nxt)
    since = f" since {_day(d.paused_at)}" if d.paused_at else ""
    reason = stored_reason(d.pause_reason) if d.pause_reason else "no reason recorded"
    return md(
        "• {where}: :pause_button: paused{since} ({schedule}): {reason}. Restart: "
        "`/journey digest {words}` there",
        where=where,
        since=since,
        schedule=d.schedule,
        reason=reason,
        words=cadence_words(d),
    )


def _rule_line(r: RuleStatus) -> Mrkdwn:
    name = ALERT_NAMES.get(r.kind, r.kind)
    limits = (
        f"fires on a drop of {r.min_relative_drop * 100:.0f}% or more, with at least "
        f"{r.min_sample} in each group; cooldown {r.cooldown_hours} h"
    )
    if not r.enabled:
        why = md(": {}", stored_reason(r.disabled_reason)) if r.disabled_reason else ""
        return md("• *{}*: off{} ({})", name, why, limits)
    if not r.channel_id:
        return md("• *{}*: on, but no channel yet ({})", name, limits)
    return md("• *{}*: on in {} ({})", name, channel_link(r.channel_id), limits)


def _firing_line(f: FiringAlert) -> Mrkdwn:
    since = f" since {_day(f.fired_at)}" if f.fired_at else ""
    where = md(" in {}", channel_link(f.channel_id)) if f.channel_id else ""
    kind = ALERT_NAMES.get(f.kind, f.kind).split(" (")[0]
    line = md("• :rotating_light: *{}* ({}){}{}: ", f.title, kind, since, where)
    if f.ack is not None:
        return line + md("acknowledged by {} on {}", mention(f.ack.user_id), _day(f.ack.acked_at))
    if not f.announced:
        return line + "not announced (within the cooldown of an earlier alert)"
    return line + md("*not acknowledged yet* (the Acknowledge button on the alert)")


def schedule_blocks(status: ScheduleStatus | None) -> list[Block]:
    """Digests, alert rules and firing alerts, with the commands that change them."""
    blocks: list[Block] = [section("*Digests*")]
    if status is None or not status.digest_count:
        blocks.append(
            context(
                "No digests yet. `/journey digest weekly monday 09:00` in a channel sends it "
                "one (also `daily [HH:MM]`, `monthly [DAY] [HH:MM]`; in your Slack timezone)."
            )
        )
    else:
        lines = [_digest_line(d) for d in status.digests]
        blocks.append(section(_lines(lines, status.digest_count, "`/journey digest` in a channel")))
        blocks.append(
            context(
                "In a channel: `/journey digest` shows its digest, `/journey digest weekly|daily|"
                "monthly ...` sets it, `/journey digest off` stops it, `/journey digest now` "
                "previews it."
            )
        )
    blocks.append(section("*Alerts*"))
    if status is None or not status.rules:
        blocks.append(
            context(
                "Not set up yet. `/journey alerts channel` in a channel sends it the retention, "
                "funnel and churn alerts; `/journey alerts` lists them."
            )
        )
    else:
        blocks.append(section(Mrkdwn("\n").join(_rule_line(r) for r in status.rules)))
        firing = [_firing_line(f) for f in status.firing]
        blocks.append(
            section(
                _lines(firing, len(firing), "`/journey alerts`")
                if firing
                else "Nothing is firing now."
            )
        )
        blocks.append(
            context(
                "Checked after every sync that brings new data, and at least daily. `/journey alerts on|off [KIND]`, `/journey alerts channel` "
                "(in the channel that should get them), `/journey alerts threshold KIND "
                "[PERCENT] [min N] [cooldown 48h]` (KIND: retention, funnel or churn)."
            )
        )
    return blocks


# Sources that are not connections: what the Home says instead of their sync state.
IMPORTED = {
    "demo": "the built-in demo store (`journey demo` rebuilds it)",
    "csv": "imported from CSV files (sent to journey in its DM, or `journey import`)",
}


def value_line(report: ValueReport) -> str:
    """The value headline: what an average buyer is worth over the next months, and the
    channel whose recent customers are worth most when the value report can tell (plain
    text: `section` escapes it, channel names come from the data)."""
    if report.method != "models" or report.value_per_buyer_cents is None:
        reason = f": {report.fallback_reason}" if report.fallback_reason else ""
        return f"*Customer value:* not available{reason}."
    text = (
        f"*Customer value:* an average buyer is worth "
        f"{money(report.value_per_buyer_cents, report.currency)} over the next "
        f"{report.horizon_months} months"
    )
    best = next((c for c in report.channels if c.channel == report.best_channel), None)
    if best is not None and best.value_per_customer_cents is not None:
        text += (
            f"; customers from {best.channel} are worth most "
            f"({money(best.value_per_customer_cents, report.currency)} each, of those acquired "
            f"in {report.period.label})"
        )
    return text + "."


def home_view(
    overview: Overview | None,
    sources: list[tuple[str, str, str | None, str | None]],
    schedule: ScheduleStatus | None = None,
) -> dict[str, Any]:
    """sources: (kind, name, last sync as ISO text or None, last error or None)."""
    whose = owner(overview.funnel, ids=False) if overview is not None else ""
    blocks: list[Block] = [header(f"journey · {whose}" if whose else "journey")]
    if overview is None:
        blocks.append(
            section(
                "No data for this workspace yet. An admin can connect a store or CRM with "
                "`/journey connect`, import a CSV export with *Import a file* below (or by "
                "dropping it into the direct message with journey), or try the demo store "
                "with `journey demo`. Then type `/journey help`."
            )
        )
    else:
        f, r, v = overview.funnel, overview.retention, overview.reviews
        purchase = next((s for s in f.stages if s.stage == f.purchase_stage), None)
        bought = f", {purchase.reached} bought ({pct(purchase.overall.value)})" if purchase else ""
        blocks += [
            section(f"*Last 30 days* ({period(f.period)})"),
            section(
                f"*Funnel:* {f.entered} new customers{bought}.\n"
                + (
                    f"*Biggest drop-off:* {f.biggest_drop.from_stage} → {f.biggest_drop.to_stage} "
                    f"({pct(f.biggest_drop.current.value)} continue).\n"
                    if f.biggest_drop
                    else ""
                )
                + f"*Retention:* repeat rate {pct(r.repeat_rate.value)}; {r.returning} returning customers "
                f"({r.previous_returning} the period before).\n"
                f"*At risk:* {count(overview.churn.at_risk_count, 'customer')}, "
                f"{money(overview.churn.value_at_risk_cents, r.currency)} of expected revenue "
                f"({AT_RISK_SOURCE[overview.churn.method]}).\n"
                f"*Reviews:* {count(v.total_candidates, 'customer')} to ask now."
                + (f"\n{value_line(overview.value)}" if overview.value is not None else "")
            ),
            context(
                "`/journey funnel`, `/journey retention`, `/journey churn`, `/journey reviews`, "
                "`/journey value` for the details."
            ),
        ]
    blocks += [DividerBlock(), section("*Connected sources*")]
    if not sources:
        blocks.append(
            context(
                "None yet. An admin can connect Shopify, Stripe, HubSpot or WooCommerce with "
                "`/journey connect`; `/journey sources` shows each source's health."
            )
        )
    for kind, name, last_sync, last_error in sources[:SOURCES_SHOWN]:
        if kind in IMPORTED:  # no API to sync: data that arrived once, by file or generator
            blocks.append(context(f"*{name}*: {IMPORTED[kind]}"))
            continue
        status = f"last sync {last_sync}" if last_sync else "never synced"
        if last_error:
            status += f" · last error: {last_error}"
        blocks.append(context(f"*{name}* ({kind}): {status}"))
    if len(sources) > SOURCES_SHOWN:
        blocks.append(
            context(f"…and {len(sources) - SOURCES_SHOWN} more: `/journey sources` lists them all.")
        )
    elif sources:
        blocks.append(context("`/journey sources` for their health, `/journey sync` to sync now."))
    blocks.append(actions(button("Import a file", A_OPEN, "home"), block_id="home_import"))
    blocks.append(
        context(
            "Admins: import a CSV export (Shopify, Stripe, Square, WooCommerce, HubSpot, "
            "Mailchimp, Acuity...) here or by dropping it into the direct message with journey; "
            "you see what it holds before anything is imported."
        )
    )
    blocks += [DividerBlock(), header("Digests and alerts"), *schedule_blocks(schedule)]
    return View(type="home", blocks=blocks[:HOME_BLOCKS]).to_dict()
