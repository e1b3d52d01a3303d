"""The statistics behind every rate the reports print."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from journey.stats import median_from_histogram, two_proportion_p_value, wilson

# 95% Wilson score intervals (no continuity correction) as published: the 0/10
# and 5/10 rows are the textbook values, the others are Newcombe (1998),
# "Two-sided confidence intervals for the single proportion", Stat Med 17:857,
# Table II, method 3.
PUBLISHED = [
    (0, 10, 0.0, 0.2775),
    (5, 10, 0.2366, 0.7634),
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), PUBLISHED)
def test_wilson_matches_published_intervals(k, n, low, high):
    rate = wilson(k, n)
    assert rate.numerator == k
    assert rate.denominator == n
    assert rate.value == pytest.approx(k / n)
    assert rate.low == pytest.approx(low, abs=5e-5)
    assert rate.high == pytest.approx(high, abs=5e-5)


def test_wilson_all_successes_mirrors_no_successes():
    # The interval of 10/10 is 1 minus the interval of 0/10: [0.7225, 1].
    rate = wilson(10, 10)
    assert rate.low == pytest.approx(1 - 0.2775, abs=5e-5)
    assert rate.high == pytest.approx(1.0)


def test_wilson_stays_inside_zero_one_where_the_normal_approximation_does_not():
    # 1/20 with p +/- 1.96 se gives 0.05 - 0.0955 < 0; Wilson must not.
    rate = wilson(1, 20)
    assert 0.0 < rate.low < 0.05 < rate.high < 1.0


def test_wilson_of_nothing_has_no_value():
    rate = wilson(0, 0)
    assert (rate.numerator, rate.denominator) == (0, 0)
    assert rate.value is None and rate.low is None and rate.high is None


def test_two_proportion_p_value_against_a_hand_computed_test():
    # 30/100 vs 20/100. Pooled p = 50/200 = 0.25;
    # se = sqrt(0.25 * 0.75 * (1/100 + 1/100)) = sqrt(0.00375) = 0.0612372;
    # z = (0.30 - 0.20) / 0.0612372 = 1.63299.
    # Cross-check with the 2x2 chi-square: observed 30/70 and 20/80, expected
    # 25/75 in both rows: chi2 = 25/25 + 25/75 + 25/25 + 25/75 = 2.6667 = z^2.
    # Phi(1.633) = 0.94876 (normal table), so p = 2 * (1 - 0.94876) = 0.1025.
    z = 0.1 / math.sqrt(0.25 * 0.75 * 0.02)
    assert z**2 == pytest.approx(8 / 3)
    p = two_proportion_p_value(30, 100, 20, 100)
    assert p == pytest.approx(0.1025, abs=2e-4)
    assert p == pytest.approx(2 * (1 - NormalDist().cdf(z)), rel=1e-9)
    # The test is symmetric in the two groups.
    assert two_proportion_p_value(20, 100, 30, 100) == pytest.approx(p)


def test_two_proportion_p_value_significant_difference():
    # 10/40 vs 24/40: pooled 34/80 = 0.425; se = sqrt(0.425 * 0.575 * 2/40) = 0.110538;
    # z = (0.25 - 0.60) / 0.110538 = -3.1663; p = 2 * (1 - Phi(3.1663)) = 0.00154.
    p = two_proportion_p_value(10, 40, 24, 40)
    assert p == pytest.approx(0.00154, abs=1e-5)
    assert p < 0.05


def test_two_proportion_p_value_degenerate_inputs():
    assert two_proportion_p_value(3, 10, 3, 10) == pytest.approx(1.0)  # z = 0
    assert two_proportion_p_value(0, 10, 0, 20) == 1.0  # no variance at all
    assert two_proportion_p_value(5, 5, 7, 7) == 1.0
    assert two_proportion_p_value(1, 0, 1, 10) is None
    assert two_proportion_p_value(1, 10, 0, 0) is None


@pytest.mark.parametrize(
    ("histogram", "median"),
    [
        ({}, None),
        ({7: 0}, None),
        ({5: 1}, 5),
        ({1: 1, 2: 1, 10: 1}, 2),  # 1, 2, 10 -> 2
        ({1: 2, 5: 2}, 1),  # 1, 1, 5, 5 -> lower median 1
        ({10: 1, 0: 3}, 0),  # keys out of order: 0, 0, 0, 10 -> 0
        ({3: 1, 8: 5, 1: 1}, 8),  # 1, 3, 8, 8, 8, 8, 8 -> 8
        ({0: 2, 4: 1, 9: 2}, 4),  # 0, 0, 4, 9, 9 -> 4
    ],
)
def test_median_from_histogram(histogram, median):
    assert median_from_histogram(histogram) == median
