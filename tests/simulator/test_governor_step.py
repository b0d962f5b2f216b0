"""What a governor step does to the inference in flight (issue 29): ``finish`` (the default:
the work done stays done, the rest runs at the new clock on the same pattern set, against
the deadline it started with) or ``rerun`` (the rule before: abandoned, counted in
``aborted``, re-run at the new level). Fast and exact mode agree under both."""

import json
import math

import pytest
from cli_runner import rt3lab
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_profiles import load_profile, profile_from_dict
from device_profiles.schema import Published, Variant
from simulator import SimulatorInputError, headline_workload, simulate
from simulator.inflight import GOVERNOR_STEPS
from simulator.sweep import Cell, SweepConfigError, cells, run_cell, validate_config

RT3 = load_profile("rt3-paper")
PROV = Published(kind="published", source="test")
# As the demo's bundle: one set for the two top levels (78 ms at 1 GHz, 98 ms at 800 MHz,
# over that level's 94 ms) and a sparser one for 800 MHz (65 ms): rt3 switches at the
# last governor step.
DEMO_SETS = [
    Variant(name="pp-hi", accuracy=0.30, sparsity=0.83, nonzero_mults=9e6, nonzero_adds=9e6,
            provenance=PROV),
    Variant(name="pp-lo", accuracy=0.28, sparsity=0.88, nonzero_mults=6e6, nonzero_adds=6e6,
            provenance=PROV),
]  # fmt: skip
PROPS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _profile(basis, t1, t2, switch_ms, trans_us):
    d = RT3.model_dump(mode="json", exclude_none=True)
    d["governor"]["basis"] = basis
    d["governor"]["steps"] = [
        {"battery_below": t1, "cap_khz": 1000000},
        {"battery_below": t2, "cap_khz": 800000},
    ]
    d["switch_cost"]["time_ms"] = switch_ms
    d["clusters"][0]["transition_latency_us"] = trans_us
    return profile_from_dict(d)


profiles = st.builds(
    _profile,
    basis=st.sampled_from(["energy", "soc"]),
    t1=st.floats(0.4, 0.8),
    t2=st.floats(0.05, 0.35),
    switch_ms=st.floats(0.0, 60.0),
    trans_us=st.floats(0.0, 500.0),
)


def _counts(r):
    return (
        r.inferences,
        r.dropped,
        r.aborted,
        r.deadline_misses,
        r.switches,
        r.level_changes,
        r.inferences_per_variant,
    )


@PROPS
@given(
    profile=profiles,
    rule=st.sampled_from(GOVERNOR_STEPS),
    policy=st.sampled_from(["rt3", "dvfs-only:pp-hi", "static-sparse"]),
    workload=st.sampled_from(["continuous", "periodic:3", "periodic:8.7", "poisson:5"]),
    model=st.sampled_from(["ideal", "peukert", "kibam"]),
    queue=st.sampled_from(["none", "late", "drop"]),
    sample=st.none() | st.floats(0.5, 40.0),
    cap=st.floats(0.2, 2.0),
    seed=st.integers(0, 3),
)
def test_fast_and_exact_agree_under_both_rules(
    profile, rule, policy, workload, model, queue, sample, cap, seed
):
    kw = dict(
        policy=policy,
        battery_model=model,
        workload=workload,
        capacity_mah=cap,
        queue=queue,
        governor_sample_s=sample,
        seed=seed,
        variants=DEMO_SETS,
        governor_step=rule,
    )
    fast = simulate(profile, mode="fast", **kw)
    exact = simulate(profile, mode="exact", **kw)
    assert _counts(fast) == _counts(exact)
    assert fast.battery_life_s == pytest.approx(exact.battery_life_s, rel=1e-6)
    assert fast.governor_step == exact.governor_step == rule
    if rule == "finish":
        assert fast.aborted == 0


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule=st.sampled_from(GOVERNOR_STEPS),
    workload=st.sampled_from(["continuous", "periodic:30", "poisson:40"]),
    cap=st.floats(1.0, 5.0),
)
def test_fast_and_exact_agree_on_thevenin_under_both_rules(rule, workload, cap):
    # the Thevenin cycle is averaged in fast mode: the tolerance of test_fast_and_exact_agree
    kw = dict(battery_model="thevenin", workload=workload, capacity_mah=cap, governor_step=rule)
    fast = simulate("pixel-3", mode="fast", **kw)
    exact = simulate("pixel-3", mode="exact", **kw)
    assert abs(fast.inferences - exact.inferences) <= 1
    assert fast.battery_life_s == pytest.approx(exact.battery_life_s, rel=1e-3)
    assert (fast.aborted, fast.switches) == (exact.aborted, exact.switches)


