"""The churn report: the BG/NBD model fitted per workspace, or the heuristic when it cannot be.

As of the report's as-of time (the period's end, or now if that is earlier):

1. One read of `customer_journey` gives each buyer's summary (journey/metrics/
   buyers.py): first and last purchase, purchase days, net revenue. A customer
   who also bought on or after the as-of time (a past `--until`) is recounted
   from their purchase events before it, so the model never sees the future.
2. Day resolution, in UTC days like the journey state: each purchase is placed
   at the start of its day, so x = purchase days - 1, recency t_x = last - first
   purchase day, and age T = as-of day - first purchase day, in whole days. The
   as-of day is the day of the last instant counted (the `--until` date itself),
   so T is a difference of dates as in Fader, Hardie & Lee (2005) and lifetimes'
   `summary_data_from_transaction_data`: measuring to the end of that day instead
   made every T one day longer and moved CDNOW's fit off the paper's (r 0.2417
   against 0.2426, a 0.8145 against 0.7929).
3. `fit_bg_nbd` fits r, alpha, a, b; `score` gives every buyer P(alive) and the
   expected purchases in the next 90 days (`HORIZON_DAYS`).
4. At risk: repeat buyers with `LOST_BELOW` <= P(alive) < `AT_RISK_BELOW`
   (more likely gone than not, but not yet written off). Below `LOST_BELOW`
   they are counted as likely lost and left out of the list and the value at
   risk: a win-back list full of customers gone for years is noise. One-time
   buyers are never at risk under BG/NBD (it lets customers stop only after a
   repeat purchase); their expected purchases fall with silence instead.
5. Value at risk of a customer = (1 - P(alive)) x E[purchases in the next 365
   days | still active] x their average order (net revenue / purchase days).
   That is the value they would bring were they surely still a customer, minus
   the value the model expects from them: the expected revenue lost to churn,
   which a win-back that works would recover. The report's value at risk is the
   sum over the customers at risk.

When the model refuses (too few buyers or repeat buyers, or no convergence) the
report carries the retention heuristic's at-risk list and value instead, with
method "heuristic" and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import bindparam, text
from sqlmodel import Session

from journey.metrics.buyers import BuyerSummary, SharedFits, read_summary
from journey.metrics.churn_model import (
    TIME_UNIT,
    BgNbdParams,
    FitRefused,
    Histories,
    score,
)
from journey.metrics.clv import discounted_purchases
from journey.metrics.gamma_gamma import GammaGammaFit, expected_spend
from journey.metrics.retention import retention_report
from journey.models.types import from_epoch, to_epoch
from journey.periods import Period
from journey.reports import AtRiskCustomer, ChurnCustomer, ChurnReport
from journey.workspaces import get_workspace

DAY = 86400
AT_RISK_BELOW = 0.5
LOST_BELOW = 0.1
HORIZON_DAYS = 90
VALUE_DAYS = 365
AT_RISK_LIST = 25

# The buyer summary is read in journey/metrics/buyers.py (one read for the churn and the
# value report); these names stay importable from here.
__all__ = ["BuyerSummary", "SharedFits", "read_summary"]


def at_risk_mask(alive: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.bool_]:
    """The at-risk rule (point 4 above), one place for the report and the digest."""
    return (x > 0) & (alive < AT_RISK_BELOW) & (alive >= LOST_BELOW)


@dataclass(frozen=True)
class ChurnScores:
    """Every buyer's scores under one set of parameters, as numpy columns.

    Kept whole (not only the listed top) so a caller can ask other questions of the
    same numbers, such as the digest's "who crossed into at risk this period",
    without refitting or restating the rule and the value formula.
    """

    summary: BuyerSummary
    alive: NDArray[np.float64]
    expected_purchases: NDArray[np.float64]  # in the next HORIZON_DAYS
    expected_value: NDArray[np.float64]  # cents, in the next VALUE_DAYS
    value_at_risk: NDArray[np.float64]  # cents (point 5 above)
    at_risk: NDArray[np.bool_]
    lost: NDArray[np.bool_]

    def ranked(self, index: NDArray[np.intp]) -> NDArray[np.intp]:
        """These buyers, most value at risk first; ties by customer id so lists are stable."""
        ids = self.summary.customer_id[index]
        return index[np.lexsort((ids, -self.value_at_risk[index]))]


def score_buyers(
    params: BgNbdParams, summary: BuyerSummary, histories: Histories | None = None
) -> ChurnScores:
    """P(alive), expected purchases and value at risk of every buyer in the summary."""
    scores = score(
        params,
        summary.x,
        summary.t_x,
        summary.T,
        horizon_days=HORIZON_DAYS,
        value_days=VALUE_DAYS,
        histories=histories,
    )
    order_value = np.where(
        summary.revenue_cents > 0,
        summary.revenue_cents / np.maximum(summary.purchase_days, 1),
        0.0,
    )
    alive = scores.p_alive
    return ChurnScores(
        summary=summary,
        alive=alive,
        expected_purchases=scores.expected_purchases,
        expected_value=scores.expected_purchases_value * order_value,
        value_at_risk=(1.0 - alive) * scores.expected_purchases_if_alive * order_value,
        at_risk=at_risk_mask(alive, summary.x),
        lost=(summary.x > 0) & (alive < LOST_BELOW),
    )


def heuristic_row(c: AtRiskCustomer) -> ChurnCustomer:
    """A customer the retention heuristic puts at risk, as a churn report row (the model's
    columns empty): the churn report and the digest fall back to the same rows."""
    return ChurnCustomer(
        customer_id=c.customer_id,
        external_id=c.external_id,
        name=c.name,
        email=c.email,
        last_purchase=c.last_purchase,
        days_since_purchase=c.days_since_purchase,
        purchases=c.purchases,
        revenue_cents=c.revenue_cents,
        value_at_risk_cents=c.value_at_risk_cents,
    )


def churn_customers(
    session: Session,
    workspace_id: str,
    scored: ChurnScores,
    index: NDArray[np.intp],
    as_of: int,
    values: NDArray[np.float64] | None = None,
) -> list[ChurnCustomer]:
    """The listed buyers as report rows (names and emails read for these only); `values`,
    aligned with `index`, their 12-month value in cents when the spend model fitted."""
    summary = scored.summary
    ids = [int(summary.customer_id[i]) for i in index]
    people = _people(session, workspace_id, ids)
    rows = []
    for n, (i, cid) in enumerate(zip(index, ids, strict=True)):
        external_id, name, email = people.get(cid, (str(cid), None, None))
        rows.append(
            ChurnCustomer(
                customer_id=cid,
                external_id=external_id,
                name=name,
                email=email,
                last_purchase=from_epoch(int(summary.last_at[i])),
                days_since_purchase=(as_of - int(summary.last_at[i])) / DAY,
                purchases=int(summary.purchase_days[i]),
                revenue_cents=int(summary.revenue_cents[i]),
                value_at_risk_cents=round(float(scored.value_at_risk[i])),
                p_alive=float(scored.alive[i]),
                expected_purchases=float(scored.expected_purchases[i]),
                expected_value_cents=round(float(scored.expected_value[i])),
                value_12m_cents=None if values is None else round(float(values[n])),
            )
        )
    return rows


def churn_report(
    session: Session,
    workspace_id: str,
    period: Period,
    limit: int = AT_RISK_LIST,
    now: datetime | None = None,
    fits: SharedFits | None = None,
) -> ChurnReport:
    """The churn report as of the period's end or now, whichever is earlier. `fits` shares
    the buyer summary and the fits with the request's other reports (the overview's value
    report) instead of reading and fitting again."""
    workspace = get_workspace(session, workspace_id)
    as_of = min(to_epoch(period.end), to_epoch(now or datetime.now(UTC)))
    fits = fits or SharedFits()
    summary = fits.summary(session, workspace_id, as_of)
    histories = fits.histories(session, workspace_id, as_of)
    try:
        fit = fits.bg_nbd(session, workspace_id, as_of)
    except FitRefused as refused:
        return _heuristic(session, workspace_id, period, limit, now, summary, refused.reason)

    scored = score_buyers(fit.params, summary, histories)
    risk_index = np.flatnonzero(scored.at_risk)
    top = scored.ranked(risk_index)[:limit]
    try:
        spend = fits.gamma_gamma(session, workspace_id, as_of)
    except FitRefused as refused:
        values, spend_reason = None, refused.reason
    else:
        values = twelve_month_values(fit.params, summary, top, workspace.discount_rate, spend)
        spend_reason = None
    customers = churn_customers(session, workspace_id, scored, top, as_of, values)
    p = fit.params
    return ChurnReport(
        workspace_id=workspace_id,
        period=period,
        as_of=from_epoch(as_of),
        currency=workspace.currency,
        method="bg_nbd",
        fallback_reason=None,
        time_unit=TIME_UNIT,
        r=p.r,
        alpha=p.alpha,
        a=p.a,
        b=p.b,
        log_likelihood=fit.log_likelihood,
        customers=summary.size,
        repeat_buyers=int(np.count_nonzero(summary.x > 0)),
        at_risk_count=int(risk_index.size),
        value_at_risk_cents=round(float(scored.value_at_risk[risk_index].sum())),
        likely_lost_count=int(np.count_nonzero(scored.lost)),
        expected_active=float(scored.alive.sum()),
        expected_purchases=float(scored.expected_purchases.sum()),
        at_risk=customers,
        at_risk_below=AT_RISK_BELOW,
        lost_below=LOST_BELOW,
        horizon_days=HORIZON_DAYS,
        value_days=VALUE_DAYS,
        generated_at=datetime.now(UTC),
        discount_rate=workspace.discount_rate,
        value_12m_reason=spend_reason,
    )


def twelve_month_values(
    params: BgNbdParams,
    summary: BuyerSummary,
    index: NDArray[np.intp],
    discount_rate: float,
    spend: GammaGammaFit,
) -> NDArray[np.float64]:
    """The listed buyers' 12-month value in cents (journey/metrics/clv.py, the value report's
    number), from the workspace's spend model fit."""
    m = summary.repeat_spend()
    x, t_x, T = summary.x[index], summary.t_x[index], summary.T[index]
    each = expected_spend(spend.params, x, m[index])
    return discounted_purchases(params, x, t_x, T, discount_rate) * each * 100


