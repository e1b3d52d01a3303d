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


def _ll_and_grad(log_params: Array, x: Array, m: Array) -> tuple[float, Array]:
    """Mean log-likelihood and its gradient in log-parameters."""
    p, q, g = np.exp(log_params)
    px = p * x
    log_gmx = np.log(g + m * x)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_gmx
    )
    psi_pxq = digamma(px + q)
    d_p = x * (psi_pxq - digamma(px) + np.log(m) + np.log(x) - log_gmx)
    d_q = psi_pxq - digamma(q) + np.log(g) - log_gmx
    d_g = q / g - (px + q) / (g + m * x)
    grad = np.array([d_p.mean() * p, d_q.mean() * q, d_g.mean() * g])
    return float(ll.mean()), grad


def log_likelihood(params: GammaGammaParams, x: ArrayLike, m: ArrayLike) -> float:
    """Total log-likelihood of repeat buyers' (x, m) under `params`."""
    xs, ms = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    mean, _ = _ll_and_grad(np.log(params.as_array()), xs, ms)
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

    def objective(lp: Array) -> tuple[float, Array]:
        ll, grad = _ll_and_grad(lp, xs, ms)
        return -ll, -grad

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
