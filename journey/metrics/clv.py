"""A buyer's expected value over the next months: BG/NBD purchases x Gamma-Gamma spend.

One formula for the value report and the churn list, so "12-month value" is the same number
wherever it is shown:

    sum over months k = 1..months of (E[Y(k)] - E[Y(k - 1)]) x E[spend] / (1 + d)^(k / 12)

E[Y(t)] is the BG/NBD expected purchases in the next t days (P(alive) included), E[spend]
the Gamma-Gamma expected value of a purchase, d the yearly discount rate. Monthly
discounting as in Fader, Hardie & Lee (2005) and lifetimes' `customer_lifetime_value`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from journey.metrics.churn_model import (
    BgNbdParams,
    Histories,
    expected_purchases_if_alive,
    group_histories,
    p_alive,
)

Array = NDArray[np.float64]

HORIZON_MONTHS = 12
MONTH_DAYS = 365.25 / 12


def discounted_purchases(
    params: BgNbdParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    discount_rate: float,
    months: int = HORIZON_MONTHS,
    histories: Histories | None = None,
) -> Array:
    """Each buyer's expected purchases in the next `months`, month by month, discounted.

    E[Y(t)] = P(alive) x E[Y(t) | alive], and only the second factor changes with t and
    it depends on (x, T) alone, so the monthly sum is taken once per distinct (x, T)
    (a million buyers at day resolution have tens of thousands) and multiplied by
    P(alive) once per distinct history. Pass `histories` from `group_histories` of the
    same customers to reuse a grouping.
    """
    h = histories if histories is not None else group_histories(x, t_x, T)
    pairs = group_histories(h.x, np.zeros_like(h.x), h.T)
    previous = np.zeros(pairs.x.size)
    total = np.zeros(pairs.x.size)
    for k in range(1, months + 1):
        cumulative = expected_purchases_if_alive(params, k * MONTH_DAYS, pairs.x, pairs.T)
        total += (cumulative - previous) / (1 + discount_rate) ** (k / 12)
        previous = cumulative
    return (p_alive(params, h.x, h.t_x, h.T) * total[pairs.inverse])[h.inverse]
