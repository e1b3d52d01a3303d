"""The sentences reports speak in, shared by the terminal and (later) Slack renderers."""

from __future__ import annotations

from journey.render.format import money, pct, points, relative_change
from journey.reports import (
    ChurnCustomer,
    ChurnReport,
    CohortRow,
    FunnelReport,
    Insight,
    PeopleCount,
    RetentionReport,
    ValueReport,
)


def insight_sentence(insight: Insight) -> str:
    """One sentence of what happened, in numbers."""
    if insight.reason == "returning_decline":
        # The retention report's "Returning customers", named so: every customer who
        # bought again in the period, not only those the funnel saw enter it (its
        # retention stage), so the two numbers on one screen do not read as one.
        return (
            f"Returning customers (anyone who bought again in the period) fell to "
            f"{insight.current_count}, from {insight.previous_count} in the previous period "
            f"of the same length ({relative_change(insight.current_count, insight.previous_count)}, "
            "unlikely to be noise)."
        )
    step = f"{insight.from_stage} to {insight.stage}"
    if insight.reason == "largest_decline" and insight.previous is not None:
        return (
            f"Conversion from {step} fell from {pct(insight.previous.value)} to "
            f"{pct(insight.rate.value if insight.rate else None)} ({points(insight.delta_points)}, unlikely to be noise) "
            "against the previous period."
        )
    return (
        f"Only {pct(insight.rate.value if insight.rate else None)} of customers who reached {insight.from_stage} went on to "
        f"{insight.stage} ({insight.lost} of {insight.rate.denominator if insight.rate else 0} lost): "
        "the largest drop-off in the funnel."
    )


_COUNT_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")


def inferred_note(report: FunnelReport) -> str | None:
    """Say which stage counts were inferred from a later stage, if any: in words when
    whole stages were (a shop with orders only has no record of its first stages)."""
    whole = 0
    for s in report.stages:
        if s.reached == 0 or s.inferred < s.reached:
            break
        whole += 1
    sentences = []
    if whole:
        names = ", ".join(s.stage for s in report.stages[:whole])
        which = "first stage" if whole == 1 else f"first {_COUNT_WORDS[whole]} stages"
        after = report.stages[whole].stage if whole < len(report.stages) else None
        source = "purchases" if after in (None, report.purchase_stage) else f"{after} events"
        sentences.append(
            f"The {which} ({names}) {'is' if whole == 1 else 'are'} inferred from {source}: "
            "connect a CRM or import events to measure them."
        )
    inferred = [(s.stage, s.inferred) for s in report.stages[whole:] if s.inferred]
    if inferred:
        parts = ", ".join(f"{n} at {stage}" for stage, n in inferred)
        sentences.append(
            "Customers who reached a later stage without a recorded earlier one are counted "
            f"as having passed it ({parts})."
        )
    return " ".join(sentences) or None


def value_sentence(report: ValueReport) -> str | None:
    """Which channel's customers are worth most or least, only when the intervals say so."""
    by_name = {c.channel: c for c in report.channels}
    parts = []
    if report.best_channel:
        best = by_name[report.best_channel]
        parts.append(
            f"Customers from {best.channel} are worth the most: "
            f"{money(best.value_per_customer_cents, report.currency)} each over the next "
            f"{report.horizon_months} months"
        )
    if report.worst_channel:
        worst = by_name[report.worst_channel]
        parts.append(
            f"customers from {worst.channel} the least "
            f"({money(worst.value_per_customer_cents, report.currency)} each)"
        )
    if not parts:
        return None
    return "; ".join(parts) + "."


PARTIAL_MARK = "*"


def cohort_cells(row: CohortRow, shown: int) -> list[str]:
    """A cohort's retained shares as table cells; the month under way carries a mark,
    explained by `month_so_far_note`, so its few days are not read as a collapse."""
    cells = []
    for k, cell in enumerate(row.retained[:shown]):
        text = "" if cell is None else pct(cell.value, 0)
        cells.append(text + PARTIAL_MARK if text and k == row.partial else text)
    return cells


def month_so_far_note(report: RetentionReport) -> str | None:
    if report.month_so_far is None or not any(r.partial is not None for r in report.cohorts):
        return None
    month, days, total = report.month_so_far
    return (
        f"{PARTIAL_MARK} {month} so far ({days} of {total} days): not comparable with whole "
        "months yet."
    )


# --- what each headline number means, in one plain sentence (every renderer says the same) ---

