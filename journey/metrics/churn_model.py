"""The BG/NBD churn model: fitting by maximum likelihood and scoring, in numpy/scipy.

Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An
Alternative to the Pareto/NBD Model", Marketing Science 24(2). While a customer
is alive, repeat purchases arrive as a Poisson process with rate lambda; after
each repeat purchase the customer dies (never buys again) with probability p.
Across customers, lambda ~ Gamma(shape r, rate alpha) and p ~ Beta(a, b). The
four numbers r, alpha, a, b are fitted per workspace from each customer's

- x: repeat purchases (purchase days - 1; same-day purchases are one purchase),
- t_x: time from the first to the last purchase (recency),
- T: time from the first purchase to the end of the observation window (age),

all in days (`TIME_UNIT`), so alpha is in days and lambda in purchases per day.
Nothing here touches the store: `journey.metrics.churn` reads the summary and
builds the report.

Why this shape:

- Speed. The likelihood only depends on (x, t_x, T), and with day resolution
  many customers share a history, so `group_histories` collapses them into
  weighted groups; the per-x terms (the gamma functions) are summed once per
  distinct x. L-BFGS-B works on log-parameters (no bounds needed for
  positivity) with the analytic gradient below, on time scaled so the oldest
  customer has age 1 (the same conditioning trick as `lifetimes`); alpha is
  scaled back to days afterwards.
- Honesty. `fit_bg_nbd` refuses (raises `FitRefused` with a reason in words)
  when there are too few customers or repeat buyers to identify four
  parameters, when the optimiser does not converge or runs a parameter off to
  the edge, and when the fitted model expects under 1% of the repeat buyers to
  have stopped (the drop-out process is then not identified: a -> 0 and
  b -> infinity along a flat ridge, and P(alive) is 1 for everyone); the
  report then falls back to the documented heuristic.

The log-likelihood of one customer (FHL 2005, eq. 6, in the log form of
Hardie's note 004) is

    ln L = A1 + A2 + ln(exp(A3) + [x > 0] exp(A4))
    A1 = lnG(r + x) - lnG(r) + r ln(alpha)
    A2 = lnG(a + b) + lnG(b + x) - lnG(b) - lnG(a + b + x)
    A3 = -(r + x) ln(alpha + T)
    A4 = ln(a) - ln(b + x - 1) - (r + x) ln(alpha + t_x)

With w3 = exp(A3) / (exp(A3) + [x>0] exp(A4)) and w4 = 1 - w3 (0 when x = 0),
and psi the digamma function, its gradient is

    d/dr     = psi(r + x) - psi(r) + ln(alpha) - w3 ln(alpha + T) - w4 ln(alpha + t_x)
    d/dalpha = r / alpha - (r + x) (w3 / (alpha + T) + w4 / (alpha + t_x))
    d/da     = psi(a + b) - psi(a + b + x) + w4 / a
    d/db     = psi(a + b) + psi(b + x) - psi(b) - psi(a + b + x) - w4 / (b + x - 1)

and d/d(ln theta) = theta d/d(theta) for the log-parameters.

Scoring (same paper and Hardie's note 021):

    P(alive | x, t_x, T) = 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))

which is 1 for x = 0: in BG/NBD a customer can only die right after a repeat
purchase, so one-time buyers are never "at risk" (their expected purchases fall
with silence instead). The expected purchases in the next t days (eq. 10) is
P(alive) times

    E[Y(t) | alive] = (a + b + x - 1) / (a - 1)
                      * (1 - ((alpha + T) / (alpha + T + t))^(r + x)
                             * 2F1(r + x, b + x; a + b + x - 1; t / (alpha + T + t)))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1
from threadpoolctl import threadpool_limits

TIME_UNIT = "days"
# Below these the four parameters are not identified well enough to trust
# P(alive) for individual customers; the report falls back to the heuristic.
MIN_CUSTOMERS = 100
MIN_REPEAT_BUYERS = 30
# Log-parameters beyond this are a parameter running off to infinity or zero
# (e.g. nobody ever seems to die): refuse rather than report nonsense.
LOG_PARAM_LIMIT = 15.0
# When the fitted model expects fewer than this share of the repeat buyers to
# have stopped, the data show (almost) nobody dropping out: a and b then slide
# along a flat ridge towards 0 and infinity, P(alive) is about 1 for everyone,
# and the model has nothing to say about who churned.
MIN_STOPPED_SHARE = 0.01
# Accept the optimum when the gradient of the mean log-likelihood (in
# log-parameters) is this flat even if L-BFGS-B's own stopping test complains
# about its line search, which it does when it is already at machine precision.
GRADIENT_TOLERANCE = 1e-5

Array = NDArray[np.float64]


class FitRefused(Exception):
    """The model will not be fitted on these data; `reason` says why, in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class BgNbdParams:
    """Fitted BG/NBD parameters; alpha is in `TIME_UNIT` (days)."""

    r: float
    alpha: float
    a: float
    b: float

    def as_array(self) -> Array:
        return np.array([self.r, self.alpha, self.a, self.b], dtype=np.float64)


