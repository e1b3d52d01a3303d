"""What a customer and an acquisition channel are worth: the value report.

Why this shape: the funnel says which channel converts, not which brings customers who
stay and spend. A buyer's value is their expected spend over the next 12 months
(journey/metrics/clv.py: BG/NBD purchases, the same fitted model as the churn report, times
Gamma-Gamma spend, discounted at the workspace's yearly rate). Customers who have not
bought are worth 0 here: the
models describe buyers only, so a channel's value per acquired customer carries its
conversion.

Per channel (customers who entered the journey in the period, top five channels by
customers plus "other"), the means come with 95% percentile bootstrap intervals over the
channel's customers, with a fixed seed so the same data give the same report. A channel is
named best (worst) only when its interval lies wholly above (below) every other named
channel's: a sentence on noise is worse than none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text
from sqlmodel import Session

from journey.metrics.churn import BuyerSummary, read_summary
from journey.metrics.churn_model import BgNbdFit, FitRefused, check_histories, fit_bg_nbd
from journey.metrics.clv import HORIZON_MONTHS, discounted_purchases
from journey.metrics.gamma_gamma import GammaGammaFit, expected_spend, fit_gamma_gamma
from journey.models.types import from_epoch, to_epoch
from journey.periods import Period
from journey.reports import ChannelValue, ValueReport
from journey.stats import wilson
from journey.workspaces import get_workspace

Array = NDArray[np.float64]

TOP_CHANNELS = 5
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 20050415
# A channel with fewer customers than this is never called best or worst.
MIN_CHANNEL_CUSTOMERS = 30
# Resampling draws one index per customer and sample; past this many draws per channel
# the samples are cut (never below MIN_BOOTSTRAP) so a million-customer channel stays
# within the report's time budget. At that size the interval is narrow either way.
MAX_BOOTSTRAP_DRAWS = 40_000_000
MIN_BOOTSTRAP = 200


@dataclass(frozen=True)
class ValueModel:
    """Both fitted models and every buyer's 12-month value, aligned with `summary`."""

    summary: BuyerSummary
    bg_nbd: BgNbdFit
    gamma_gamma: GammaGammaFit
    spend: Array  # expected spend per purchase, currency units
    value: Array  # discounted expected value over the horizon, currency units
    discount_rate: float


def fit_value_model(
    session: Session, workspace_id: str, as_of: int, discount_rate: float
) -> ValueModel:
    """Fit BG/NBD and Gamma-Gamma on every buyer before `as_of` and value each buyer.

    Raises FitRefused (with the reason in words) when either model refuses the data.
    """
    summary = read_summary(session, workspace_id, as_of)
    check_histories(summary.x, summary.t_x, summary.T)
    bg = fit_bg_nbd(summary.x, summary.t_x, summary.T)
    m = summary.repeat_spend()
    gg = fit_gamma_gamma(summary.x, m)
    spend = expected_spend(gg.params, summary.x, m)
    value = (
        discounted_purchases(bg.params, summary.x, summary.t_x, summary.T, discount_rate) * spend
    )
    return ValueModel(summary, bg, gg, spend, value, discount_rate)


