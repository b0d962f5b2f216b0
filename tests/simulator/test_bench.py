"""``rt3lab bench simulator``: the naive simpy yardstick and the bench's JSON keys."""

import json

import pytest
from typer.testing import CliRunner

from device_profiles import load_profile
from simulator import simulate
from simulator.bench import app, naive_simpy


@pytest.mark.parametrize("cap", [0.5, 3.0])
def test_naive_simpy_model_runs_the_same_discharge_as_exact_mode(cap):
    # the yardstick must simulate the same life, or the speed ratio compares nothing
    life, n = naive_simpy(load_profile("rt3-paper"), cap)
    r = simulate("rt3-paper", battery_model="ideal", capacity_mah=cap, mode="exact")
    assert abs(n - r.inferences) <= 2
    assert life == pytest.approx(r.battery_life_s, rel=1e-2)


@pytest.mark.slow
def test_bench_simulator_json_has_the_issue_keys():
    r = CliRunner().invoke(
        app,
        ["--json", "--repeats", "1", "--naive-capacity-mah", "20", "--agreement-capacity-mah", "2"],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert set(out["fast_s_by_capacity"]) == {"1x", "10x", "100x"}
    assert out["exact_over_naive_simpy"] > 0
    # pixel-3's Thevenin discharge: fast mode steps whole cycles on the cycle-averaged cell,
    # so its count may land an inference or two from exact mode's (2 of 186,358 here); the
    # bar is the issue's, 1e-3 of the count and of the life
    assert abs(out["inferences_diff"]) <= 1e-3 * out["exact_inferences"]
    assert out["life_rel_diff"] <= 1e-3
    assert out["naive_simpy"]["exact_inferences"] > 0
    agree = out["agreement_by_capacity"]
    assert [a["capacity_mah"] for a in agree.values()] == [2.0, 20.0, 200.0]
    for a in agree.values():  # the issue's bar at every scale
        assert a["inferences_diff"] == 0 and a["life_rel_diff"] <= 1e-3, a
    assert "thevenin_over_pybamm" in out
    mean = out["mean_poisson"]
    assert set(mean["mean_s_by_capacity"]) == {"1x", "10x", "100x"}
    assert mean["life_rel_diff_seed0"] < 0.02 and mean["fast_stepped_inferences"] > 0


def test_bench_sweep_json_pairs_serial_and_cluster_runs():
    from simulator.sweep_bench import app as sweep_app

    r = CliRunner().invoke(sweep_app, ["--cells", "60", "--repeats", "2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["cells"] >= 60 and out["repeats"] == 2
    for runner in ("dask_processes", "dask_threads"):
        assert len(out[runner]) == 2
        for run in out[runner]:
            assert run["serial_wall_s"] > 0 and run["wall_s"] > 0
            assert run["speedup"] == pytest.approx(run["serial_wall_s"] / run["wall_s"], rel=1e-3)
            # the cells' own seconds: inside the loop's time, and at most one cell at a
            # time per worker
            assert 0 < run["serial_cells_s"] <= run["serial_wall_s"]
            assert 0 < run["cells_s"] <= run["wall_s"] * out["workers"]
    assert min(r["speedup"] for r in out["dask_processes"]) == out["speedup_processes_range"][0]
    assert out["dask_processes"][0]["workers_cpu_s"] > 0
    assert set(out["cluster_start_s"]) == {"processes", "threads"}