@dataclass(frozen=True)
class BgNbdFit:
    params: BgNbdParams
    log_likelihood: float  # total over all customers, at the fitted parameters
    customers: int
    repeat_buyers: int
    histories: int  # distinct (x, t_x, T) groups the likelihood was evaluated on
    iterations: int
    function_evaluations: int


@dataclass(frozen=True)
class Histories:
    """Customers grouped by identical (x, t_x, T); `count` customers share each row."""

    x: Array
    t_x: Array
    T: Array
    count: Array
    # For each input customer, the index of its group (to score groups and broadcast back).
    inverse: NDArray[np.intp]


def _as_float(values: ArrayLike) -> Array:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64).ravel())


def check_histories(x: Array, t_x: Array, T: Array) -> None:
    """Raise ValueError for histories BG/NBD cannot describe (a bug upstream, not thin data)."""
    if not (x.shape == t_x.shape == T.shape):
        raise ValueError("x, t_x and T must have the same length")
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(T).all()):
        raise ValueError("x, t_x and T must be finite")
    if (x < 0).any() or (x != np.floor(x)).any():
        raise ValueError("x (repeat purchases) must be whole numbers >= 0")
    if (t_x < 0).any() or (t_x > T).any():
        raise ValueError("recency t_x must lie between 0 and the age T")
    if (t_x[x == 0] != 0).any():
        raise ValueError("customers without repeat purchases must have recency t_x = 0")


