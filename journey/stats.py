"""Small, dependency-free statistics the reports need.

Wilson intervals rather than the normal approximation because funnel steps of
small businesses are often a handful of customers, where p +/- 1.96 * se
produces intervals below 0 or above 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """k out of n, with its 95% Wilson score interval. `value` is None when n is 0."""

    numerator: int
    denominator: int
    value: float | None
    low: float | None
    high: float | None


def wilson(k: int, n: int, z: float = Z95) -> Rate:
    if n <= 0:
        return Rate(k, n, None, None, None)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Rate(k, n, p, max(0.0, centre - half), min(1.0, centre + half))


def two_proportion_p_value(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """Two-sided p-value of the pooled z-test that k1/n1 and k2/n2 differ."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k1 / n1 - k2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))


def median_from_histogram(buckets: dict[int, int]) -> int | None:
    """Median bucket of a {bucket: count} histogram (lower median for even totals)."""
    total = sum(buckets.values())
    if total == 0:
        return None
    target = (total + 1) // 2
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= target:
            return bucket
    return None  # pragma: no cover - unreachable, the loop always reaches total


def poisson_rate_p_value(k1: int, k2: int) -> float | None:
    """Two-sided p-value that two counts over periods of equal length share one rate.

    Conditional on the total n = k1 + k2, k1 ~ Binomial(n, 1/2) under the null;
    the exact test for small n, the normal approximation (with continuity
    correction) beyond, where the exact sum would cost O(n).
    """
    n = k1 + k2
    if n == 0:
        return None
    if n > 5000:
        z = (abs(k1 - n / 2) - 0.5) / math.sqrt(n / 4)
        return min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))

    def log_pmf(k: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2)

    observed = log_pmf(k1)
    total = sum(math.exp(log_pmf(k)) for k in range(n + 1) if log_pmf(k) <= observed + 1e-9)
    return min(1.0, total)
