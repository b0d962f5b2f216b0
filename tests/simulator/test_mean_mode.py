"""``mode="mean"``: Poisson arrivals without a queue on the expected-value cycle of an M/D/1
loss server, against exact mode averaged over seeds; other workloads and queues as fast."""

import statistics

import pytest

from simulator import simulate

SEEDS = range(12)


def _within(value, samples, rel):
    """``value`` within 4 standard errors of the samples' mean, plus ``rel`` of it and one
    count (the tolerance the README states)."""
    mean = statistics.mean(samples)
    se = statistics.stdev(samples) / len(samples) ** 0.5
    return abs(value - mean) <= 4 * se + rel * abs(mean) + 1, (value, mean, se)


@pytest.mark.parametrize(
    ("profile", "workload", "model", "cap"),
    [
        ("rt3-paper", "poisson:25", "ideal", 5),  # above capacity: most arrivals dropped
        ("pixel-3", "poisson:30", "thevenin", 20),
        ("pixel-3", "poisson:2", "peukert", 20),  # mostly idle
    ],
)
def test_mean_mode_matches_exact_mode_over_seeds(profile, workload, model, cap):
    kw = dict(workload=workload, battery_model=model, capacity_mah=cap)
    mean = simulate(profile, mode="mean", **kw)
    exact = [simulate(profile, mode="exact", seed=s, **kw) for s in SEEDS]
    for field in ("battery_life_s", "inferences", "dropped", "deadline_misses", "energy_j"):
        ok, detail = _within(getattr(mean, field), [getattr(r, field) for r in exact], 0.005)
        assert ok, (field, detail)


def test_mean_mode_scales_with_the_capacity():
    kw = dict(workload="poisson:10", battery_model="thevenin")
    one = simulate("pixel-3", mode="mean", capacity_mah=2915, **kw)
    hundred = simulate("pixel-3", mode="mean", capacity_mah=291500, **kw)
    assert hundred.inferences == pytest.approx(100 * one.inferences, rel=1e-3)
    assert hundred.battery_life_s == pytest.approx(100 * one.battery_life_s, rel=1e-3)


@pytest.mark.parametrize(
    ("workload", "queue"),
    [
        ("periodic:20", "none"),
        ("continuous", "none"),
        ("poisson:15", "late"),
        ("poisson:15", "drop"),
    ],
)
def test_mean_mode_is_fast_mode_where_it_has_no_closed_form(workload, queue):
    kw = dict(workload=workload, queue=queue, battery_model="kibam", capacity_mah=3)
    fast = simulate("rt3-paper", mode="fast", **kw)
    mean = simulate("rt3-paper", mode="mean", **kw)
    assert fast.model_dump(exclude={"mode"}) == mean.model_dump(exclude={"mode"})


def test_a_sweep_runs_in_mean_mode(tmp_path):
    from simulator.sweep import cells, run_cell, validate_config

    cfg = validate_config(
        {
            "profiles": ["pixel-3"],
            "policies": ["rt3"],
            "battery_models": ["ideal"],
            "capacities_mah": [30000.0],
            "workloads": ["poisson:10"],
            "mode": "mean",
        }
    )
    (cell,) = cells(cfg)
    row = run_cell(cell)
    assert row["error"] is None and row["mode"] == "mean" and row["inferences"] > 1_000_000


def test_oracle_scores_its_tables_on_the_mean_cycle_too():
    # the oracle simulates candidate tables; in mean mode it scores them in mean mode, so
    # its cost does not grow with the capacity either, and its counts scale with it
    kw = dict(policy="oracle", workload="poisson:10", battery_model="ideal", mode="mean")
    one = simulate("pixel-3", capacity_mah=2915, **kw)
    hundred = simulate("pixel-3", capacity_mah=291500, **kw)
    assert hundred.variant_at_level == one.variant_at_level
    assert hundred.inferences == pytest.approx(100 * one.inferences, rel=1e-3)
