"""The Gamma-Gamma model of spend per purchase, fitted by maximum likelihood.

Why a model and not each customer's own average: most repeat buyers have bought two or
three times, so their average is mostly noise; the model shrinks it towards the
workspace's mean in proportion to how much evidence the customer gives (Fader, Hardie &
Lee 2005, "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis", JMR 42(4),
415-430; Fader & Hardie, "The Gamma-Gamma Model of Monetary Value", 2013).

The model: each purchase's value z ~ Gamma(p, nu), with a customer's scale nu ~ Gamma(q,
gamma) across customers. A repeat buyer with x repeat purchases of average value m has
likelihood (the note's eq. 1)

    f(m | x) = Gamma(p x + q) / (Gamma(p x) Gamma(q)) * gamma^q m^(p x - 1) x^(p x)
               / (gamma + m x)^(p x + q)

and expected spend per purchase E[Z | x, m] = p (gamma + m x) / (p x + q - 1), a weighted
mean of the population mean p gamma / (q - 1) and the customer's own m. Only repeat
purchases count (the first purchase is often different: a welcome offer, a first visit),
as in the paper and lifetimes' GammaGammaFitter; money is in currency units, so gamma is
too.

The model assumes spend per purchase does not depend on how often someone buys. Where
it clearly does, its values would be biased, so `fit_gamma_gamma` refuses and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln
from threadpoolctl import threadpool_limits

from journey.metrics.churn_model import FitRefused

Array = NDArray[np.float64]

# Fewer repeat buyers than this leave p, q and gamma poorly identified.
MIN_REPEAT_BUYERS = 30
# Fader & Hardie check the independence assumption by the correlation between the number
# of repeat purchases and their average value (0.11 on CDNOW). Above this in absolute value
# the assumption visibly fails.
MAX_FREQUENCY_SPEND_CORRELATION = 0.3
LOG_PARAM_LIMIT = 15.0


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float  # in currency units

    def as_array(self) -> Array:
        return np.array([self.p, self.q, self.gamma])

    @property
    def mean_spend(self) -> float:
        """The population's mean spend per purchase, p gamma / (q - 1)."""
        return self.p * self.gamma / (self.q - 1)


@dataclass(frozen=True)
class GammaGammaFit:
    params: GammaGammaParams
    log_likelihood: float
    repeat_buyers: int  # customers the fit used (x >= 1, m > 0)
    correlation: float  # Pearson correlation of x and m over those customers


@dataclass(frozen=True)
class _Data:
    """Repeat buyers' (x, m) prepared for repeated likelihood evaluations.

    Why: the gamma and digamma terms depend on x alone, and x takes few distinct values
    (a million repeat buyers have a few dozen), so they are evaluated once per distinct x
    and weighted by its count; the terms that do not depend on the parameters are summed
    once. Per customer, an evaluation is then one log and one division (the fit on a
    million buyers went from seconds to a fraction of one, the same optimum).
    """

    mx: Array  # m * x per customer
    x: Array
    ux: Array  # distinct x
    uw: Array  # customers per distinct x
    n: float
    sum_x_log_m: float
    sum_log_m: float
    sum_x_log_x: float


def _prepare(x: Array, m: Array) -> _Data:
    ux, counts = np.unique(x, return_counts=True)
    log_m = np.log(m)
    return _Data(
        mx=m * x,
        x=x,
        ux=ux,
        uw=counts.astype(np.float64),
        n=float(x.size),
        sum_x_log_m=float(np.add.reduce(x * log_m)),
        sum_log_m=float(np.add.reduce(log_m)),
        sum_x_log_x=float(np.add.reduce(x * np.log(x))),
    )


def _sum(v: Array) -> float:
    """Plain reduction: np.dot hands long vectors to a threaded BLAS (see churn_model._wsum)."""
    return float(np.add.reduce(v))


def _ll_and_grad(log_params: Array, d: _Data) -> tuple[float, Array]:
    """Mean log-likelihood and its gradient in log-parameters.

    Per customer (the note's eq. 1), summed:
    gammaln(px + q) - gammaln(px) - gammaln(q) + q log g + (px - 1) log m + px log x
    - (px + q) log(g + m x).
    """
    p, q, g = np.exp(log_params)
    pux = p * d.ux
    gmx = g + d.mx
    log_gmx = np.log(gmx)
    inv_gmx = 1.0 / gmx
    s_log = _sum(log_gmx)
    s_x_log = _sum(d.x * log_gmx)
    n = d.n
    ll = (
        _sum(d.uw * (gammaln(pux + q) - gammaln(pux)))
        - n * gammaln(q)
        + n * q * np.log(g)
        + p * d.sum_x_log_m
        - d.sum_log_m
        + p * d.sum_x_log_x
        - p * s_x_log
        - q * s_log
    )
    psi_pxq = digamma(pux + q)
    d_p = _sum(d.uw * d.ux * (psi_pxq - digamma(pux))) + d.sum_x_log_m + d.sum_x_log_x - s_x_log
    d_q = _sum(d.uw * psi_pxq) - n * digamma(q) + n * np.log(g) - s_log
    d_g = n * q / g - p * _sum(d.x * inv_gmx) - q * _sum(inv_gmx)
    grad = np.array([d_p * p, d_q * q, d_g * g]) / n
    return float(ll) / n, grad


