"""Funnel, retention, churn and review reports as Slack messages.

Text first: every number is text (tables in code blocks), so it can be searched
and copied; the chart image, when the app may upload files, is added later by
the listener. Buttons carry the request (kind, period, channel) so an action can
rebuild the same report.

Who sees which buttons is the bot's decision (bot/guard/access.py: admins, owners and
JOURNEY_EXPORT_USERGROUP may export), handed in as `exports`: the *CSV* and *Share*
buttons are built only for a viewer who may use them, so a member is not offered a
button that would refuse them. It defaults to False, so a caller that forgets offers
less, never more; the click is still checked (a message can be forwarded or replayed).
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block, DividerBlock

from bot.blocks.message import Message, actions, button, code, context, header, section
from bot.blocks.people import A_PERSON_DETAILS
from journey.playbooks import Playbook
from journey.render.format import (
    count,
    customer_label,
    day,
    hours,
    money,
    owner,
    pct,
    period,
    points,
    rate,
    relative_change,
    sources_label,
    versus,
)
from journey.render.sentences import (
    FUNNEL_MEANING,
    OVERDUE_MEANING,
    REPEAT_RATE_MEANING,
    at_risk_meaning,
    churn_value_note,
    cohort_cells,
    inferred_note,
    insight_sentence,
    month_so_far_note,
    people_sentence,
    twelve_month_value,
    value_sentence,
)
from journey.render.text import churn_method_note, table
from journey.reports import (
    ChurnReport,
    FunnelReport,
    Insight,
    RetentionReport,
    ReviewReport,
    ValueReport,
)

LIST_ROWS = 10

A_BY_CHANNEL = "journey_by_channel"
A_COMPARE = "journey_compare"
A_SHARE = "journey_share"
A_EXPORT = "journey_export_csv"
A_REVIEW_ASKED = "journey_review_asked"
A_REVIEW_SKIP = "journey_review_skip"


def request_value(
    kind: str, period_word: str | None, channel: str | None = None, view: str = ""
) -> dict[str, Any]:
    return {"k": kind, "p": period_word, "c": channel, "v": view}


def _playbook_blocks(playbook: Playbook | None) -> list[Block]:
    if playbook is None:
        return []
    bullets = "\n".join(f"• {a}" for a in playbook.actions)
    return [section(f"*Playbook for {playbook.stage}:* {playbook.goal}\n{bullets}")]


def _report_buttons(
    kind: str, period_word: str | None, channel: str | None, shared: bool, exports: bool
) -> list[Block]:
    """The report's buttons: none once shared; *CSV* and *Share* only when `exports`."""
    if shared:
        return []
    value = request_value(kind, period_word, channel)
    buttons = []
    if kind == "funnel":
        buttons += [
            button("By channel", A_BY_CHANNEL, value),
            button("Compare with previous period", A_COMPARE, value),
        ]
    if exports:
        if kind == "churn":
            buttons.append(button("All customers at risk (CSV)", A_EXPORT, value))
        if kind == "retention":
            buttons.append(button("All overdue customers (CSV)", A_EXPORT, value))
        buttons.append(button("Share to channel", A_SHARE, {**value, "v": ""}, style="primary"))
    if not buttons:
        return []
    return [actions(*buttons, block_id=f"{kind}_actions")]


def _more_line(more: int, button_text: str, exports: bool) -> str:
    """The line under a cut list: where the rest is, for whoever reads it."""
    if exports:
        return f"… and {more} more: *{button_text}* below lists them."
    return f"… and {more} more: a workspace admin can export the full list as a CSV file."


def _titled(what: str, report: object, when: str = "") -> str:
    """`Funnel · Maple Street Vet (demo data) · the 30 days to ...`: whose numbers in
    every header (a workspace known only by its Slack id shows none)."""
    return " · ".join(part for part in (what, owner(report, ids=False), when) if part)


def insight_blocks(insight: Insight | None) -> list[Block]:
    if insight is None:
        return []
    return [
        section(f":bulb: *Insight:* {insight_sentence(insight)}"),
        *_playbook_blocks(insight.playbook),
    ]