def _work(profile, capacity_mah):
    """Inferences' worth of work at each of rt3-paper's stages (ideal battery, back to
    back, bp): the energy share over busy power and latency."""
    energy = capacity_mah * 3.6 * profile.battery.nominal_voltage_v
    out = []
    for share, khz in [(0.5, 1400000), (0.3, 1000000), (0.2, 800000)]:
        out.append(
            share * energy / profile.power_at(khz)[0] / profile.variant("bp").latency_at(khz) * 1e3
        )
    return out


@pytest.mark.parametrize("mode,cap", [("fast", 3000), ("exact", 2), ("exact", 5)])
def test_finish_keeps_the_work_done_at_each_step(mode, cap):
    # rerun: RT3's closed form, each stage's whole inferences, sum floor(x_i) (the one in
    # flight at a step is lost); finish: the fractions carry over, floor(sum x_i)
    # (rt3-paper has no transition stall)
    x = _work(RT3, cap)
    assert abs(sum(x) - round(sum(x))) > 1e-6 and all(abs(v - round(v)) > 1e-6 for v in x)
    kw = dict(battery_model="ideal", capacity_mah=cap, mode=mode)
    finish = simulate(RT3, **kw)
    rerun = simulate(RT3, governor_step="rerun", **kw)
    assert finish.governor_step == "finish" and rerun.governor_step == "rerun"
    assert finish.inferences == math.floor(sum(x))
    assert rerun.inferences == sum(math.floor(v) for v in x)
    if cap != 5:  # at 5 mAh the three fractions add up to less than one inference
        assert finish.inferences == rerun.inferences + 1
    assert (finish.aborted, rerun.aborted) == (0, 2)
    assert finish.energy_j == pytest.approx(rerun.energy_j, rel=1e-12)  # the same battery


def _events(r, kind):
    ev = r.events
    return list(ev[ev["kind"] == kind]["time_s"])


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_the_inference_in_flight_finishes_on_its_pattern_set_then_the_switch(mode):
    kw = dict(battery_model="ideal", capacity_mah=0.5, variants=DEMO_SETS, mode=mode)
    finish = simulate(RT3, **kw)
    rerun = simulate(RT3, governor_step="rerun", **kw)
    for r in (finish, rerun):
        assert r.variant_at_level[800000] == "pp-lo" and r.switches == 1
    step = _events(finish, "level")[-1]  # the level follows the step at once
    (switch,) = _events(finish, "switch")
    pp_hi_800 = RT3.latency_model.latency_ms(9e6, 9e6, 800000) / 1e3
    # the switch waits for the rest of pp-hi's inference at 800 MHz, no longer
    assert 0 < switch - step < pp_hi_800
    assert _events(rerun, "switch") == [_events(rerun, "level")[-1]]  # the re-run switches first
    assert finish.inferences_per_variant["pp-hi"] == rerun.inferences_per_variant["pp-hi"] + 1


