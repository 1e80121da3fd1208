"""Spike detection: is a topic's (or term's) volume above its OWN baseline?

For each bucket we compare the count with the buckets of a rolling window before it
(buckets already flagged as part of a spike are left out, so a long spike does not become
its own baseline). The baseline's mean ``m`` and variance ``v`` give a count model:
Poisson when ``v <= m``, otherwise a negative binomial with the same mean and variance
(over-dispersed series, e.g. with a daily rhythm, need a bigger jump to count). A bucket is
anomalous when the upper-tail probability ``P(X >= count)`` is below ``alpha`` (significant),
the count is at least ``min_ratio`` times the baseline mean (large enough to matter: a busy
topic going from 30 to 48 an hour is significant but not an incident) and at least
``min_count`` (three questions in an hour after none is not an incident either).

Consecutive anomalous buckets are ONE spike (an episode); the alert for it is keyed by the
episode's first bucket, so it is posted once however long the spike lasts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SpikeParams:
    window: int = 48  # buckets of baseline before the one tested
    min_history: int = 12  # fewer baseline buckets than this: no test
    alpha: float = 1e-4  # tail probability below which a bucket is anomalous
    min_count: int = 5  # ... and at least this many in the bucket
    min_ratio: float = 2.0  # ... and at least this many times the baseline mean (effect size)
    floor_rate: float = 0.2  # a baseline mean below this is raised to it (rare series)


@dataclass(frozen=True, slots=True)
class Spike:
    start: int  # index of the first anomalous bucket
    end: int  # index of the last anomalous bucket (inclusive)
    peak: int  # index of the largest count
    peak_count: int
    expected: float  # baseline mean at the start
    p_value: float  # tail probability at the start

    @property
    def ongoing_at(self) -> int:
        return self.end


def poisson_sf(x: int, lam: float) -> float:
    """``P(X >= x)`` for ``X ~ Poisson(lam)``, summed over the upper tail (accurate when tiny)."""
    if x <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    if x <= lam:  # not in the upper tail: use the complement of the (short) lower sum
        lower = sum(math.exp(k * math.log(lam) - lam - math.lgamma(k + 1)) for k in range(x))
        return max(0.0, min(1.0, 1.0 - lower))
    total = 0.0
    k = x
    while True:
        term = math.exp(k * math.log(lam) - lam - math.lgamma(k + 1))
        total += term
        if term < total * 1e-15 or k > x + 10_000:
            return min(1.0, total)
        k += 1


def negbin_sf(x: int, mean: float, var: float) -> float:
    """``P(X >= x)`` for a negative binomial with this mean and variance (``var > mean``)."""
    if x <= 0:
        return 1.0
    r = mean * mean / (var - mean)
    p = r / (r + mean)  # success probability; pmf(k) = C(k+r-1, k) p^r (1-p)^k
    log_p, log_q = math.log(p), math.log1p(-p)

    def pmf(k: int) -> float:
        return math.exp(math.lgamma(k + r) - math.lgamma(r) - math.lgamma(k + 1) + r * log_p + k * log_q)

    if x <= mean:
        return max(0.0, min(1.0, 1.0 - sum(pmf(k) for k in range(x))))
    total = 0.0
    k = x
    while True:
        term = pmf(k)
        total += term
        if term < total * 1e-15 or k > x + 100_000:
            return min(1.0, total)
        k += 1


def tail_probability(count: int, baseline: Sequence[int], floor_rate: float = 0.2) -> tuple[float, float]:
    """``(p, expected)``: how surprising ``count`` is given ``baseline``."""
    n = len(baseline)
    mean = max(sum(baseline) / n, floor_rate)
    var = sum((b - mean) ** 2 for b in baseline) / max(n - 1, 1)
    if var > mean * 1.05:
        return negbin_sf(count, mean, var), mean
    return poisson_sf(count, mean), mean


def detect(series: Sequence[int], params: SpikeParams = SpikeParams()) -> list[Spike]:
    """Every spike (episode of consecutive anomalous buckets) in ``series``, oldest first."""
    anomalous = [False] * len(series)
    spikes: list[Spike] = []
    current: dict[str, float] | None = None
    for i, count in enumerate(series):
        lo = max(0, i - params.window)
        baseline = [series[j] for j in range(lo, i) if not anomalous[j]]
        hit = False
        p, expected = 1.0, 0.0
        if len(baseline) >= params.min_history and count >= params.min_count:
            p, expected = tail_probability(count, baseline, params.floor_rate)
            hit = p < params.alpha and count >= params.min_ratio * expected
        anomalous[i] = hit
        if hit:
            if current is None:
                current = {"start": i, "peak": i, "peak_count": count, "expected": expected, "p": p}
            elif count > current["peak_count"]:
                current["peak"], current["peak_count"] = i, count
            current["end"] = i
        elif current is not None:
            spikes.append(_spike(current, i - 1))
            current = None
    if current is not None:
        spikes.append(_spike(current, len(series) - 1))
    return spikes


def _spike(c: dict[str, float], end: int) -> Spike:
    return Spike(
        start=int(c["start"]),
        end=end,
        peak=int(c["peak"]),
        peak_count=int(c["peak_count"]),
        expected=round(c["expected"], 3),
        p_value=c["p"],
    )
