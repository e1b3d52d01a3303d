"""The BG/NBD model against the reference implementation (lifetimes) and against itself.

lifetimes' BetaGeoFitter is the reference: on the same summary data our
parameters, P(alive) and expected purchases must agree with it to 1e-3
relative. The rest checks what makes ours fast (grouping, the analytic
gradient) changes nothing, and that it refuses data it cannot fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import OptimizeResult

from journey.metrics import churn_model
from journey.metrics.churn_model import (
    MIN_CUSTOMERS,
    MIN_REPEAT_BUYERS,
    BgNbdParams,
    FitRefused,
    check_histories,
    expected_purchases,
    fit_bg_nbd,
    group_histories,
    log_likelihood,
    log_likelihood_and_gradient,
    p_alive,
    score,
    simulate_bg_nbd,
)

lifetimes = pytest.importorskip("lifetimes")
BetaGeoFitter = lifetimes.BetaGeoFitter
TRUE = BgNbdParams(r=0.25, alpha=4.0, a=0.8, b=2.5)
REL = 1e-3


def cdnow() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lifetimes' bundled CDNOW summary (2,357 customers, time in weeks)."""
    path = Path(lifetimes.__file__).parent / "datasets" / "cdnow_customers_summary.csv"
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    return data[:, 1], data[:, 2], data[:, 3]


def simulated(n: int, seed: int, days: bool = False):
    rng = np.random.default_rng(seed)
    ages = rng.uniform(30, 400, size=n)
    return simulate_bg_nbd(TRUE, ages, rng, day_resolution=days)


def reference(x, t_x, T) -> BetaGeoFitter:
    return BetaGeoFitter().fit(x, t_x, T)


def assert_close(ours, theirs, rel=REL) -> None:
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    np.testing.assert_allclose(ours, theirs, rtol=rel, atol=0)


def test_cdnow_agrees_with_lifetimes_and_the_paper():
    x, t_x, T = cdnow()
    fit = fit_bg_nbd(x, t_x, T)
    ref = reference(x, t_x, T)
    assert_close(fit.params.as_array(), ref.params_[["r", "alpha", "a", "b"]].to_numpy())
    # Fader, Hardie & Lee (2005) report r=0.243, alpha=4.414, a=0.793, b=2.426, LL=-9582.4.
    assert_close(fit.params.as_array(), [0.243, 4.414, 0.793, 2.426], rel=2e-3)
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert_close(p_alive(fit.params, x, t_x, T), ref.conditional_probability_alive(x, t_x, T))
    assert_close(
        expected_purchases(fit.params, 39.0, x, t_x, T),
        ref.conditional_expected_number_of_purchases_up_to_time(39.0, x, t_x, T),
    )


def test_simulated_data_agree_with_lifetimes_and_recover_the_truth():
    x, t_x, T = simulated(4000, seed=7)
    fit = fit_bg_nbd(x, t_x, T)
    ref = reference(x, t_x, T)
    assert_close(fit.params.as_array(), ref.params_[["r", "alpha", "a", "b"]].to_numpy())
    assert_close(p_alive(fit.params, x, t_x, T), ref.conditional_probability_alive(x, t_x, T))
    assert_close(
        expected_purchases(fit.params, 90.0, x, t_x, T),
        ref.conditional_expected_number_of_purchases_up_to_time(90.0, x, t_x, T),
    )
    # 4,000 customers pin the parameters down to within sampling error of the truth.
    assert_close(fit.params.as_array(), TRUE.as_array(), rel=0.35)


def test_day_resolution_data_agree_with_lifetimes():
    x, t_x, T = simulated(3000, seed=11, days=True)
    fit = fit_bg_nbd(x, t_x, T)
    ref = reference(x, t_x, T)
    assert_close(fit.params.as_array(), ref.params_[["r", "alpha", "a", "b"]].to_numpy())