def group_histories(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Histories:
    """Collapse customers with identical (x, t_x, T) into one weighted row.

    With day resolution a workspace of a million customers has far fewer
    distinct histories, and every likelihood evaluation is then that much
    cheaper. Day-resolution data (whole x and t_x, ages sharing one fraction of
    a day, as the store produces) are sorted on one packed integer key, three
    times faster than the general lexicographic sort used otherwise.
    """
    xs, ts, Ts = _as_float(x), _as_float(t_x), _as_float(T)
    n = xs.size
    if n == 0:
        empty = np.empty(0, dtype=np.float64)
        return Histories(empty, empty, empty, empty, np.empty(0, dtype=np.intp))
    key = _packed_key(xs, ts, Ts)
    if key is not None:
        order = np.argsort(key)
        sorted_key = key[order]
        starts = np.empty(n, dtype=bool)
        starts[0] = True
        np.not_equal(sorted_key[1:], sorted_key[:-1], out=starts[1:])
    else:
        order = np.lexsort((Ts, ts, xs))
        sx, st, sT = xs[order], ts[order], Ts[order]
        starts = np.empty(n, dtype=bool)
        starts[0] = True
        np.not_equal(sx[1:], sx[:-1], out=starts[1:])
        starts[1:] |= st[1:] != st[:-1]
        starts[1:] |= sT[1:] != sT[:-1]
    group_of_sorted = np.cumsum(starts) - 1
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = group_of_sorted
    first = order[np.flatnonzero(starts)]
    count = np.diff(np.append(np.flatnonzero(starts), n)).astype(np.float64)
    return Histories(xs[first], ts[first], Ts[first], count, inverse)


_KEY_BITS = 21  # per field: up to about 2 million purchases or days


def _packed_key(x: Array, t_x: Array, T: Array) -> NDArray[np.int64] | None:
    """(x, t_x, whole days of T) in one int64, when that identifies the history exactly."""
    limit = float(1 << _KEY_BITS)
    whole_T = np.floor(T)
    fraction = T[0] - whole_T[0]
    if (
        x.max() >= limit
        or T.max() >= limit
        or T.min() < 0
        or (x != np.floor(x)).any()
        or (t_x != np.floor(t_x)).any()
        or (T - whole_T != fraction).any()
    ):
        return None
    return (
        (x.astype(np.int64) << (2 * _KEY_BITS))
        | (t_x.astype(np.int64) << _KEY_BITS)
        | whole_T.astype(np.int64)
    )


@dataclass(frozen=True)
class _Data:
    """The grouped histories prepared for repeated likelihood evaluations."""

    x: Array  # per group of repeat buyers (x > 0)
    t_x: Array
    T: Array
    w: Array  # customers per group
    T0: Array  # per group of one-time buyers (x = 0): only their age matters
    w0: Array
    ux: Array  # distinct x values
    uw: Array  # customers per distinct x
    total: float


def _prepare(h: Histories, scale: float) -> _Data:
    ux, x_index = np.unique(h.x, return_inverse=True)
    uw = np.bincount(x_index, weights=h.count, minlength=ux.size)
    rep = h.x > 0
    return _Data(
        x=h.x[rep],
        t_x=h.t_x[rep] * scale,
        T=h.T[rep] * scale,
        w=h.count[rep],
        T0=h.T[~rep] * scale,
        w0=h.count[~rep],
        ux=ux,
        uw=uw,
        total=float(h.count.sum()),
    )


def _wsum(w: Array, v: Array | float) -> float:
    """Weighted sum without BLAS: np.dot hands long vectors to a threaded BLAS, which on a
    busy two-core machine made each likelihood evaluation 30x slower (and scoring
    runs outside the fit's thread limit)."""
    return float(np.add.reduce(w * v))


def _ll_and_grad(log_params: Array, d: _Data) -> tuple[float, Array]:
    """Total log-likelihood and its gradient in the log-parameters (see the module docstring)."""
    r, alpha, a, b = np.exp(log_params)
    ux, uw = d.ux, d.uw
    # Per distinct x: A1 + A2 and their derivatives.
    ll = float(
        _wsum(
            uw,
            gammaln(r + ux)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(a + b)
            + gammaln(b + ux)
            - gammaln(b)
            - gammaln(a + b + ux),
        )
    )
    n = d.total
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + ux)
    g_r = float(_wsum(uw, digamma(r + ux))) - n * (digamma(r) - np.log(alpha))
    g_alpha = n * r / alpha
    g_a = n * psi_ab - float(_wsum(uw, psi_abx))
    g_b = n * (psi_ab - digamma(b)) + float(_wsum(uw, digamma(b + ux) - psi_abx))

    # Per (x, t_x, T) group. One-time buyers (x = 0) have only the A3 term.
    w0, log_aT0 = d.w0, np.log(alpha + d.T0)
    ll -= r * float(_wsum(w0, log_aT0))
    g_r -= float(_wsum(w0, log_aT0))
    g_alpha -= r * float(_wsum(w0, 1.0 / (alpha + d.T0)))
    # Repeat buyers: ln(exp(A3) + exp(A4)) = A3 + max(D, 0) + ln(1 + exp(-|D|)), D = A4 - A3,
    # and the weight of the A4 term is w4 = sigmoid(D), both without overflow.
    x, w = d.x, d.w
    rx = r + x
    log_aT = np.log(alpha + d.T)
    log_at = np.log(alpha + d.t_x)
    bx1 = b + x - 1.0
    a3 = -rx * log_aT
    diff = np.log(a) - np.log(bx1) - rx * log_at - a3
    e = np.exp(-np.abs(diff))
    ll += float(_wsum(w, a3 + np.maximum(diff, 0.0) + np.log1p(e)))
    w4 = np.where(diff >= 0.0, 1.0, e) / (1.0 + e)
    w3 = 1.0 - w4
    g_r -= float(_wsum(w, w3 * log_aT + w4 * log_at))
    g_alpha -= float(_wsum(w, rx * (w3 / (alpha + d.T) + w4 / (alpha + d.t_x))))
    g_a += float(_wsum(w, w4)) / a
    g_b -= float(_wsum(w, w4 / bx1))
    grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
    return float(ll), grad


def log_likelihood(
    params: BgNbdParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
) -> float:
    """Total log-likelihood of customers' histories (time in days) under `params`."""
    ll, _ = log_likelihood_and_gradient(np.log(params.as_array()), x, t_x, T, weights)
    return float(ll)


def log_likelihood_and_gradient(
    log_params: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
) -> tuple[float, Array]:
    """Total log-likelihood and its gradient in (ln r, ln alpha, ln a, ln b), time unscaled.

    Public so tests can hold the analytic gradient against finite differences.
    """
    xs, ts, Ts = _as_float(x), _as_float(t_x), _as_float(T)
    w = np.ones_like(xs) if weights is None else _as_float(weights)
    h = Histories(xs, ts, Ts, w, np.arange(xs.size))
    return _ll_and_grad(_as_float(log_params), _prepare(h, 1.0))


