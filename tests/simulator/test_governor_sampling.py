"""A governor that samples the battery at its own period: a threshold crossing takes effect
at the next sample, not at once; fast and exact agree."""

import math

import pytest

from simulator import simulate
from simulator.errors import SimulatorInputError


def _steps(result):
    ev = result.events
    return list(ev[ev["kind"] == "governor"]["time_s"])


@pytest.mark.parametrize("period", [7.3, 60.0])
@pytest.mark.parametrize("model", ["ideal", "peukert"])
def test_a_sampled_step_lands_on_the_next_sample(period, model):
    kw = dict(battery_model=model, capacity_mah=20, workload="periodic:5")
    instant = simulate("rt3-paper", **kw)
    sampled = {
        m: simulate("rt3-paper", mode=m, governor_sample_s=period, **kw) for m in ("fast", "exact")
    }
    first_instant = _steps(instant)[0]
    for r in sampled.values():
        steps = _steps(r)
        assert steps, "no governor step"
        for t in steps:
            assert t / period == pytest.approx(round(t / period), abs=1e-9)  # on a sample
        # the first crossing is the same as without sampling; the step waits for a sample
        assert steps[0] == pytest.approx(math.ceil(first_instant / period) * period)
    fast, exact = sampled["fast"], sampled["exact"]
    assert (fast.inferences, fast.aborted, fast.deadline_misses) == (
        exact.inferences,
        exact.aborted,
        exact.deadline_misses,
    )
    assert fast.battery_life_s == pytest.approx(exact.battery_life_s, rel=1e-9)


def test_governor_sample_period_must_be_positive():
    with pytest.raises(SimulatorInputError, match="governor_sample_s: must be > 0"):
        simulate("rt3-paper", governor_sample_s=0)