def test_grouping_gives_the_same_fit():
    x, t_x, T = simulated(3000, seed=3, days=True)
    grouped = fit_bg_nbd(x, t_x, T)
    single = fit_bg_nbd(x, t_x, T, group=False)
    assert grouped.histories < single.histories == 3000
    assert_close(grouped.params.as_array(), single.params.as_array(), rel=1e-6)
    assert grouped.log_likelihood == pytest.approx(single.log_likelihood, rel=1e-10)
    h = group_histories(x, t_x, T)
    assert h.count.sum() == 3000
    np.testing.assert_array_equal(h.x[h.inverse], x)
    np.testing.assert_array_equal(h.t_x[h.inverse], t_x)
    np.testing.assert_array_equal(h.T[h.inverse], T)
    assert log_likelihood(grouped.params, h.x, h.t_x, h.T, h.count) == pytest.approx(
        log_likelihood(grouped.params, x, t_x, T), rel=1e-12
    )


def test_packed_key_and_general_sort_group_alike(monkeypatch):
    x, t_x, T = simulated(3000, seed=9, days=True)
    T = T + 0.37  # an as-of time in the middle of a day, as with "now"
    packed = group_histories(x, t_x, T)
    monkeypatch.setattr(churn_model, "_packed_key", lambda *_: None)
    general = group_histories(x, t_x, T)
    for field in ("x", "t_x", "T", "count", "inverse"):
        np.testing.assert_array_equal(getattr(packed, field), getattr(general, field))
    # Continuous times cannot be packed; they still group exactly.
    monkeypatch.undo()
    xc, tc, Tc = simulated(500, seed=9)
    assert churn_model._packed_key(xc, tc, Tc) is None
    h = group_histories(
        np.concatenate([xc, xc]), np.concatenate([tc, tc]), np.concatenate([Tc, Tc])
    )
    assert (h.count == 2).all() and h.x.size == 500


@pytest.mark.parametrize(
    "point", [(0.25, 4.0, 0.8, 2.5), (1.7, 60.0, 0.05, 9.0), (0.05, 0.3, 3.0, 0.6)]
)
def test_analytic_gradient_matches_finite_differences(point):
    x, t_x, T = simulated(500, seed=5)
    theta = np.log(point)
    _, grad = log_likelihood_and_gradient(theta, x, t_x, T)
    h = 1e-6
    numeric = np.array(
        [
            (
                log_likelihood_and_gradient(theta + h * e, x, t_x, T)[0]
                - log_likelihood_and_gradient(theta - h * e, x, t_x, T)[0]
            )
            / (2 * h)
            for e in np.eye(4)
        ]
    )
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-4)


def test_thin_data_is_refused_with_a_reason():
    x, t_x, T = simulated(MIN_CUSTOMERS - 1, seed=1)
    with pytest.raises(FitRefused, match=f"only {MIN_CUSTOMERS - 1} customers"):
        fit_bg_nbd(x, t_x, T)
    # Plenty of customers, but too few came back.
    n = 500
    x = np.zeros(n)
    t_x = np.zeros(n)
    T = np.full(n, 200.0)
    x[: MIN_REPEAT_BUYERS - 1] = 2
    t_x[: MIN_REPEAT_BUYERS - 1] = 50
    with pytest.raises(FitRefused, match="more than one day") as refused:
        fit_bg_nbd(x, t_x, T)
    assert f"only {MIN_REPEAT_BUYERS - 1} customers" in refused.value.reason


def test_nobody_dropping_out_is_refused():
    """Pure Poisson buyers who never stop: a and b run off along a flat ridge."""
    rng = np.random.default_rng(2)
    n = 3000
    T = rng.uniform(100, 400, size=n)
    lam = rng.gamma(2.0, 1 / 60.0, size=n)
    x = rng.poisson(lam * T).astype(float)
    # Given x purchases in (0, T], the last one is the max of x uniforms.
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    with pytest.raises(FitRefused, match=r"almost no repeat buyer has stopped|edge"):
        fit_bg_nbd(x, t_x, T)


