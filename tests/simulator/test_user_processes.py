"""User simpy processes beside the device: the README's background load and thermal throttle
change the discharge as stated, agree across modes, and leave a run without them as it was."""

import itertools

import pytest

from simulator import simulate
from simulator.examples import background_load, thermal_throttle

KW = dict(battery_model="thevenin", capacity_mah=50, workload="periodic:30")


def test_no_processes_changes_nothing():
    a = simulate("pixel-3", **KW)
    b = simulate("pixel-3", processes=[], **KW)
    assert a.model_dump() == b.model_dump()


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_background_load_shortens_the_discharge(mode):
    plain = simulate("pixel-3", mode=mode, **KW)
    bg = simulate("pixel-3", mode=mode, processes=[background_load(60, 20, 0.5)], **KW)
    assert bg.battery_life_s < 0.95 * plain.battery_life_s
    assert bg.inferences < plain.inferences
    # the extra power is drawn from the battery: energy per inference rises
    assert bg.energy_j / bg.inferences > plain.energy_j / plain.inferences


def test_thermal_throttle_engages_and_slows_inference_in_both_modes():
    runs = {}
    for mode in ("fast", "exact"):
        th = thermal_throttle(r_th_k_per_w=20.0, tau_s=120.0, hot_c=70.0, cool_c=60.0)
        runs[mode] = (simulate("pixel-3", mode=mode, processes=[th], **KW), th.trace)
    plain = simulate("pixel-3", **KW)
    (fast, trace), (exact, _) = runs["fast"], runs["exact"]
    temps = [temp for _, temp, _ in trace]
    assert max(temps) > 70.0 and any(s > 1.0 for _, _, s in trace)
    # hysteresis: once throttled, it stays throttled until below 60 C
    for (_, _, s0), (_, t1, s1) in itertools.pairwise(trace):
        if s0 > 1.0 and t1 >= 60.0:
            assert s1 > 1.0
    assert fast.inferences < plain.inferences
    assert abs(fast.inferences - exact.inferences) <= 1
    assert fast.battery_life_s == pytest.approx(exact.battery_life_s, rel=1e-3)