FUNNEL_MEANING = (
    "Entered: people whose first visit, sign-up or purchase fell in the period; each stage "
    "counts how many of them got that far by its end."
)
REPEAT_RATE_MEANING = (
    "Repeat rate: the share of everyone who has bought who bought on two or more different days."
)
RETURNING_MEANING = "Returning customers: people who bought again (not their first purchase day)."
OVERDUE_MEANING = (
    "Overdue: customers who have gone more than {k:g}x their usual time between purchases "
    "without buying (not yet {k2:g}x, when they count as lapsed); the amount is a year of "
    "their purchases. `/journey churn` ranks who is at risk of leaving for good."
)
AT_RISK_MODEL_MEANING = (
    "At risk: customers who bought more than once and, judged by their own buying rhythm, "
    "have a {low} to {high} chance of still being customers; value at risk: what they would "
    "spend in the next year, lost if they have gone."
)
AT_RISK_RULE_MEANING = (
    "At risk: customers who have gone more than {k:g}x their usual time between purchases "
    "without buying; value at risk: a year of their purchases."
)
REVIEWS_MEANING = (
    "Candidates: customers whose last purchase was {lo} to {hi} days ago, not asked in the "
    "last {cooldown} days, with no refund, cancellation or review since."
)
INTERVALS_MEANING = (
    "95% intervals in brackets: the range the true rate lies in 19 times out of 20, "
    "given how many customers it rests on (fewer customers, wider range)."
)
P_ALIVE_MEANING = (
    "Still active: the model's chance that the customer is still buying from you "
    "(P(alive) in the BG/NBD model)."
)
MODEL_PARAMETERS_MEANING = (
    "BG/NBD parameters: r and alpha shape how often customers buy (alpha in days), a and b "
    "how likely they are to stop after a purchase."
)


def at_risk_meaning(method: str, low: float | None, high: float | None, k: float | None) -> str:
    """The churn report's headline, in one sentence, for the way it was computed."""
    if method == "bg_nbd":
        return AT_RISK_MODEL_MEANING.format(low=pct(low, 0), high=pct(high, 0))
    return AT_RISK_RULE_MEANING.format(k=k if k is not None else 2)


def definitions(report: object) -> dict[str, str]:
    """What the numbers of a report mean, for --json readers (the same sentences)."""
    name = type(report).__name__
    if name == "FunnelReport":
        return {"entered": FUNNEL_MEANING, "intervals": INTERVALS_MEANING}
    if name == "RetentionReport":
        k = getattr(report, "at_risk_factor", 2.0)
        return {
            "repeat_rate": REPEAT_RATE_MEANING,
            "returning": RETURNING_MEANING,
            "at_risk_count": OVERDUE_MEANING.format(k=k, k2=2 * k),
            "intervals": INTERVALS_MEANING,
        }
    if name == "ChurnReport":
        out = {
            "at_risk_count": at_risk_meaning(
                getattr(report, "method", "heuristic"),
                getattr(report, "lost_below", None),
                getattr(report, "at_risk_below", None),
                getattr(report, "at_risk_factor", None),
            )
        }
        if getattr(report, "method", "") == "bg_nbd":
            out["p_alive"] = P_ALIVE_MEANING
            out["r, alpha, a, b"] = MODEL_PARAMETERS_MEANING
        return out
    if name == "ReviewReport":
        lo, hi = getattr(report, "window_days", (3, 14))
        return {
            "total_candidates": REVIEWS_MEANING.format(
                lo=lo, hi=hi, cooldown=getattr(report, "cooldown_days", 90)
            )
        }
    return {}


def twelve_month_value(customer: ChurnCustomer) -> int | None:
    """The churn list's "12-mo value": the value report's number (modelled spend,
    discounted) when the spend model fitted, else the churn model's expected revenue over
    a year at the customer's average order; `churn_value_note` says which."""
    if customer.value_12m_cents is not None:
        return customer.value_12m_cents
    return customer.expected_value_cents


def churn_value_note(report: ChurnReport) -> str:
    if report.value_12m_reason is None:
        rate = pct(report.discount_rate or 0.0, 0)
        return (
            "12-mo value: what the customer is expected to spend in the next 12 months "
            f"(expected purchases x expected spend, discounted at {rate} a year), as in "
            "/journey value."
        )
    return (
        "12-mo value: the expected purchases of the next 12 months at the customer's average "
        f"order (the spend model was not used: {report.value_12m_reason})."
    )


def people_sentence(people: PeopleCount | None) -> str | None:
    """'1,412 records from 3 sources are 1,030 people', when records were joined or several
    sources feed the workspace, so a reader knows the counts are people, not records."""
    if people is None or (people.sources < 2 and people.records == people.people):
        return None
    sources = "1 source" if people.sources == 1 else f"{people.sources:,} sources"
    return (
        f"{people.records:,} records from {sources} are {people.people:,} people "
        "(joined by email: journey people show EMAIL says why)."
    )
