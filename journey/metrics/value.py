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
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from sqlmodel import Session

from journey.metrics.buyers import (
    BuyerSummary,
    SharedFits,
    read_cohort,
    read_summary_and_cohort,
)
from journey.metrics.churn_model import BgNbdFit, FitRefused
from journey.metrics.clv import HORIZON_MONTHS, discounted_purchases
from journey.metrics.gamma_gamma import GammaGammaFit, expected_spend
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
# Up to this many customers a bootstrap sample resamples customers one by one (at most
# 5M draws per interval); above it, through blocks of sorted values (bootstrap_interval).
EXACT_BOOTSTRAP_MAX = 5_000
BOOTSTRAP_BLOCKS = 20
BOOTSTRAP_TAIL = 500


# The digest's line and the App Home judge channels by the customers acquired in this many
# days to the period's end: a week's or a month's newcomers are too few to tell channels
# apart.
RECENT_WINDOW_DAYS = 90


def recent_window(period: Period, days: int = RECENT_WINDOW_DAYS) -> Period:
    """The `days` to `period`'s end (the same end, in the same timezone)."""
    last = (period.end - timedelta(seconds=1)).date()
    return Period(period.end - timedelta(days=days), period.end, f"the {days} days to {last}")


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
    session: Session,
    workspace_id: str,
    as_of: int,
    discount_rate: float,
    fits: SharedFits | None = None,
) -> ValueModel:
    """Fit BG/NBD and Gamma-Gamma on every buyer before `as_of` and value each buyer
    (through `fits`, so a request's churn report reuses the same fits).

    Raises FitRefused (with the reason in words) when either model refuses the data.
    """
    fits = fits or SharedFits()
    summary = fits.summary(session, workspace_id, as_of)
    # One grouping of identical histories for the fit and the scoring (a sort of a
    # million keys, done once).
    histories = fits.histories(session, workspace_id, as_of)
    bg = fits.bg_nbd(session, workspace_id, as_of)
    gg = fits.gamma_gamma(session, workspace_id, as_of)
    m = summary.repeat_spend()
    spend = expected_spend(gg.params, summary.x, m)
    purchases = discounted_purchases(
        bg.params, summary.x, summary.t_x, summary.T, discount_rate, histories=histories
    )
    value = purchases * spend
    return ValueModel(summary, bg, gg, spend, value, discount_rate)