def log_likelihood(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> float:
    """Total log-likelihood of repeat buyers' (x, m) under `params`."""
    xs, ms = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    mean, _ = _ll_and_grad(np.log(params.as_array()), _prepare(xs, ms))
    return mean * xs.size


def fit_gamma_gamma(x: ArrayLike, m: ArrayLike) -> GammaGammaFit:
    """Maximum-likelihood p, q, gamma from repeat purchases x and their average value m.

    Customers with x = 0 or m <= 0 (a repeat purchase wholly refunded) carry no spend to
    learn from and are left out. Raises FitRefused, with the reason in words, when the
    model should not be used on these data.
    """
    xs, ms = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    if xs.shape != ms.shape:
        raise ValueError("x and m must have the same length")
    keep = (xs >= 1) & (ms > 0) & np.isfinite(ms)
    xs, ms = xs[keep], ms[keep]
    n = int(xs.size)
    if n < MIN_REPEAT_BUYERS:
        raise FitRefused(
            f"only {n} customers have bought again; the spend model needs at least "
            f"{MIN_REPEAT_BUYERS} repeat buyers to learn how much a purchase is worth"
        )
    correlation = float(np.corrcoef(xs, ms)[0, 1]) if xs.std() > 0 and ms.std() > 0 else 0.0
    if abs(correlation) > MAX_FREQUENCY_SPEND_CORRELATION:
        direction = "spend more" if correlation > 0 else "spend less"
        raise FitRefused(
            f"customers who buy more often also {direction} per purchase here "
            f"(correlation {correlation:.2f}); the spend model assumes the two are "
            "unrelated, so its values would be biased"
        )
    # Method-of-moments start: shape of spend around a customer's mean, and across them.
    mean, var = float(ms.mean()), float(ms.var())
    start = np.log([max(mean**2 / max(var, 1e-9), 0.5), 3.0, max(mean, 1e-3)])

    data = _prepare(xs, ms)

    def objective(lp: Array) -> tuple[float, Array]:
        ll, grad = _ll_and_grad(lp, data)
        return -ll, -grad

    # One BLAS thread, as in the BG/NBD fit: L-BFGS-B's algebra is 3x3.
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_PARAM_LIMIT, LOG_PARAM_LIMIT)] * 3,
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000},
        )
    _, grad = objective(result.x)
    if not (result.success or float(np.abs(grad).max()) < 1e-6):
        raise FitRefused(f"the spend model did not converge ({result.message})")
    if (np.abs(result.x) >= LOG_PARAM_LIMIT - 1e-6).any():
        raise FitRefused("the spend model's parameters ran off to a limit: spend is too uneven")
    p, q, g = (float(v) for v in np.exp(result.x))
    if q <= 1:
        raise FitRefused(
            "spend per purchase is so uneven across customers that its average is not "
            "stable (the model's q is at most 1)"
        )
    return GammaGammaFit(GammaGammaParams(p, q, g), -float(result.fun) * n, n, correlation)


def expected_spend(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> Array:
    """Expected value of a customer's next purchase, given x repeat purchases averaging m.

    One-time buyers (x = 0) and customers whose repeat value is not positive get the
    population mean.
    """
    xs, ms = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    p, q, g = params.p, params.q, params.gamma
    own = (xs >= 1) & (ms > 0)
    xo = np.where(own, xs, 0.0)
    mo = np.where(own, ms, 0.0)
    return p * (g + mo * xo) / (p * xo + q - 1)


def simulate_gamma_gamma(params: GammaGammaParams, x: ArrayLike, rng: np.random.Generator) -> Array:
    """Average repeat spend for customers with x repeat purchases, drawn from the model."""
    xs = np.asarray(x, dtype=np.int64)
    nu = rng.gamma(params.q, 1 / params.gamma, size=xs.size)
    # The sum of x purchases ~ Gamma(p x, nu); its mean over x purchases.
    total = rng.gamma(np.maximum(params.p * xs, 1e-12), 1 / nu)
    return np.where(xs > 0, total / np.maximum(xs, 1), 0.0)
