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

from journey.metrics.churn_model import BgNbdParams, expected_purchases, group_histories

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
) -> Array:
    """Each buyer's expected purchases in the next `months`, month by month, discounted.

    Evaluated once per distinct (x, t_x, T) history: buyers share histories at day
    resolution, so a million buyers need far fewer hypergeometric evaluations.
    """
    h = group_histories(x, t_x, T)
    previous = np.zeros(h.x.size)
    total = np.zeros(h.x.size)
    for k in range(1, months + 1):
        cumulative = expected_purchases(params, k * MONTH_DAYS, h.x, h.t_x, h.T)
        total += (cumulative - previous) / (1 + discount_rate) ** (k / 12)
        previous = cumulative
    return total[h.inverse]
