"""Fast mode's whole cycles for an early-exit variant (``simulator.exits``).

At a level where the variant's latency is a distribution, a cycle is one inference and
what follows it until the next starts, and its length depends on the inference's exit:

- ``continuous``: back to back, the cycle is the exit's latency;
- ``periodic`` without a queue: a request every period ``P``, each starting as it arrives;
  an inference of latency ``L`` holds the core for ``ceil(L / P)`` periods, the requests
  arriving meanwhile are dropped (misses), the next starts on the next arrival: the cycle
  is ``ceil(L / P) * P``. With a queue (``late``, ``drop``) an overrun delays the requests
  behind it, which depends on the order of the exits: fast mode then steps request by
  request whenever some exit overruns the period, as ``exact`` mode does;
- ``poisson`` (``mean`` mode): the latency, then the mean gap to the next arrival.

The ``n`` inferences a jump covers are inferences ``j0 .. j0 + n - 1`` of the run's draw
order, and their exits are counted exactly (``ExitDistribution.counts``): the completions,
each exit's misses (its latency over the deadline: every inference starts on arrival), the
drops, the time and the energy (busy power over the summed latencies, idle power over the
rest) are what ``exact`` mode counts one inference at a time. Only the battery sees the
jump as ``n`` equal cycles of the mean of those ``n``: exact for the ideal and Peukert
models (drain linear in each phase's time), cycle-averaged for KiBaM and Thevenin, as
fast mode's periodic cycles are.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from simulator.exits import ExitDistribution

if TYPE_CHECKING:
    from simulator.engine import Machine

_TOL = 1e-9
_TRIES = 4  # fewer cycles after the battery refused the jump; then step one request


def exit_cycles(m: Machine, lats: list[float]) -> tuple[list[int], list[float]] | None:
    """(requests, seconds) of the cycle each exit makes under ``m``'s workload, None when
    requests would queue behind an overrun (stepped instead)."""
    kind = m.wl.kind
    if kind == "periodic":
        period = m.wl.period_s
        periods = [max(1, math.ceil(x / period - _TOL)) for x in lats]
        if max(periods) > 1 and m.queue != "none":
            return None
        return periods, [p * period for p in periods]
    if kind == "poisson":
        gap = 1.0 / m.wl.arrivals.rate_hz
        return [1] * len(lats), [x + gap for x in lats]
    return [1] * len(lats), list(lats)


def batch_exits(m: Machine, dist: ExitDistribution) -> bool:
    """``Machine.batch`` where the variant's latency is ``dist``: jump whole cycles with
    their exits counted exactly; True when it stopped only at the time-series grid."""
    khz = m.khz
    lats = [x * m.slowdown for x in dist.latency_s]
    made = exit_cycles(m, lats)
    if made is None:
        return False
    requests, cycles = made
    busy = m.dev.busy_w[khz] + m.extra_w
    idle = m.dev.idle_w[khz] + m.extra_w
    energy = [busy * x + idle * (c - x) for x, c in zip(lats, cycles, strict=True)]
    mean_cycle = math.fsum(s * c for s, c in zip(dist.share, cycles, strict=True))
    mean_w = math.fsum(s * e for s, e in zip(dist.share, energy, strict=True)) / mean_cycle
    heavy = max(range(len(lats)), key=energy.__getitem__)
    caps = (mean_w, mean_cycle, max(cycles), energy[heavy] / cycles[heavy], cycles[heavy])
    n_grid, n = m.cycle_caps(*caps)
    floor = m.soc_floor()
    for _ in range(_TRIES):
        if n <= 0:
            return False
        counts = dist.counts(m.exit_draws, m.drawn, n)
        busy_s = math.fsum(c * x for c, x in zip(counts, lats, strict=True))
        span = math.fsum(c * y for c, y in zip(counts, cycles, strict=True))
        idle_s = max(0.0, span - busy_s)
        phases = ((busy, busy_s / n), (idle, idle_s / n)) if idle_s > 0 else ((busy, busy_s / n),)
        state = m.bat.snapshot()
        got = m.bat.safe_cycles(phases, n, floor)
        if got == n:
            break
        m.bat.restore(state)  # the jump's mean cycle changes with n: count again
        n = got
    else:
        return False
    limit = m.deadline()
    drawn = m.tally.energy_j
    m.tally.energy_j += busy * busy_s + idle * idle_s
    m.tally.time_at_level_s[khz] += span
    for c, x in zip(counts, lats, strict=True):
        m._complete(c, x, limit)
    m.drawn += n
    m.after_cycles(n, sum(c * r for c, r in zip(counts, requests, strict=True)), span, busy_s)
    if m.row_due():
        m._sample((m.tally.energy_j - drawn) / span)
    return n == n_grid
