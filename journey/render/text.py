"""Report objects as plain terminal text: aligned columns, numbers searchable as text."""

from __future__ import annotations

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
    versus,
)
from journey.render.sentences import (
    FUNNEL_MEANING,
    INTERVALS_MEANING,
    MODEL_PARAMETERS_MEANING,
    OVERDUE_MEANING,
    P_ALIVE_MEANING,
    REPEAT_RATE_MEANING,
    REVIEWS_MEANING,
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
from journey.reports import (
    ChurnReport,
    FunnelReport,
    Insight,
    RetentionReport,
    ReviewReport,
    ValueReport,
)
from journey.sync import SyncResult

# How an overview says where its at-risk count comes from, by ChurnReport.method.
AT_RISK_SOURCE = {"bg_nbd": "churn model", "heuristic": "longer than usual without a purchase"}


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _playbook(playbook: Playbook | None) -> list[str]:
    if playbook is None:
        return []
    return [
        f"Playbook for {playbook.stage}: {playbook.goal}",
        *(f"  - {a}" for a in playbook.actions),
    ]


def render_funnel_text(report: FunnelReport, details: bool = False) -> str:
    """The funnel; `details` adds each rate's 95% interval and what it means."""
    title = f"Funnel for {owner(report)}, {period(report.period)}"
    if report.channel_filter:
        title += f", channel {report.channel_filter}"
    out = [title, ""]
    if report.entered == 0:
        out.append(
            "No customers entered the journey in this period "
            f"({report.previous_entered} in the previous one). Try a longer period, e.g. 90d."
        )
        return "\n".join(out)
    change = report.entered - report.previous_entered
    out.append(
        f"{count(report.entered, 'customer')} entered the journey "
        f"({change:+d} against {versus(report.period)})."
    )
    if joined := people_sentence(report.people):
        out.append(joined)
    out += [FUNNEL_MEANING, ""]
    rows = []
    for i, step in enumerate(report.stages):
        delta = report.changes[i - 1] if i > 0 else None
        rows.append(
            [
                step.stage,
                str(step.reached),
                rate(step.step, interval=details) if step.step else "",
                rate(step.overall, interval=details),
                hours(step.median_hours_from_previous) if i > 0 else "",
                ""
                if delta is None
                else points(delta.delta_points) + (" *" if delta.significant else ""),
            ]
        )
    out += table(
        ["stage", "customers", "step conversion", "overall", "median time", "vs prev"], rows
    )
    out.append("(* = change unlikely to be noise, p < 0.05)")
    if details:
        out.append(f"({INTERVALS_MEANING})")
    if report.median_sample_every > 1:
        out.append(
            f"(median times from a 1-in-{report.median_sample_every} sample of this large cohort)"
        )
    if note := inferred_note(report):
        out += ["", note]
    if report.biggest_drop is not None:
        d = report.biggest_drop
        out += [
            "",
            f"Biggest drop-off: {d.from_stage} -> {d.to_stage}, {pct(d.current.value)} continue "
            f"({d.current.denominator - d.current.numerator} lost).",
        ]
    if report.channels:
        goal = report.purchase_stage or report.stages[-1].stage
        out += ["", f"By acquisition channel (conversion to {goal}):"]
        rows = [
            [c.channel, str(c.entered), rate(c.overall, interval=details)] for c in report.channels
        ]
        out += table(["channel", "entered", "conversion"], rows)
    if report.insight is not None:
        out += [
            "",
            "Insight: " + insight_sentence(report.insight),
            *_playbook(report.insight.playbook),
        ]
    return "\n".join(out)


def render_retention_text(report: RetentionReport, details: bool = False) -> str:
    """Repeat buying and who is overdue; `details` adds the 95% intervals."""
    c = report.currency
    out = [f"Retention for {owner(report)}, {period(report.period)}", ""]
    out.append(
        f"Repeat rate: {rate(report.repeat_rate, interval=details)} of the "
        f"{report.repeat_rate.denominator} buyers "
        f"(at the period start: {pct(report.previous_repeat_rate.value)})."
    )
    out.append(REPEAT_RATE_MEANING)
    before = versus(report.period)
    if report.previous_returning:
        against = f"{relative_change(report.returning, report.previous_returning)} against {before}"
    else:
        against = f"none in {before}"
    out.append(f"Returning customers: {report.returning} bought again in the period ({against}).")
    out.append(
        f"Churn in the period: {rate(report.churn, interval=details)} of {report.churn.denominator} active "
        "customers lapsed."
    )
    gap = "n/a" if report.typical_gap_days is None else f"{report.typical_gap_days:.0f} days"
    out.append(
        f"Overdue now: {count(report.at_risk_count, 'customer')}, {money(report.value_at_risk_cents, c)} "
        f"of purchases a year (typical gap between purchases: {gap})."
    )
    if report.cohorts:
        months = max(len(r.retained) for r in report.cohorts)
        shown = min(months, 6)
        out += [
            "",
            "Cohort retention (share of each first-purchase month buying again in month +k):",
        ]
        rows = [[r.month, str(r.customers), *cohort_cells(r, shown)] for r in report.cohorts]
        out += table(["cohort", "buyers", *(f"+{k}" for k in range(1, shown + 1))], rows)
        if note := month_so_far_note(report):
            out.append(note)
    if report.at_risk:
        out += ["", f"Most valuable overdue customers (top {len(report.at_risk)}):"]
        rows = [
            [
                customer_label(a),
                day(a.last_purchase),
                f"{a.days_since_purchase:.0f}",
                f"{a.usual_gap_days:.0f}" + ("*" if a.gap_is_typical else ""),
                str(a.purchases),
                money(a.value_at_risk_cents, c),
            ]
            for a in report.at_risk
        ]
        out += table(
            ["customer", "last purchase", "days ago", "usual gap", "purchases", "a year"], rows
        )
        out.append("(* one-time buyer: the workspace's typical gap is used)")
    k = report.at_risk_factor
    out += [
        "",
        OVERDUE_MEANING.format(k=k, k2=2 * k).replace("`/journey churn`", "`journey report churn`"),
    ]
    if details:
        out.append(f"({INTERVALS_MEANING})")
    return "\n".join(out)


def churn_method_note(report: ChurnReport) -> str:
    """How the churn report decided who is at risk, in one or two sentences (text and Slack)."""
    if report.method == "bg_nbd":
        return (
            f"BG/NBD model fitted on {report.customers} buyers ({report.repeat_buyers} repeat): "
            f"r={report.r:.4g}, alpha={report.alpha:.4g} {report.time_unit}, a={report.a:.4g}, "
            f"b={report.b:.4g}. At risk = repeat buyers with P(alive) from "
            f"{pct(report.lost_below, 0)} to under {pct(report.at_risk_below, 0)} (below: likely lost); "
            f"value at risk = (1 - P(alive)) x {report.value_days} days of purchases were they still "
            "active x their average order."
        )
    k = report.at_risk_factor if report.at_risk_factor is not None else 2
    return (
        f"The churn model was not used: {report.fallback_reason}. At risk = no purchase for more "
        f"than {k:g}x the customer's usual gap (lapsed beyond {2 * k:g}x), the documented heuristic."
    )


def render_churn_text(report: ChurnReport, details: bool = False) -> str:
    """Who is at risk of leaving; `details` adds how the model was fitted (parameters)."""
    c = report.currency
    as_of = report.as_of.strftime("%Y-%m-%d %H:%M UTC")
    out = [f"Churn for {owner(report)}, as of {as_of}", ""]
    headline = (
        f"At risk now: {count(report.at_risk_count, 'customer')}, {money(report.value_at_risk_cents, c)} "
        "of expected revenue at risk"
    )
    if report.method == "bg_nbd":
        headline += (
            f"; {report.likely_lost_count} more are likely lost "
            f"(under {pct(report.lost_below, 0)} chance of still being customers)."
        )
        out += [
            headline,
            f"Expected active customers: {report.expected_active:.0f} of {report.customers} buyers; "
            f"expected purchases in the next {report.horizon_days} days: "
            f"{report.expected_purchases:.0f}.",
        ]
    else:
        out.append(headline + ".")
    out.append(
        at_risk_meaning(
            report.method, report.lost_below, report.at_risk_below, report.at_risk_factor
        )
    )
    if report.at_risk:
        out += ["", f"Most valuable customers at risk (top {len(report.at_risk)}):"]
        if report.method == "bg_nbd":
            rows = [
                [
                    customer_label(a),
                    day(a.last_purchase),
                    f"{a.days_since_purchase:.0f}",
                    str(a.purchases),
                    pct(a.p_alive, 0),
                    f"{a.expected_purchases or 0:.2f}",
                    money(twelve_month_value(a), c),
                    money(a.value_at_risk_cents, c),
                ]
                for a in report.at_risk
            ]
            out += table(
                [
                    "customer",
                    "last purchase",
                    "days ago",
                    "purchases",
                    "still active",
                    f"next {report.horizon_days}d",
                    "12-mo value",
                    "at risk",
                ],
                rows,
            )
        else:
            rows = [
                [
                    customer_label(a),
                    day(a.last_purchase),
                    f"{a.days_since_purchase:.0f}",
                    str(a.purchases),
                    money(a.value_at_risk_cents, c),
                ]
                for a in report.at_risk
            ]
            out += table(["customer", "last purchase", "days ago", "purchases", "at risk"], rows)
        if report.at_risk_count > len(report.at_risk):
            out.append(f"... and {report.at_risk_count - len(report.at_risk)} more (--limit N).")
        if report.method == "bg_nbd":
            out.append(f"(next {report.horizon_days}d: expected purchases)")
            out.append(churn_value_note(report))
    if report.method == "bg_nbd":
        out.append(P_ALIVE_MEANING)
    if details or report.method != "bg_nbd":
        out += ["", churn_method_note(report)]
    if details and report.method == "bg_nbd":
        out.append(MODEL_PARAMETERS_MEANING)
    return "\n".join(out)


def render_review_text(report: ReviewReport) -> str:
    c = report.currency
    lo, hi = report.window_days
    out = [f"Review candidates for {owner(report)}", ""]
    if report.total_candidates == 0:
        out.append(
            f"Nobody to ask right now: no purchase {lo}-{hi} days ago from a customer not asked, "
            f"refunded or reviewing in the last {report.cooldown_days} days."
        )
    else:
        out.append(
            f"{count(report.total_candidates, 'customer')} bought {lo}-{hi} days ago and can be asked "
            "for a review (happiest first: repeat customers, then order value):"
        )
        out.append(REVIEWS_MEANING.format(lo=lo, hi=hi, cooldown=report.cooldown_days))
        rows = [
            [
                customer_label(x),
                x.email or "",
                day(x.last_purchase),
                str(x.purchases),
                money(x.last_order_cents, c),
            ]
            for x in report.candidates
        ]
        out += table(["customer", "email", "purchased", "purchases", "last order"], rows)
        if report.total_candidates > len(report.candidates):
            out.append(
                f"... and {report.total_candidates - len(report.candidates)} more (--limit N)."
            )
    t = report.tracking
    out += [
        "",
        f"Review requests {period(report.period)}: {t.asked} asked, {t.answered} answered "
        f"({rate(t.conversion)}), {t.skipped} skipped.",
    ]
    return "\n".join(out)


def render_insight_text(insight: Insight | None) -> str:
    if insight is None:
        return "No insight yet: no customers entered the journey in this period."
    return "\n".join(["Insight: " + insight_sentence(insight), *_playbook(insight.playbook)])


def render_overview_text(
    funnel: FunnelReport,
    retention: RetentionReport,
    reviews: ReviewReport,
    insight: Insight | None,
    churn: ChurnReport,
) -> str:
    """The short overview `journey demo` and `journey start` print: one screen, the headlines."""
    c = retention.currency
    purchase = next((s for s in funnel.stages if s.stage == funnel.purchase_stage), None)
    out = [f"journey overview for {owner(funnel)}, {period(funnel.period)}", ""]
    line = f"- Funnel: {funnel.entered} new customers"
    if purchase is not None:
        line += f", {purchase.reached} bought ({pct(purchase.overall.value)})"
    out.append(line + ".")
    if funnel.biggest_drop is not None:
        d = funnel.biggest_drop
        out.append(
            f"- Biggest drop-off: {d.from_stage} -> {d.to_stage} ({pct(d.current.value)} continue)."
        )
    out.append(
        f"- Repeat rate: {pct(retention.repeat_rate.value)} of buyers bought on two or more days; "
        f"{retention.returning} returning customers ({retention.previous_returning} the period before)."
    )
    out.append(
        f"- At risk: {count(churn.at_risk_count, 'customer')}, {money(churn.value_at_risk_cents, c)} "
        f"of expected revenue ({AT_RISK_SOURCE[churn.method]}; `journey report churn` lists them)."
    )
    out.append(f"- Reviews: {count(reviews.total_candidates, 'customer')} to ask now.")
    if insight is not None:
        out += ["", render_insight_text(insight)]
    return "\n".join(out)


def sync_summary(label: str, result: SyncResult) -> str:
    """One line per source after a sync, for the CLI and the console: what arrived, or
    why nothing did, in words."""
    if result.skipped and result.paused:
        return f"{label}: skipped, paused ({result.error or 'its key was refused'})."
    if result.skipped:
        return f"{label}: skipped: {result.error}"
    if not result.ok:
        done = f" ({result.fetched} records read before it stopped)" if result.fetched else ""
        return f"{label}: failed{done}: {result.error}"
    return (
        f"{label}: {result.fetched} records read; {result.inserted} new, "
        f"{result.updated} changed, {result.unchanged} unchanged."
    )


def render_value_text(report: ValueReport) -> str:
    c = report.currency
    as_of = report.as_of.strftime("%Y-%m-%d")
    out = [f"Customer value for {owner(report)}, {period(report.period)} (as of {as_of})", ""]
    out.append(
        f"Value = what a customer is expected to spend in the next {report.horizon_months} "
        f"months, discounted at {pct(report.discount_rate, 0)} a year; customers who have "
        "not bought yet count as 0."
    )
    if report.method == "models":
        out.append(
            f"An average buyer is worth {money(report.value_per_buyer_cents, c)}; a new "
            f"buyer's next purchase is expected at {money(report.mean_spend_cents, c)}."
        )
    else:
        out.append(f"Values unavailable: {report.fallback_reason}.")
    if not report.channels:
        out += ["", "No customers entered the journey in this period."]
        return "\n".join(out)
    sentence = value_sentence(report)
    if sentence:
        out += ["", sentence]
    elif report.method == "models":
        out += ["", "No channel's customers are clearly worth more or less than the others' yet."]

    def interval(pair: tuple[int, int] | None) -> str:
        return f"{money(pair[0], c)}-{money(pair[1], c)}" if pair else ""

    rows = [
        [
            ch.channel,
            str(ch.customers),
            str(ch.buyers),
            rate(ch.conversion, interval=False),
            money(ch.revenue_cents, c),
            money(ch.value_per_customer_cents, c)
            if ch.value_per_customer_cents is not None
            else "-",
            interval(ch.value_per_customer_interval),
            money(ch.value_per_buyer_cents, c) if ch.value_per_buyer_cents is not None else "-",
        ]
        for ch in report.channels
    ]
    out += [
        "",
        *table(
            [
                "channel",
                "customers",
                "buyers",
                "bought",
                "revenue so far",
                "value/customer",
                "95% range",
                "value/buyer",
            ],
            rows,
        ),
    ]
    out += [
        "",
        "95% range: where the value per customer would fall in 95 of 100 samples of "
        "customers like these (bootstrap).",
    ]
    return "\n".join(out)
