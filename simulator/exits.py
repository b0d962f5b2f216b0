"""Early exit: a variant whose latency per inference depends on the exit its input takes.

An early-exit variant (a bundle of scheme ``early-exit``: exit heads after some layers and
a confidence threshold) has no single latency at a level but a distribution: points
``(latency, share)``, one per exit, the share of inputs leaving there. Both modes give
each inference its own exit: inference ``j`` of a run (counted over the whole discharge,
every variant with a distribution) takes the exit whose cumulative-share interval holds

    x_j = (s + j * A) mod 2**64

where ``s`` is drawn once from the run's seed and ``A`` is 2**64 over the golden ratio (a
Weyl sequence, the additive low-discrepancy sequence). Each ``x_j / 2**64`` is uniform on
[0, 1) over the seed, so each inference's exit is a draw from the histogram; the draws
are stratified, not independent: over any ``n`` consecutive inferences each exit's count
is within a few of ``n`` times its share, as it is when a test set is run through in a
shuffled order (each pass holds the histogram exactly). That is what lets ``fast`` mode
jump whole cycles and still count what ``exact`` mode counts one inference at a time: the
number of inferences ``j0 .. j0 + n - 1`` taking each exit is a sum of floors of a linear
function, which ``floor_sum`` gives exactly in O(log n) integer steps (``ExitDistribution
.counts``); ``exact`` mode classifies each ``x_j`` itself. The two agree to the count.

One inference keeps its draw: when a governor step catches it, the rest runs at the new
level's latency for the same quantile (its exit), and a re-run (``rerun`` rule) takes the
same exit again.

>>> d = ExitDistribution.of([(0.010, 0.5), (0.030, 0.5)])
>>> d.mean_s
0.02
>>> draws = ExitDraws.seeded(0)
>>> d.counts(draws, 0, 1000), sum(d.index(draws.at(j)) == 1 for j in range(1000))
((499, 501), 501)
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

MODULUS = 1 << 64
# 2**64 / golden ratio, rounded to odd: the Weyl sequence's step
STEP = 0x9E3779B97F4A7C15


def floor_sum(n: int, m: int, a: int, b: int) -> int:
    """``sum(floor((a * i + b) / m) for i in range(n))`` for integers ``n, m > 0``, ``a, b
    >= 0``, in O(log m) steps (the Euclid-like reduction of a floor sum).

    >>> floor_sum(10, 7, 3, 5) == sum((3 * i + 5) // 7 for i in range(10))
    True
    """
    total = 0
    while n > 0:
        if a >= m:
            total += (n - 1) * n // 2 * (a // m)
            a %= m
        if b >= m:
            total += n * (b // m)
            b %= m
        y_max = a * n + b
        if y_max < m:
            break
        n, b = y_max // m, y_max % m
        m, a = a, m
    return total


@dataclass(frozen=True)
class ExitDraws:
    """The run's draw order: ``at(j)`` is inference ``j``'s point on [0, 2**64);
    ``start`` is the sequence's offset ``s``."""

    start: int

    @classmethod
    def seeded(cls, seed: int) -> ExitDraws:
        """The draw order of a run seeded ``seed`` (its own stream: the workload's arrivals
        draw nothing less or more for it)."""
        return cls(random.Random(f"rt3lab-exit-{seed}").getrandbits(64))

    def at(self, j: int) -> int:
        """Inference ``j``'s point."""
        return (self.start + j * STEP) % MODULUS

    def below(self, j0: int, n: int, threshold: int) -> int:
        """How many of inferences ``j0 .. j0 + n - 1`` have a point below ``threshold``."""
        if n <= 0 or threshold <= 0:
            return 0
        if threshold >= MODULUS:
            return n
        b = (self.start + j0 * STEP) % MODULUS
        # [x mod M < T] = floor(x / M) - floor((x + M - T) / M) + 1
        return (
            floor_sum(n, MODULUS, STEP, b)
            - floor_sum(n, MODULUS, STEP, b + MODULUS - threshold)
            + n
        )


@dataclass(frozen=True)
class ExitDistribution:
    """A variant's latency at one level as exits: ``latency_s[i]`` with ``share[i]`` of the
    inferences (shares normalised to sum to 1), ``cuts`` the cumulative shares on
    [0, 2**64) that split the draws between exits, ``mean_s`` the share-weighted mean."""

    latency_s: tuple[float, ...]
    share: tuple[float, ...]
    cuts: tuple[int, ...]
    mean_s: float

    @classmethod
    def of(cls, points: Sequence[tuple[float, float]]) -> ExitDistribution:
        """From ``(latency_s, share)`` points (shares > 0, summing to about 1)."""
        total = math.fsum(s for _, s in points)
        share = tuple(s / total for _, s in points)
        cuts, acc = [], 0.0
        for s in share[:-1]:
            acc += s
            cuts.append(min(MODULUS, round(acc * MODULUS)))
        lat = tuple(float(x) for x, _ in points)
        mean = math.fsum(x * s for x, s in zip(lat, share, strict=True))
        return cls(lat, share, tuple(cuts), mean)

    def index(self, point: int) -> int:
        """The exit a draw ``point`` takes."""
        return bisect_right(self.cuts, point)

    def latency_at(self, point: int) -> float:
        """The latency (s) of the exit a draw ``point`` takes."""
        return self.latency_s[bisect_right(self.cuts, point)]

    def counts(self, draws: ExitDraws, j0: int, n: int) -> tuple[int, ...]:
        """How many of inferences ``j0 .. j0 + n - 1`` take each exit (exactly what
        classifying each draw gives)."""
        below = [0, *(draws.below(j0, n, c) for c in self.cuts), n]
        return tuple(below[i + 1] - below[i] for i in range(len(self.latency_s)))

    def scaled(self, mean_s: float) -> ExitDistribution:
        """The same shape (shares, latency ratios) with its mean moved to ``mean_s``."""
        f = mean_s / self.mean_s
        return ExitDistribution(tuple(x * f for x in self.latency_s), self.share, self.cuts, mean_s)