def fit_bg_nbd(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    *,
    group: bool = True,
    histories: Histories | None = None,
    min_customers: int = MIN_CUSTOMERS,
    min_repeat_buyers: int = MIN_REPEAT_BUYERS,
) -> BgNbdFit:
    """Maximum-likelihood r, alpha, a, b for customers' (x, t_x, T), time in days.

    Raises FitRefused (with the reason in words) on thin data or when the
    optimiser does not converge; ValueError on impossible histories.
    `group=False` evaluates the likelihood customer by customer (the same
    optimum, only slower: kept to show that grouping changes nothing). Pass
    `histories` from `group_histories` of the same data to reuse a grouping.
    """
    xs, ts, Ts = _as_float(x), _as_float(t_x), _as_float(T)
    check_histories(xs, ts, Ts)
    customers = int(xs.size)
    repeat_buyers = int(np.count_nonzero(xs > 0))
    if customers < min_customers:
        raise FitRefused(
            f"only {customers} customers have purchased; the model needs at least {min_customers}"
        )
    if repeat_buyers < min_repeat_buyers:
        raise FitRefused(
            f"only {repeat_buyers} customers have bought on more than one day; "
            f"the model needs at least {min_repeat_buyers}"
        )
    if not (ts[xs > 0] > 0).any():
        raise FitRefused(
            "no customer has bought again on a later day, so there is no rhythm to fit"
        )
    if histories is None:
        histories = (
            group_histories(xs, ts, Ts)
            if group
            else Histories(xs, ts, Ts, np.ones_like(xs), np.arange(customers))
        )
    scale = 1.0 / float(Ts.max())
    data = _prepare(histories, scale)

    def objective(theta: Array) -> tuple[float, Array]:
        # Mean negative log-likelihood: its size does not grow with the data,
        # so the optimiser's tolerances mean the same thing for 100 or 10^6 customers.
        ll, grad = _ll_and_grad(theta, data)
        return -ll / data.total, -grad / data.total

    limit = [(-LOG_PARAM_LIMIT, LOG_PARAM_LIMIT)] * 4
    # One BLAS thread: L-BFGS-B's linear algebra is 4x4, and OpenBLAS threads
    # waking up for it on a busy machine cost more than the whole likelihood.
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(all="ignore"):
        result = minimize(
            objective,
            np.zeros(4),
            jac=True,
            method="L-BFGS-B",
            bounds=limit,
            options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20},
        )
    theta = np.asarray(result.x, dtype=np.float64)
    if not np.isfinite(result.fun) or not np.isfinite(theta).all():
        raise FitRefused("the optimiser did not converge (the likelihood became undefined)")
    worst = float(np.max(np.abs(result.jac)))
    if not result.success and worst > GRADIENT_TOLERANCE:
        raise FitRefused(f"the optimiser did not converge ({result.message})")
    if (np.abs(theta) >= LOG_PARAM_LIMIT - 1e-6).any():
        raise FitRefused(
            "a parameter ran off to the edge of its range: the purchase histories do not "
            "pin the model down (for example, almost nobody seems to stop buying)"
        )
    r, alpha_scaled, a, b = np.exp(theta)
    params = BgNbdParams(float(r), float(alpha_scaled / scale), float(a), float(b))
    repeat = histories.x > 0
    stopped = float(
        _wsum(
            histories.count[repeat],
            1.0 - p_alive(params, histories.x[repeat], histories.t_x[repeat], histories.T[repeat]),
        )
    )
    if stopped < MIN_STOPPED_SHARE * repeat_buyers:
        raise FitRefused(
            "the model finds almost no repeat buyer has stopped buying (an expected "
            f"{stopped / repeat_buyers:.1%} of them), so it cannot tell who has churned"
        )
    return BgNbdFit(
        params=params,
        log_likelihood=log_likelihood(
            params, histories.x, histories.t_x, histories.T, histories.count
        ),
        customers=customers,
        repeat_buyers=repeat_buyers,
        histories=int(histories.x.size),
        iterations=int(result.nit),
        function_evaluations=int(result.nfev),
    )