def funnel_message(
    report: FunnelReport,
    period_word: str | None = None,
    view: str = "",
    shared: bool = False,
    insight: Insight | None = None,
    *,
    exports: bool = False,
) -> Message:
    title = _titled("Funnel", report, period(report.period))
    if report.channel_filter:
        title += f" · {report.channel_filter}"
    if report.entered == 0:
        text = (
            f"No customers entered the journey from {period(report.period)} "
            f"({report.previous_entered} in the previous period). Try a longer period: `/journey funnel 90d`."
        )
        return Message(text, [header(title), section(text)])
    purchase = next((s for s in report.stages if s.stage == report.purchase_stage), None)
    change = report.entered - report.previous_entered
    summary = f"*{report.entered}* customers entered the journey ({change:+d} against {versus(report.period)})"
    if purchase is not None:
        summary += (
            f"; *{purchase.reached}* reached {purchase.stage} ({pct(purchase.overall.value)})"
        )
    summary += f".\n_{FUNNEL_MEANING}_"
    rows = [
        [
            s.stage,
            str(s.reached),
            rate(s.step, interval=False) if s.step else "",
            rate(s.overall, interval=False),
            hours(s.median_hours_from_previous) if i else "",
        ]
        for i, s in enumerate(report.stages)
    ]
    if joined := people_sentence(report.people):
        summary += "\n" + joined
    blocks: list[Block] = [
        header(title),
        section(summary),
        code(table(["stage", "customers", "step", "overall", "median time"], rows)),
    ]
    notes = []
    if note := inferred_note(report):
        notes.append(note)
    if report.biggest_drop is not None:
        d = report.biggest_drop
        blocks.append(
            section(
                f":small_red_triangle_down: *Biggest drop-off:* {d.from_stage} → {d.to_stage}: "
                f"{pct(d.current.value)} continue, {d.current.denominator - d.current.numerator} lost."
            )
        )
    if view == "compare":
        rows = [
            [
                f"{c.from_stage} → {c.to_stage}",
                rate(c.current, interval=False),
                rate(c.previous, interval=False),
                points(c.delta_points) + (" *" if c.significant else ""),
            ]
            for c in report.changes
        ]
        blocks += [
            section(f"*Against the previous period* ({period(report.previous_period)}):"),
            code(table(["step", "now", "before", "change"], rows)),
        ]
        notes.append("* = change unlikely to be noise (two-proportion test, p < 0.05)")
    if view == "by_channel" and report.channels:
        goal = report.purchase_stage or report.stages[-1].stage
        rows = [
            [c.channel, str(c.entered), rate(c.overall, interval=False)] for c in report.channels
        ]
        blocks += [
            section(f"*By acquisition channel* (conversion to {goal}):"),
            code(table(["channel", "entered", "conversion (95% interval)"], rows)),
        ]
    blocks += insight_blocks(insight or report.insight)
    if notes:
        blocks.append(context(*notes))
    text = f"Funnel {period(report.period)}: {count(report.entered, 'customer')} entered" + (
        f", {purchase.reached} reached {purchase.stage} ({pct(purchase.overall.value)})."
        if purchase
        else "."
    )
    return Message(
        text, blocks, _report_buttons("funnel", period_word, report.channel_filter, shared, exports)
    )


