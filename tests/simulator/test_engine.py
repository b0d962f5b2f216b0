"""The engine against RT3's closed form, fast against exact, and the run's invariants."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_profiles import load_profile, profile_from_dict
from simulator import simulate

RT3 = load_profile("rt3-paper")


def rt3_closed_form(profile, capacity_mah=None):
    cap = profile.battery.capacity_mah if capacity_mah is None else capacity_mah
    energy = cap * 3.6 * profile.battery.nominal_voltage_v
    total = 0
    for share, khz in [(0.5, 1400000), (0.3, 1000000), (0.2, 800000)]:
        busy, _ = profile.power_at(khz)
        latency_s = profile.variant("bp").latency_at(khz) / 1e3
        x = share * energy / busy / latency_s
        assert abs(x - round(x)) > 1e-6  # not on an integer edge: the floor is unambiguous
        total += math.floor(x)
    return total


def test_rt3_paper_ideal_continuous_equals_closed_form_exactly():
    # RT3's count loses the inference in flight at each step: the ``rerun`` rule (the
    # default, ``finish``, keeps it: test_governor_step.py)
    r = simulate(RT3, battery_model="ideal", workload="continuous", governor_step="rerun")
    assert r.inferences == rt3_closed_form(RT3)
    assert r.inferences > 1_000_000
    assert r.energy_j == pytest.approx(RT3.battery.energy_j, rel=1e-12)
    assert r.inferences_per_variant == {"dense": 0, "bp": r.inferences}
    assert r.mean_accuracy is None
    assert any("no variant meets it" in w for w in r.warnings)
    assert r.deadline_misses == r.inferences  # bp is over every RT3 constraint
    assert r.level_changes == 2 and r.switches == 0


def test_exact_mode_equals_closed_form_on_a_small_battery():
    r = simulate(RT3, battery_model="ideal", capacity_mah=5, mode="exact", governor_step="rerun")
    assert r.inferences == rt3_closed_form(RT3, 5)
    assert r.aborted == 2  # the inference in flight at each governor step


def _profile(power_scale, basis, t1, t2, switch_ms, trans_us, accuracies):
    d = RT3.model_dump(mode="json", exclude_none=True)
    d["power"][0]["model"]["c_eff_f"] = 1e-10 * power_scale
    d["power"][0]["model"]["p_static_w"] = 0.01
    d["governor"]["basis"] = basis
    d["governor"]["steps"] = [
        {"battery_below": t1, "cap_khz": 1000000},
        {"battery_below": t2, "cap_khz": 800000},
    ]
    d["switch_cost"]["time_ms"] = switch_ms
    d["clusters"][0]["transition_latency_us"] = trans_us
    # a sparse set that meets every deadline, so policies switch
    d["variants"].append(
        {
            "name": "pp",
            "sparsity": 0.85,
            "nonzero_mults": 6e6,
            "nonzero_adds": 6e6,
            "provenance": "rt3-opcount",
        }
    )
    for v, acc in zip(d["variants"], accuracies, strict=True):
        v["accuracy"] = acc
        v["provenance"] = "rt3-opcount"
    return profile_from_dict(d)


def _pixel(basis, t1, t2, start_index, accuracies):
    d = load_profile("pixel-3").model_dump(mode="json", exclude_none=True)
    levels = d["clusters"][1]["levels_khz"]
    d["governor"]["basis"] = basis
    d["governor"]["start_khz"] = levels[start_index]
    d["governor"]["steps"] = [
        {"battery_below": t1, "cap_khz": levels[start_index - 5]},
        {"battery_below": t2, "cap_khz": levels[start_index - 10]},
    ]
    d["switch_cost"] = {"time_ms": 20.0, "provenance": "rt3-latency-model"}
    d["workload"]["timing_constraints"] = []  # deadlines come from the workload alone
    for v, acc in zip(d["variants"], accuracies, strict=True):
        v["accuracy"] = acc
    return profile_from_dict(d)


pixel_profiles = st.builds(
    _pixel,
    basis=st.sampled_from(["energy", "soc"]),
    t1=st.floats(0.4, 0.8),
    t2=st.floats(0.05, 0.35),
    start_index=st.integers(10, 22),
    accuracies=st.lists(st.floats(0.1, 0.99), min_size=2, max_size=2),
)
profiles = st.builds(
    _profile,
    power_scale=st.floats(0.5, 4.0),
    basis=st.sampled_from(["energy", "soc"]),
    t1=st.floats(0.4, 0.8),
    t2=st.floats(0.05, 0.35),
    switch_ms=st.floats(0.0, 60.0),
    trans_us=st.floats(0.0, 500.0),
    accuracies=st.lists(st.floats(0.1, 0.99), min_size=3, max_size=3),
)
workloads = st.sampled_from(
    ["continuous", "periodic:3", "periodic:7.3", "periodic:20", "poisson:5"]
)
models = st.sampled_from(["ideal", "peukert", "kibam", "thevenin"])
policies = st.sampled_from(["rt3", "dvfs-only", "static-sparse", "dense-max"])
FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(
    profile=profiles | pixel_profiles,
    workload=workloads | st.sampled_from(["periodic:30", "periodic:11", "poisson:40"]),
    model=models,
    policy=policies | st.just("oracle"),
    cap=st.floats(0.2, 1.0),
)
def test_fast_and_exact_agree(profile, workload, model, policy, cap):
    if profile.name == "pixel-3":
        cap *= 5  # a 3.9 W phone core: a few hundred inferences
    kw = dict(policy=policy, battery_model=model, workload=workload, capacity_mah=cap, seed=3)
    fast = simulate(profile, mode="fast", **kw)
    exact = simulate(profile, mode="exact", **kw)
    assert abs(fast.inferences - exact.inferences) <= 1
    assert fast.battery_life_s == pytest.approx(exact.battery_life_s, rel=1e-3)
    assert fast.switches == exact.switches


@FAST
@given(profile=profiles, workload=workloads, model=models, cap=st.floats(0.2, 1.0))
def test_energy_soc_and_capacity_invariants(profile, workload, model, cap):
    r = simulate(profile, battery_model=model, workload=workload, capacity_mah=cap)
    soc = r.timeseries["soc"].to_numpy()
    assert (soc[1:] <= soc[:-1] + 1e-12).all(), "SoC rose during discharge"
    assert r.timeseries["time_s"].is_monotonic_increasing
    bigger = simulate(profile, battery_model=model, workload=workload, capacity_mah=cap * 1.5)
    assert bigger.battery_life_s >= r.battery_life_s
    if model == "ideal":  # energy drawn from the battery = integral of the load's power
        nominal = cap * 3.6 * profile.battery.nominal_voltage_v
        assert r.energy_j == pytest.approx(nominal, rel=1e-9)


@settings(max_examples=10, deadline=None)
@given(profile=profiles, model=models, cap=st.floats(0.2, 1.0))
def test_energy_is_the_integral_of_power_when_always_busy(profile, model, cap):
    # continuous + switch energy at busy power: the load is the level's busy power throughout
    r = simulate(profile, battery_model=model, capacity_mah=cap, mode="exact")
    integral = sum(profile.power_at(k)[0] * s for k, s in r.time_at_level_s.items())
    assert r.energy_j == pytest.approx(integral, rel=1e-9)
    assert sum(r.time_at_level_s.values()) == pytest.approx(r.battery_life_s, rel=1e-12)


def test_deterministic_for_a_seed():
    a = simulate(RT3, workload="poisson:4", capacity_mah=0.5, seed=7)
    b = simulate(RT3, workload="poisson:4", capacity_mah=0.5, seed=7)
    c = simulate(RT3, workload="poisson:4", capacity_mah=0.5, seed=8)
    assert a.model_dump() == b.model_dump()
    assert a.timeseries.equals(b.timeseries)
    assert a.inferences != c.inferences or a.battery_life_s != c.battery_life_s


def test_periodic_drops_frames_when_latency_exceeds_the_period():
    # bp at 1.4 GHz takes 115.4 ms: at 8 Hz it fits, at 16 Hz every other frame is dropped
    ok = simulate(RT3, workload="periodic:8", governor="max", capacity_mah=0.2)
    assert ok.dropped == 0 and ok.inferences > 100
    tight = simulate(RT3, workload="periodic:16", governor="max", capacity_mah=0.2)
    assert tight.dropped == pytest.approx(tight.inferences, abs=1)
    assert tight.deadline_misses == tight.dropped + tight.inferences


def test_trace_workload_idles_after_the_last_request(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("time_s\n0\n0.5\n0.5\n2.0\n", encoding="utf-8")
    d = RT3.model_dump(mode="json", exclude_none=True)
    d["power"][0]["model"]["p_static_w"] = 0.05
    p = profile_from_dict(d)
    r = simulate(
        p, workload=f"trace:{trace}", capacity_mah=0.02, battery_model="ideal", governor="max"
    )
    assert r.inferences == 3 and r.dropped == 1
    busy_w, lat = p.power_at(1400000)[0], p.variant("bp").latency_at(1400000) / 1e3
    idle_s = (0.02 * 3.6 * 3.5 - 3 * busy_w * lat) / 0.05
    assert r.battery_life_s == pytest.approx(3 * lat + idle_s, rel=1e-9)


@pytest.mark.slow
def test_exact_mode_equals_closed_form_on_the_full_battery():
    r = simulate(RT3, battery_model="ideal", mode="exact", governor_step="rerun")
    assert r.inferences == rt3_closed_form(RT3)


@FAST
@given(
    profile=profiles,
    workload=workloads,
    model=st.sampled_from(["ideal", "peukert", "kibam"]),
    policy=policies,
    cap=st.floats(0.5, 12.0),
)
def test_fast_equals_exact_on_coulomb_models(profile, workload, model, policy, cap):
    # ideal, Peukert and KiBaM have exact cycle maps: fast mode's whole cycles lose nothing
    kw = dict(policy=policy, battery_model=model, workload=workload, capacity_mah=cap, seed=5)
    fast = simulate(profile, mode="fast", **kw)
    exact = simulate(profile, mode="exact", **kw)
    assert fast.inferences == exact.inferences
    assert fast.deadline_misses == exact.deadline_misses
    assert fast.battery_life_s == pytest.approx(exact.battery_life_s, rel=1e-6)


@pytest.mark.parametrize("model", ["ideal", "thevenin"])
def test_time_series_size_follows_the_energy_not_the_capacity(model):
    small = simulate("pixel-3", battery_model=model, workload="periodic:30")
    big = simulate("pixel-3", battery_model=model, workload="periodic:30", capacity_mah=2915e2)
    assert big.battery_life_s > 90 * small.battery_life_s
    assert 100 <= len(small.timeseries) <= 120 and 100 <= len(big.timeseries) <= 120
    # a row each time another 1% of the nominal energy is drawn
    e = small.timeseries["power_w"].to_numpy()[1:] * small.timeseries["time_s"].diff()[1:]
    assert e.max() <= 0.0101 * load_profile("pixel-3").battery.energy_j
    # a time grid on request: rows at least every sample_s (at the next request boundary)
    grid = simulate("pixel-3", battery_model=model, workload="periodic:30", sample_s=60.0)
    gaps = grid.timeseries["time_s"].diff()[1:]
    assert len(grid.timeseries) >= grid.battery_life_s / 60.0 and gaps.max() < 60.0 + 0.1