def p_alive(params: BgNbdParams, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """Probability that each customer is still alive at age T (1 for x = 0, see the docstring)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    xs, ts, Ts = _as_float(x), _as_float(t_x), _as_float(T)
    rep = xs > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds_dead = (r + xs) * (np.log(alpha + Ts) - np.log(alpha + ts)) + np.log(
            a / np.where(rep, b + xs - 1.0, 1.0)
        )
    return np.where(rep, expit(-log_odds_dead), 1.0)


def expected_purchases_if_alive(params: BgNbdParams, t: float, x: ArrayLike, T: ArrayLike) -> Array:
    """E[repeat purchases in the next t days | alive, x, T] (the numerator of FHL eq. 10).

    The Gauss hypergeometric function is evaluated as given, and where that
    overflows (many repeat purchases, a long horizon) through Euler's
    transformation 2F1(a', b'; c; z) = (1 - z)^(c - a' - b') 2F1(c - a', c - b'; c; z),
    which folds the power in front into (1 - z)^(a - 1).
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-9:  # the formula's removable singularity at a = 1
        a = 1.0 + 1e-9
    xs, Ts = _as_float(x), _as_float(T)
    c = a + b + xs - 1.0
    one_minus_z = (alpha + Ts) / (alpha + Ts + t)
    z = t / (alpha + Ts + t)
    with np.errstate(all="ignore"):
        tail = np.exp((r + xs) * np.log(one_minus_z)) * hyp2f1(r + xs, b + xs, c, z)
        bad = ~np.isfinite(tail)
        if bad.any():
            xb, zb, cb = xs[bad], z[bad], c[bad]
            tail[bad] = np.exp((a - 1.0) * np.log(one_minus_z[bad])) * hyp2f1(
                cb - r - xb, cb - b - xb, cb, zb
            )
    return (a + b + xs - 1.0) / (a - 1.0) * (1.0 - tail)


def expected_purchases(
    params: BgNbdParams, t: float, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> Array:
    """E[purchases in the next t days | x, t_x, T] (FHL 2005 eq. 10) = P(alive) x the above."""
    return p_alive(params, x, t_x, T) * expected_purchases_if_alive(params, t, x, T)


@dataclass(frozen=True)
class Scores:
    """Per customer, in input order."""

    p_alive: Array
    expected_purchases: Array  # in the next `horizon_days`
    expected_purchases_if_alive: Array  # in the next `value_days`, were the customer alive
    expected_purchases_value: Array  # in the next `value_days`, = P(alive) x the above


def score(
    params: BgNbdParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    horizon_days: float = 90.0,
    value_days: float = 365.0,
    histories: Histories | None = None,
) -> Scores:
    """P(alive) and expected purchases for every customer, computed once per distinct history.

    Pass the `histories` from `group_histories` when you have them; they are
    computed otherwise. Everything is vectorised, so a million customers take
    well under a second.
    """
    h = histories if histories is not None else group_histories(x, t_x, T)
    alive = p_alive(params, h.x, h.t_x, h.T)
    soon = alive * expected_purchases_if_alive(params, horizon_days, h.x, h.T)
    year_if_alive = expected_purchases_if_alive(params, value_days, h.x, h.T)
    i = h.inverse
    return Scores(
        p_alive=alive[i],
        expected_purchases=soon[i],
        expected_purchases_if_alive=year_if_alive[i],
        expected_purchases_value=(alive * year_if_alive)[i],
    )


def simulate_bg_nbd(
    params: BgNbdParams,
    T: ArrayLike,
    rng: np.random.Generator,
    day_resolution: bool = False,
) -> tuple[Array, Array, Array]:
    """(x, t_x, T) of customers drawn from the BG/NBD process with these parameters.

    Each customer makes a first purchase at time 0 and is observed until its
    age T. With `day_resolution`, purchases are bucketed by whole day (several
    purchases on one day are one purchase) and T is rounded down to whole days,
    like the store does. Used by the tests and the benchmark.
    """
    Ts = _as_float(T)
    n = Ts.size
    lam = rng.gamma(params.r, 1.0 / params.alpha, size=n)
    p = rng.beta(params.a, params.b, size=n)
    x = np.zeros(n, dtype=np.float64)
    t_x = np.zeros(n, dtype=np.float64)
    last_day = np.zeros(n, dtype=np.float64)
    now = np.zeros(n, dtype=np.float64)
    active = np.arange(n)
    while active.size:
        now[active] += rng.exponential(1.0, size=active.size) / np.maximum(lam[active], 1e-300)
        bought = active[now[active] <= Ts[active]]
        if day_resolution:
            day = np.floor(now[bought])
            new_day = day > last_day[bought]
            counted = bought[new_day]
            x[counted] += 1.0
            t_x[counted] = day[new_day]
            last_day[counted] = day[new_day]
        else:
            x[bought] += 1.0
            t_x[bought] = now[bought]
        # After each repeat purchase the customer dies with probability p.
        survives = rng.random(bought.size) >= p[bought]
        active = bought[survives]
    if day_resolution:
        Ts = np.floor(Ts)
    return x, t_x, Ts
