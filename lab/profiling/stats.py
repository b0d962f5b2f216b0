"""Latency statistics: a distribution-free confidence interval of the median, and a
repeat-until-stable loop.

The interval is the order-statistic one: with ``n`` samples, the number below the true
median is Binomial(n, 1/2), so ``[x_(j), x_(k)]`` covers it with probability
``P(j <= B < k)``; ``j`` and ``k`` are chosen symmetric and as tight as the confidence
allows. It needs no assumption about the shape of the latency distribution (which on a
real CPU is skewed, with a long right tail).

>>> lo, hi = median_ci([10.0 + 0.01 * i for i in range(50)])
>>> round(lo, 2), round(hi, 2)
(10.17, 10.32)
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def _binom_cdf_half(n: int) -> list[float]:
    """CDF of Binomial(n, 1/2) at 0..n."""
    logp = -n * math.log(2.0)
    out, acc = [], 0.0
    for i in range(n + 1):
        acc += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + logp)
        out.append(min(acc, 1.0))
    return out


@functools.lru_cache(maxsize=4096)
def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """0-based ranks ``(j, k)`` of the order statistics bounding the median, or None when
    ``n`` is too small for ``confidence``."""
    if n < 2:
        return None
    cdf = _binom_cdf_half(n)
    # Symmetric ranks: coverage of [x_(j), x_(n-1-j)] (0-based) is P(j < B <= n-1-j)
    # = cdf[n-1-j] - cdf[j] ... computed with 1-based order statistics j+1 and n-j.
    best = None
    for j in range(0, n // 2):
        k = n - 1 - j
        coverage = cdf[k] - cdf[j]  # P(j+1 <= B <= k) with B the count below the median
        if coverage >= confidence:
            best = (j, k)
        else:
            break
    return best


def median(xs: Sequence[float]) -> float:
    """The sample median."""
    s = sorted(xs)
    n = len(s)
    if n == 0:
        raise ValueError("median of no samples")
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def median_ci(xs: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The order-statistic confidence interval of the median (``(-inf, inf)`` if too few)."""
    ranks = median_ci_ranks(len(xs), confidence)
    if ranks is None:
        return -math.inf, math.inf
    s = sorted(xs)
    return s[ranks[0]], s[ranks[1]]


@dataclass(frozen=True)
class LatencyStats:
    """Repeated timings of one workload: median and its CI, in milliseconds."""

    samples_ms: tuple[float, ...]
    median_ms: float
    ci_low_ms: float
    ci_high_ms: float
    converged: bool
    warmup: int
    elapsed_s: float

    @property
    def runs(self) -> int:
        """Measured runs (warm-up excluded)."""
        return len(self.samples_ms)

    @property
    def rel_halfwidth(self) -> float:
        """Half the CI's width over the median."""
        return (self.ci_high_ms - self.ci_low_ms) / 2 / self.median_ms

    @property
    def noise_ms(self) -> float:
        """Half the CI's width: what two medians must be within to agree."""
        return (self.ci_high_ms - self.ci_low_ms) / 2


@dataclass(frozen=True, kw_only=True)
class StopRule:
    """When a latency measurement stops: after ``warmup`` untimed runs, timed runs until
    the median's CI half-width is within ``rel_ci`` of the median (checked from ``min_runs``
    runs on), ``max_runs`` runs, or ``time_cap_s`` seconds of timed runs. A profiling
    ``Plan`` is one."""

    warmup: int = 5
    min_runs: int = 10
    max_runs: int = 1000
    rel_ci: float = 0.02
    time_cap_s: float = 10.0


def measure_until_stable(
    run_once: Callable[[], object],
    rule: StopRule | None = None,
    confidence: float = 0.95,
    clock: Callable[[], float] = time.perf_counter,
    between: Callable[[], None] | None = None,
) -> LatencyStats:
    """Warm up, then time ``run_once`` until ``rule`` (default :class:`StopRule`'s
    defaults) says stop: the median's CI half-width within ``rule.rel_ci`` of the median,
    ``rule.max_runs`` runs, or ``rule.time_cap_s`` passed.

    ``between`` runs after each timed run, outside the timing (a frequency check).
    """
    rule = rule if rule is not None else StopRule()
    warmup, min_runs, max_runs = rule.warmup, rule.min_runs, rule.max_runs
    for _ in range(warmup):
        run_once()
    start = clock()
    samples: list[float] = []
    converged = False
    while len(samples) < max_runs:
        t0 = clock()
        run_once()
        samples.append((clock() - t0) * 1e3)
        if between is not None:
            between()
        if len(samples) >= min_runs:
            lo, hi = median_ci(samples, confidence)
            med = median(samples)
            if med > 0 and (hi - lo) / 2 <= rule.rel_ci * med:
                converged = True
                break
        if clock() - start > rule.time_cap_s:
            break
    lo, hi = median_ci(samples, confidence)
    med = median(samples)
    if not math.isfinite(lo):
        lo, hi = min(samples), max(samples)
    return LatencyStats(tuple(samples), med, lo, hi, converged, warmup, clock() - start)