def bootstrap_interval(
    values: Array, rng: np.random.Generator, samples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of `values`."""
    n = values.size
    if n == 0:
        return (0.0, 0.0)
    samples = max(MIN_BOOTSTRAP, min(samples, MAX_BOOTSTRAP_DRAWS // n))
    means = np.empty(samples)
    step = max(1, 5_000_000 // n)  # resample in slabs of about 5M draws
    for start in range(0, samples, step):
        stop = min(samples, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


_COHORT_SQL = """
SELECT customer_id, COALESCE(channel, ''), first_purchase_at, revenue_cents
FROM customer_journey
WHERE workspace_id = :ws AND reached_0 >= :start AND reached_0 < :end
ORDER BY customer_id
"""
_COHORT = np.dtype([("customer_id", np.int64), ("first", np.int64), ("revenue", np.int64)])


def _cohort(
    session: Session, workspace_id: str, period: Period, as_of: int
) -> tuple[NDArray[np.int64], NDArray[np.object_], NDArray[np.bool_], NDArray[np.int64]]:
    rows = session.execute(
        text(_COHORT_SQL),
        {"ws": workspace_id, "start": to_epoch(period.start), "end": to_epoch(period.end)},
    ).all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    channels = np.array([r[1] or "unknown" for r in rows], dtype=object)
    bought = np.fromiter(
        (r[2] is not None and r[2] < as_of for r in rows), dtype=np.bool_, count=len(rows)
    )
    revenue = np.fromiter((r[3] or 0 for r in rows), dtype=np.int64, count=len(rows))
    return ids, channels, bought, revenue


def _cents(value: float) -> int:
    return round(value * 100)


def _interval(pair: tuple[float, float]) -> tuple[int, int]:
    return (_cents(pair[0]), _cents(pair[1]))


def _clear_extremes(rows: list[ChannelValue]) -> tuple[str | None, str | None]:
    """Best and worst named channel by value per customer, when the intervals say so."""
    named = [
        r
        for r in rows
        if r.channel not in ("other", "unknown")
        and r.customers >= MIN_CHANNEL_CUSTOMERS
        and r.value_per_customer_interval is not None
    ]
    if len(named) < 2:
        return None, None
    ranked = sorted(named, key=lambda r: r.value_per_customer_cents or 0, reverse=True)
    best, worst = ranked[0], ranked[-1]
    assert best.value_per_customer_interval and worst.value_per_customer_interval
    best_clear = all(
        best.value_per_customer_interval[0] > (r.value_per_customer_interval or (0, 0))[1]
        for r in ranked[1:]
    )
    worst_clear = all(
        worst.value_per_customer_interval[1] < (r.value_per_customer_interval or (0, 0))[0]
        for r in ranked[:-1]
    )
    return (best.channel if best_clear else None, worst.channel if worst_clear else None)


def value_report(
    session: Session,
    workspace_id: str,
    period: Period,
    now: datetime | None = None,
    discount_rate: float | None = None,
    seed: int = BOOTSTRAP_SEED,
) -> ValueReport:
    """Customer and channel value for customers acquired in `period`, as of its end."""
    ws = get_workspace(session, workspace_id)
    rate = ws.discount_rate if discount_rate is None else discount_rate
    as_of = min(to_epoch(period.end), to_epoch(now or datetime.now(UTC)))
    ids, channels, bought, revenue = _cohort(session, workspace_id, period, as_of)

    model: ValueModel | None = None
    reason: str | None = None
    try:
        model = fit_value_model(session, workspace_id, as_of, rate)
    except FitRefused as refused:
        reason = str(refused)
    except ValueError as bad:  # histories the models cannot read (e.g. no buyers at all)
        reason = str(bad)

    # Each acquired customer's 12-month value (0 until they buy).
    values = np.zeros(ids.size)
    if model is not None and ids.size:
        pos = np.searchsorted(model.summary.customer_id, ids)
        pos = np.minimum(pos, max(model.summary.size - 1, 0))
        found = model.summary.size > 0
        if found:
            hit = model.summary.customer_id[pos] == ids
            values = np.where(hit, model.value[pos], 0.0)

    rng = np.random.default_rng(seed)
    names, counts = np.unique(channels, return_counts=True) if ids.size else ([], [])
    order = sorted(zip(names, counts, strict=True), key=lambda nc: (-nc[1], nc[0]))
    top = [str(name) for name, _ in order if name != "unknown"][:TOP_CHANNELS]
    group = np.array([c if c in top or c == "unknown" else "other" for c in channels], dtype=object)
    rows: list[ChannelValue] = []
    for name in [*top, "other", "unknown"]:
        mask = group == name
        n = int(mask.sum())
        if n == 0:
            continue
        buyer_mask = mask & bought
        k = int(buyer_mask.sum())
        per_customer = per_buyer = None
        customer_interval = buyer_interval = None
        if model is not None:
            per_customer = _cents(float(values[mask].mean()))
            customer_interval = _interval(bootstrap_interval(values[mask], rng))
            if k:
                per_buyer = _cents(float(values[buyer_mask].mean()))
                buyer_interval = _interval(bootstrap_interval(values[buyer_mask], rng))
        rows.append(
            ChannelValue(
                channel=name,
                customers=n,
                buyers=k,
                conversion=wilson(k, n),
                revenue_cents=int(revenue[mask].sum()),
                value_per_customer_cents=per_customer,
                value_per_customer_interval=customer_interval,
                value_per_buyer_cents=per_buyer,
                value_per_buyer_interval=buyer_interval,
            )
        )
    best, worst = _clear_extremes(rows) if model is not None else (None, None)

    bg = model.bg_nbd.params if model else None
    gg = model.gamma_gamma if model else None
    summary = model.summary if model else None
    return ValueReport(
        workspace_id=workspace_id,
        period=period,
        as_of=from_epoch(as_of),
        currency=ws.currency,
        method="models" if model else "unavailable",
        fallback_reason=reason,
        discount_rate=rate,
        horizon_months=HORIZON_MONTHS,
        buyers=summary.size if summary else 0,
        repeat_buyers=int((summary.x > 0).sum()) if summary else 0,
        r=bg.r if bg else None,
        alpha=bg.alpha if bg else None,
        a=bg.a if bg else None,
        b=bg.b if bg else None,
        p=gg.params.p if gg else None,
        q=gg.params.q if gg else None,
        gamma=gg.params.gamma if gg else None,
        spend_correlation=gg.correlation if gg else None,
        mean_spend_cents=_cents(gg.params.mean_spend) if gg else None,
        value_per_buyer_cents=_cents(float(model.value.mean()))
        if model and model.value.size
        else None,
        channels=rows,
        best_channel=best,
        worst_channel=worst,
        bootstrap_samples=BOOTSTRAP_SAMPLES,
        generated_at=datetime.now(UTC),
    )