def retention_message(
    report: RetentionReport,
    kind: str = "retention",
    period_word: str | None = None,
    shared: bool = False,
    *,
    exports: bool = False,
) -> Message:
    c = report.currency
    before = versus(report.period)
    against = (
        f"{relative_change(report.returning, report.previous_returning)} against {before}"
        if report.previous_returning
        else f"none in {before}"
    )
    summary = (
        f"*Repeat rate:* {pct(report.repeat_rate.value)} of {report.repeat_rate.denominator} buyers\n"
        f"*Returning customers:* {report.returning} ({against})\n"
        f"*Churn in the period:* {pct(report.churn.value)} of {report.churn.denominator} active customers lapsed\n"
        f"*Overdue now:* {count(report.at_risk_count, 'customer')}, {money(report.value_at_risk_cents, c)} of purchases a year\n"
        f"_{REPEAT_RATE_MEANING}_"
    )
    title = _titled("Churn" if kind == "churn" else "Retention", report, period(report.period))
    blocks: list[Block] = [header(title), section(summary)]
    if kind != "churn" and report.cohorts:
        shown = min(6, max(len(r.retained) for r in report.cohorts))
        rows = [[r.month, str(r.customers), *cohort_cells(r, shown)] for r in report.cohorts]
        blocks += [
            section(
                "*Cohort retention* (share of each first-purchase month buying again in month +k):"
            ),
            code(table(["cohort", "buyers", *(f"+{k}" for k in range(1, shown + 1))], rows)),
        ]
        if note := month_so_far_note(report):
            blocks.append(context(note))
    if report.at_risk:
        rows = [
            [
                customer_label(a),
                day(a.last_purchase),
                f"{a.usual_gap_days:.0f}d" + ("*" if a.gap_is_typical else ""),
                money(a.value_at_risk_cents, c),
            ]
            for a in report.at_risk[:LIST_ROWS]
        ]
        blocks += [
            section("*Most valuable overdue customers:*"),
            code(table(["customer", "last purchase", "usual gap", "a year"], rows)),
        ]
        more = report.at_risk_count - min(len(report.at_risk), LIST_ROWS)
        if more > 0:
            blocks.append(context(_more_line(more, "All overdue customers (CSV)", exports)))
    blocks.append(
        context(
            OVERDUE_MEANING.format(k=report.at_risk_factor, k2=2 * report.at_risk_factor)
            + " (* one-time buyer: the workspace's typical gap.)"
        )
    )
    text = (
        f"{title}: repeat rate {pct(report.repeat_rate.value)}, {report.returning} returning customers, "
        f"{report.at_risk_count} overdue ({money(report.value_at_risk_cents, c)} a year)."
    )
    return Message(text, blocks, _report_buttons(kind, period_word, None, shared, exports))


def churn_message(
    report: ChurnReport,
    period_word: str | None = None,
    shared: bool = False,
    *,
    exports: bool = False,
) -> Message:
    """Who is likely to have stopped buying: the model's (or the heuristic's) at-risk list."""
    c = report.currency
    as_of = report.as_of.strftime("%Y-%m-%d %H:%M UTC")
    title = _titled("Churn", report, f"as of {as_of}")
    risk = (
        f"*At risk now:* {count(report.at_risk_count, 'customer')}, "
        f"{money(report.value_at_risk_cents, c)} of expected revenue at risk"
    )
    if report.method == "bg_nbd":
        summary = (
            f"{risk}\n"
            f"*Likely lost:* {count(report.likely_lost_count, 'customer')} "
            f"(under {pct(report.lost_below, 0)} chance of still being customers)\n"
            f"*Expected active:* {report.expected_active:.0f} of {report.customers} buyers\n"
            f"*Expected purchases, next {report.horizon_days} days:* {report.expected_purchases:.0f}"
        )
    else:
        summary = f"{risk}\n*Buyers:* {report.customers} ({report.repeat_buyers} bought again)"
    blocks: list[Block] = [header(title), section(summary)]
    if report.at_risk:
        shown = report.at_risk[:LIST_ROWS]
        if report.method == "bg_nbd":
            rows = [
                [
                    customer_label(a),
                    day(a.last_purchase),
                    pct(a.p_alive, 0),
                    money(twelve_month_value(a), c),
                    money(a.value_at_risk_cents, c),
                ]
                for a in shown
            ]
            headers = ["customer", "last purchase", "still active", "12-mo value", "at risk"]
        else:
            rows = [
                [
                    customer_label(a),
                    day(a.last_purchase),
                    str(a.purchases),
                    money(a.value_at_risk_cents, c),
                ]
                for a in shown
            ]
            headers = ["customer", "last purchase", "purchases", "at risk"]
        blocks += [
            section("*Most valuable customers at risk:*"),
            code(table(headers, rows)),
        ]
        more = report.at_risk_count - len(shown)
        if more > 0:
            blocks.append(context(_more_line(more, "All customers at risk (CSV)", exports)))
    notes = [
        at_risk_meaning(
            report.method, report.lost_below, report.at_risk_below, report.at_risk_factor
        )
    ]
    if report.method == "bg_nbd":
        notes.append("Still active: the model's chance that they still buy from you.")
        notes.append(churn_value_note(report))
    else:
        notes.append(churn_method_note(report))
    blocks.append(context(*notes))
    text = (
        f"{title}: {count(report.at_risk_count, 'customer')} at risk "
        f"({money(report.value_at_risk_cents, c)})."
    )
    return Message(text, blocks, _report_buttons("churn", period_word, None, shared, exports))


