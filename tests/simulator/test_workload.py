"""Workload arrivals: Poisson times across chunk boundaries, periodic and trace lookups."""

import numpy as np
import pytest

from simulator.workload import Arrivals, parse_workload


def test_poisson_times_are_the_seeds_cumulative_exponentials_across_chunks():
    rng = np.random.default_rng(4)
    ref = np.concatenate([rng.exponential(1 / 50, 65536) for _ in range(3)])
    ref = np.cumsum(ref)  # one cumsum over chunks = the chunked running sum
    a = Arrivals(rate_hz=50, seed=4)
    for k in (0, 1, 65535, 65536, 65537, 131072, 196000):
        assert a.at(k) == pytest.approx(ref[k], rel=1e-12)
    b = Arrivals(rate_hz=50, seed=4)
    k = b.first_at_or_after(ref[150000] + 1e-3, 0)  # jumps two chunks in one call
    assert ref[k - 1] < ref[150000] + 1e-3 <= ref[k] + 1e-9 * ref[k]


def test_periodic_and_trace_lookups():
    p = parse_workload("periodic:4").arrivals
    assert (
        p.at(3) == 0.75 and p.first_at_or_after(0.5, 0) == 2 and p.first_at_or_after(0.51, 0) == 3
    )
    t = Arrivals(times=[0.0, 0.5, 0.5, 2.0])
    assert t.first_at_or_after(0.6, 1) == 3 and t.at(4) == float("inf")
    assert t.first_at_or_after(3.0, 3) == 4


def test_a_periodic_arrival_before_now_is_not_at_or_after_it_late_in_a_long_discharge():
    """Hours into a discharge, 1e-9 of the clock is tens of microseconds: a request that
    arrived 5 us before now (one that came while the core was busy) must not count as at
    or after now when the period is 93 us. It did (relative slack on the clock alone), and
    after a governor step left the clock off the period's grid every later request was
    taken late, one by one: a full discharge of a sub-millisecond model took minutes."""
    p = Arrivals(period_s=9.3e-5)
    k = 300_000_000  # at about 27,900 s
    assert p.first_at_or_after(p.at(k) + 5e-6, 0) == k + 1
    assert p.first_at_or_after(p.at(k) * (1 + 1e-15), 0) == k  # float noise still is "at"
    assert p.first_at_or_after(p.at(k), k) == k