def bootstrap_interval(
    values: Array, rng: np.random.Generator, samples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of `values`.

    Up to EXACT_BOOTSTRAP_MAX values, each sample resamples the customers one by one.
    Above it, that costs one random index per customer and sample (a million-customer
    channel: a billion draws, seconds of the report), so the samples are drawn through
    blocks of sorted values instead (`_blocked_means`): exact for how many resampled
    customers land in each block and for the largest values, normal only for the sum of
    many draws within a block of neighbouring values. tests/test_value.py checks the
    intervals against the customer-by-customer bootstrap.
    """
    n = values.size
    if n == 0:
        return (0.0, 0.0)
    if n <= EXACT_BOOTSTRAP_MAX:
        means = np.empty(samples)
        step = max(1, 5_000_000 // n)  # resample in slabs of about 5M draws
        for start in range(0, samples, step):
            stop = min(samples, start + step)
            idx = rng.integers(0, n, size=(stop - start, n))
            means[start:stop] = values[idx].mean(axis=1)
    else:
        means = _blocked_means(values, rng, samples)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _blocked_means(values: Array, rng: np.random.Generator, samples: int) -> Array:
    """Bootstrap means of `values` through blocks of sorted values (see bootstrap_interval).

    A resample of n customers is a multinomial count per customer. Grouping customers into
    blocks, the count per block is multinomial over the blocks (drawn exactly, by
    conditional binomials vectorised over the samples), and the draws inside a block are
    uniform over it. For the BOOTSTRAP_TAIL largest values, which make a value
    distribution skewed, the draws that land in the tail are placed exactly (uniform
    indices); for the body's BOOTSTRAP_BLOCKS blocks, each drawn hundreds of times or more,
    the sum is its count times the block mean plus normal noise of the block's variance.
    """
    n = values.size
    body = n - BOOTSTRAP_TAIL
    edges = np.linspace(0, body, BOOTSTRAP_BLOCKS + 1).astype(np.int64)
    # Each block's values, not their order within it, matter: a partition at the block
    # edges is enough, and cheaper than a sort.
    ordered = np.partition(values, edges[1:])
    sizes = np.diff(edges).astype(np.float64)
    means = np.add.reduceat(ordered[:body], edges[:-1]) / sizes
    # Within-block variance, from the deviations (not E[x^2] - E[x]^2, which cancels badly).
    spread = ordered[:body] - np.repeat(means, np.diff(edges))
    variances = np.add.reduceat(spread * spread, edges[:-1]) / sizes
    shares = np.append(sizes, BOOTSTRAP_TAIL) / n
    counts = np.empty((samples, shares.size))
    remaining = np.full(samples, n, dtype=np.int64)
    left = 1.0
    for k in range(shares.size - 1):
        drawn = rng.binomial(remaining, min(1.0, shares[k] / left))
        counts[:, k] = drawn
        remaining -= drawn
        left -= shares[k]
    counts[:, -1] = remaining  # draws that land in the tail
    in_tail = remaining
    picks = ordered[body + rng.integers(0, BOOTSTRAP_TAIL, size=int(in_tail.sum()))]
    tail_sums = np.bincount(np.repeat(np.arange(samples), in_tail), picks, minlength=samples)
    c = counts[:, :-1]
    # Row sums, not `@`: a matrix product would wake a threaded BLAS (churn_model._wsum).
    noise = rng.standard_normal(samples) * np.sqrt((c * variances).sum(axis=1))
    return ((c * means).sum(axis=1) + noise + tail_sums) / n


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
    fits: SharedFits | None = None,
) -> ValueReport:
    """Customer and channel value for customers acquired in `period`, as of its end.

    The buyers' summary and the channel cohort come from one read of the journey state;
    with `fits` holding the summary already (the same request's churn report), only the
    cohort is read, and the fits are shared.
    """
    ws = get_workspace(session, workspace_id)
    rate = ws.discount_rate if discount_rate is None else discount_rate
    as_of = min(to_epoch(period.end), to_epoch(now or datetime.now(UTC)))
    fits = fits or SharedFits()
    if fits.has_summary(workspace_id, as_of):
        cohort = read_cohort(session, workspace_id, as_of, period)
    else:
        summary, cohort = read_summary_and_cohort(session, workspace_id, as_of, period)
        fits.remember_summary(workspace_id, as_of, summary)
    ids, bought, revenue = cohort.ids, cohort.bought, cohort.revenue

    model: ValueModel | None = None
    reason: str | None = None
    try:
        model = fit_value_model(session, workspace_id, as_of, rate, fits)
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
    counts = np.bincount(cohort.channel, minlength=len(cohort.names))
    order = sorted(zip(cohort.names, counts.tolist(), strict=True), key=lambda nc: (-nc[1], nc[0]))
    top = [name for name, _ in order if name != "unknown"][:TOP_CHANNELS]
    # Each channel code's row: its own for the top channels and "unknown", else "other".
    rows_order = [*top, "other", "unknown"]
    group_of_code = np.array(
        [rows_order.index(c) if c in top or c == "unknown" else len(top) for c in cohort.names],
        dtype=np.intp,
    )
    group = group_of_code[cohort.channel].astype(np.int8)  # at most TOP_CHANNELS + 2 rows
    # One stable sort by row (a radix sort of small integers) makes each row's customers a
    # slice, still in customer id order, instead of a pass over every customer per row.
    by_row = np.argsort(group, kind="stable")
    bounds = np.cumsum(np.bincount(group, minlength=len(rows_order)))
    row_values, row_bought, row_revenue = values[by_row], bought[by_row], revenue[by_row]
    rows: list[ChannelValue] = []
    for row, name in enumerate(rows_order):
        lo, hi = (int(bounds[row - 1]) if row else 0), int(bounds[row])
        n = hi - lo
        if n == 0:
            continue
        these, their_bought = row_values[lo:hi], row_bought[lo:hi]
        k = int(their_bought.sum())
        per_customer = per_buyer = None
        customer_interval = buyer_interval = None
        if model is not None:
            per_customer = _cents(float(these.mean()))
            customer_interval = _interval(bootstrap_interval(these, rng))
            if k:
                buyers_values = these[their_bought]
                per_buyer = _cents(float(buyers_values.mean()))
                buyer_interval = _interval(bootstrap_interval(buyers_values, rng))
        rows.append(
            ChannelValue(
                channel=name,
                customers=n,
                buyers=k,
                conversion=wilson(k, n),
                revenue_cents=int(row_revenue[lo:hi].sum()),
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