def reviews_message(
    report: ReviewReport, shared: bool = False, *, exports: bool = False
) -> Message:
    c = report.currency
    lo, hi = report.window_days
    t = report.tracking
    tracking = (
        f"Review requests {period(report.period)}: {t.asked} asked, {t.answered} answered "
        f"({pct(t.conversion.value)}), {t.skipped} skipped."
    )
    blocks: list[Block] = [header(_titled("Whom to ask for a review", report))]
    if report.total_candidates == 0:
        text = (
            f"Nobody to ask right now: no purchase {lo}-{hi} days ago from a customer not asked, "
            f"refunded or reviewing in the last {report.cooldown_days} days."
        )
        return Message(text, [*blocks, section(text), context(tracking)])
    blocks.append(
        section(
            f"*{report.total_candidates}* customers bought {lo}-{hi} days ago: ask them now, "
            "while the visit is fresh (happiest first: repeat customers, then order value)."
        )
    )
    for cand in report.candidates[:LIST_ROWS]:
        who = cand.name or cand.external_id
        email = f" · {cand.email}" if cand.email else ""
        email += f" · {sources_label(cand.sources)}" if cand.sources else ""
        blocks.append(
            section(
                f"*{who}*{email}\nBought {day(cand.last_purchase)} · {count(cand.purchases, 'purchase')} · "
                f"last order {money(cand.last_order_cents, c)}"
            )
        )
        if not shared:
            # "e": the typed form in the console names the customer by email (names repeat).
            value = {"id": cand.customer_id, "n": who[:80], "e": (cand.email or "")[:120]}
            blocks.append(
                actions(
                    button("Asked", A_REVIEW_ASKED, value, style="primary"),
                    button("Skip", A_REVIEW_SKIP, value),
                    button("Details", A_PERSON_DETAILS, {"id": cand.customer_id}),
                    block_id=f"review_{cand.customer_id}",
                )
            )
    more = report.total_candidates - min(len(report.candidates), LIST_ROWS)
    if more > 0:
        blocks.append(
            context(
                f"… and {more} more. Mark these asked or skipped and run `/journey reviews` again."
            )
        )
    blocks += [DividerBlock(), context(tracking)]
    text = f"{count(report.total_candidates, 'customer')} to ask for a review. {tracking}"
    return Message(text, blocks, _report_buttons("reviews", None, None, shared, exports))


def value_message(
    report: ValueReport,
    period_word: str | None = None,
    shared: bool = False,
    *,
    exports: bool = False,
) -> Message:
    """What customers from each acquisition channel are worth: the value report's table,
    its one sentence when the intervals allow it, and what the number means."""
    c = report.currency
    title = _titled("Customer value", report, period(report.period))
    meaning = (
        f"*Value* = what a customer is expected to spend in the next {report.horizon_months} "
        f"months, discounted at {pct(report.discount_rate, 0)} a year; customers who have not "
        "bought yet count as 0."
    )
    blocks: list[Block] = [header(title), section(meaning)]
    if report.method == "models":
        blocks.append(
            section(
                f"*An average buyer is worth* {money(report.value_per_buyer_cents, c)}; "
                f"a new buyer's next purchase is expected at {money(report.mean_spend_cents, c)}."
            )
        )
    else:
        blocks.append(section(f"*Values unavailable:* {report.fallback_reason}."))
    sentence = value_sentence(report)
    if sentence:
        blocks.append(section(sentence))
    if report.channels:
        rows = [
            [
                ch.channel,
                str(ch.customers),
                rate(ch.conversion, interval=False),
                money(ch.value_per_customer_cents, c)
                if ch.value_per_customer_cents is not None
                else "-",
                (
                    f"{money(ch.value_per_customer_interval[0], c)}-"
                    f"{money(ch.value_per_customer_interval[1], c)}"
                )
                if ch.value_per_customer_interval
                else "",
            ]
            for ch in report.channels
        ]
        blocks.append(
            code(table(["channel", "customers", "bought", "value/customer", "95% range"], rows))
        )
        blocks.append(
            context(
                "95% range: where the value per customer would fall in 95 of 100 samples of "
                "customers like these. `journey report value --csv FILE` has every column."
            )
        )
    else:
        blocks.append(section("No customers entered the journey in this period."))
    text = f"{title}: " + (sentence or f"{len(report.channels)} channels valued.")
    return Message(text, blocks, _report_buttons("value", period_word, None, shared, exports))