def _people(
    session: Session, workspace_id: str, ids: list[int]
) -> dict[int, tuple[str, str | None, str | None]]:
    """External id, name and email of the listed customers (one query for the page shown)."""
    if not ids:
        return {}
    rows = session.execute(
        text(
            "SELECT id, external_id, name, email FROM customer "
            "WHERE workspace_id = :ws AND id IN :ids"
        ).bindparams(bindparam("ids", expanding=True)),
        {"ws": workspace_id, "ids": ids},
    ).all()
    return {int(r[0]): (r[1], r[2], r[3]) for r in rows}


def _heuristic(
    session: Session,
    workspace_id: str,
    period: Period,
    limit: int,
    now: datetime | None,
    summary: BuyerSummary,
    reason: str,
) -> ChurnReport:
    """The retention report's documented at-risk rule, in the churn report's shape."""
    retention = retention_report(session, workspace_id, period, limit=limit, now=now)
    as_of = min(to_epoch(period.end), to_epoch(now or datetime.now(UTC)))
    return ChurnReport(
        workspace_id=workspace_id,
        period=period,
        as_of=from_epoch(as_of),
        currency=retention.currency,
        method="heuristic",
        fallback_reason=reason,
        time_unit=TIME_UNIT,
        r=None,
        alpha=None,
        a=None,
        b=None,
        log_likelihood=None,
        customers=summary.size,
        repeat_buyers=int(np.count_nonzero(summary.x > 0)),
        at_risk_count=retention.at_risk_count,
        value_at_risk_cents=retention.value_at_risk_cents,
        likely_lost_count=None,
        expected_active=None,
        expected_purchases=None,
        at_risk=[heuristic_row(c) for c in retention.at_risk],
        at_risk_below=None,
        lost_below=None,
        at_risk_factor=retention.at_risk_factor,
        generated_at=datetime.now(UTC),
    )