def _late_fraction_capacity():
    """A capacity at which the last governor step (1 GHz -> 800 MHz) catches a pp-hi
    inference in its first 15% (no switch cost, back to back, ideal battery): the rest at
    800 MHz then ends after 800 MHz's 94 ms deadline but within 1 GHz's 104 ms."""
    lat = {k: RT3.latency_model.latency_ms(9e6, 9e6, k) for k in (1400000, 1000000, 800000)}
    for cap in [0.5 + 0.01 * i for i in range(200)]:
        energy = cap * 3.6 * RT3.battery.nominal_voltage_v
        work = sum(
            share * energy / RT3.power_at(khz)[0] / lat[khz] * 1e3
            for share, khz in [(0.5, 1400000), (0.3, 1000000)]
        )
        done = work - math.floor(work)
        if 0.02 < done < 0.15:
            return cap, done * lat[1000000] + (1 - done) * lat[800000]
    raise AssertionError("no capacity found")


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_the_inference_in_flight_keeps_the_deadline_it_started_with(mode):
    d = RT3.model_dump(mode="json", exclude_none=True)
    d["switch_cost"]["time_ms"] = 0.0  # no switch cost: only the step can make a miss
    profile = profile_from_dict(d)
    cap, response_ms = _late_fraction_capacity()
    assert RT3.deadline_ms(800000) < response_ms < RT3.deadline_ms(1000000)
    kw = dict(battery_model="ideal", capacity_mah=cap, variants=DEMO_SETS, mode=mode)
    finish = simulate(profile, **kw)
    assert finish.deadline_misses == 0 and finish.aborted == 0


def test_rt3_with_the_default_misses_no_more_than_with_rerun_under_the_periodic_workload():
    # rt3-paper with pattern sets that meet its deadlines (as the demo's bundle), the
    # headline workload, the full battery: a re-run at each step made rt3's misses
    kw = dict(workload=headline_workload(RT3), variants=DEMO_SETS)
    finish = simulate(RT3, **kw)
    rerun = simulate(RT3, governor_step="rerun", **kw)
    assert finish.governor_step == "finish" and finish.aborted == 0
    assert rerun.aborted == 2 and rerun.level_changes == finish.level_changes == 2
    assert finish.deadline_misses <= rerun.deadline_misses
    assert finish.on_time_inferences >= rerun.on_time_inferences


def test_cli_governor_step_rerun_is_recorded_and_counted():
    base = ["simulate", "--capacity-mah", "1", "--json"]
    default = json.loads(rt3lab(*base).stdout)
    rerun = rt3lab(*base, "--governor-step", "rerun")
    assert rerun.code == 0, rerun.stderr
    rerun = json.loads(rerun.stdout)
    assert (default["governor_step"], default["aborted"]) == ("finish", 0)
    assert (rerun["governor_step"], rerun["aborted"]) == ("rerun", 2)
    assert rerun["inferences"] == 616 and default["inferences"] == 617


def test_a_bad_governor_step_is_one_line_and_exit_2():
    out = rt3lab("simulate", "--capacity-mah", "1", "--governor-step", "abort")
    assert out.code == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "governor_step: unknown 'abort', expected finish or rerun" in lines[0]
    with pytest.raises(SimulatorInputError, match="governor_step"):
        simulate(RT3, capacity_mah=1, governor_step="Finish")


def test_a_sweep_takes_the_rule_and_a_rerun_cell_keeps_its_old_id():
    base = {"profiles": ["rt3-paper"], "policies": ["rt3"], "capacities_mah": [1.0]}
    assert cells(validate_config(base))[0].governor_step == "finish"
    (cell,) = cells(validate_config({**base, "governor_step": "rerun"}))
    row = run_cell(cell)
    assert row["governor_step"] == "rerun" and row["inferences"] == 616
    # a cell id from before the rule existed (the doctest of Cell.cell_id)
    old = Cell("rt3-paper", None, 10.0, "continuous", "rt3", 0, "fast", None, "rerun")
    assert old.cell_id == "e6a43d8da18c82d74bc1"
    assert Cell("rt3-paper", None, 10.0, "continuous", "rt3", 0, "fast").cell_id != old.cell_id
    with pytest.raises(SweepConfigError, match="governor_step: expected 'finish' or 'rerun'"):
        validate_config({**base, "governor_step": "abort"})