def test_no_convergence_is_refused(monkeypatch):
    def stuck(fun, x0, **kwargs):
        value, grad = fun(x0)
        return OptimizeResult(
            x=x0, fun=value, jac=grad, success=False, message="ABNORMAL", nit=1, nfev=1
        )

    monkeypatch.setattr(churn_model, "minimize", stuck)
    x, t_x, T = simulated(1000, seed=4)
    with pytest.raises(FitRefused, match="did not converge"):
        fit_bg_nbd(x, t_x, T)


def test_impossible_histories_are_bugs_not_thin_data():
    with pytest.raises(ValueError, match="recency"):
        check_histories(np.array([1.0]), np.array([5.0]), np.array([4.0]))
    with pytest.raises(ValueError, match="t_x = 0"):
        check_histories(np.array([0.0]), np.array([1.0]), np.array([4.0]))
    with pytest.raises(ValueError, match="whole numbers"):
        check_histories(np.array([1.5]), np.array([1.0]), np.array([4.0]))


def test_p_alive_edge_cases():
    p = TRUE
    # One-time buyers cannot have died in BG/NBD: P(alive) = 1 whatever their age.
    assert p_alive(p, [0, 0, 0], [0, 0, 0], [1, 100, 10_000]).tolist() == [1.0, 1.0, 1.0]
    # Bought just now (t_x = T): the only risk is dying right after that purchase.
    x = np.array([1.0, 3.0, 10.0])
    expected = 1 / (1 + p.a / (p.b + x - 1))
    np.testing.assert_allclose(p_alive(p, x, [50, 50, 50], [50, 50, 50]), expected)
    # Longer silence, lower P(alive); a more recent last purchase, higher.
    ages = p_alive(p, [3, 3, 3], [40, 40, 40], [50, 200, 2000])
    assert ages[0] > ages[1] > ages[2] > 0
    recency = p_alive(p, [3, 3, 3], [10, 100, 190], [200, 200, 200])
    assert recency[0] < recency[1] < recency[2] < 1
    # Extremes stay finite and within [0, 1].
    extreme = p_alive(p, [500, 1, 200], [1, 0.001, 3000], [1e6, 1e6, 3000])
    assert np.isfinite(extreme).all() and ((extreme >= 0) & (extreme <= 1)).all()
    assert extreme[0] < 1e-12


def test_expected_purchases_edge_cases_agree_with_lifetimes():
    ref = BetaGeoFitter()
    ref.params_ = __import__("pandas").Series(
        {"r": TRUE.r, "alpha": TRUE.alpha, "a": TRUE.a, "b": TRUE.b}
    )
    x = np.array([0.0, 0.0, 1.0, 5.0, 40.0, 120.0])
    t_x = np.array([0.0, 0.0, 30.0, 300.0, 390.0, 399.0])
    T = np.array([1.0, 700.0, 400.0, 400.0, 400.0, 400.0])
    for t in (1.0, 90.0, 365.0):
        ours = expected_purchases(TRUE, t, x, t_x, T)
        theirs = ref.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)
        assert np.isfinite(ours).all() and (ours >= 0).all()
        assert_close(ours, theirs, rel=1e-6)
    # More time ahead, more purchases expected.
    near, far = (expected_purchases(TRUE, t, x, t_x, T) for t in (30.0, 365.0))
    assert (far > near).all()


def test_score_per_history_matches_per_customer():
    x, t_x, T = simulated(2000, seed=8, days=True)
    fit = fit_bg_nbd(x, t_x, T)
    s = score(fit.params, x, t_x, T, horizon_days=90, value_days=365)
    assert_close(s.p_alive, p_alive(fit.params, x, t_x, T), rel=1e-12)
    assert_close(
        s.expected_purchases + 1e-300,
        expected_purchases(fit.params, 90, x, t_x, T) + 1e-300,
        rel=1e-12,
    )
    assert_close(
        s.expected_purchases_value + 1e-300,
        (s.p_alive * s.expected_purchases_if_alive) + 1e-300,
        rel=1e-12,
    )
