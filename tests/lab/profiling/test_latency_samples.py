"""Issue 29, item 1 (material): a profile's per-run latencies, on its levels, whose
medians are the profile's figures, so that ``simulator.bootstrap`` resamples what was
measured. Real host-mode sessions on a small synthetic bundle (real torch timing)."""

from __future__ import annotations

import math

import pytest

from lab.profiling.options import ProfileOptions
from lab.profiling.procedure import Measurement, Plan, ProfileRun
from lab.profiling.samples import (
    ProfileSamplesError,
    latency_samples,
    project_samples,
    read_latency_samples,
    read_runs_csv,
)
from lab.profiling.session import run_session
from lab.profiling.stats import median


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from lab.runtime.synthetic import synthetic_bundle

    return synthetic_bundle(tmp_path_factory.mktemp("bundle") / "b", densities={"bp": 0.6})


def _session(tmp_path, bundle, runs: int, memory_fraction: float | None = None):
    plan = Plan(levels_khz=(), warmup=1, min_runs=runs, max_runs=runs, time_cap_s=5.0)
    opts = ProfileOptions(
        bundle=bundle, board="rt3-paper", out=tmp_path / "h.yaml", threads=1,
        host_khz=2000000, plan=plan, memory_fraction=memory_fraction,
    )  # fmt: skip
    return run_session(opts)


@pytest.mark.parametrize("memory_fraction", [None, 0.25])
def test_host_samples_reproduce_the_profiles_medians_exactly(tmp_path, bundle, memory_fraction):
    result = _session(tmp_path, bundle, 9, memory_fraction)
    got = latency_samples(result)
    assert got == read_latency_samples(result.profile_path)  # the files say the same
    names = {v.name for v in result.profile.variants}
    assert set(got) == names and len(names) >= 2
    for v in result.profile.variants:
        assert set(got[v.name]) == set(result.profile.levels_khz)
        for k, runs in got[v.name].items():
            assert len(runs) == 9
            # an odd count: the middle run, projected, is the profile's figure to the bit
            assert median(runs) == v.latency_at(k), (v.name, k)
        # the projection scales every run by the same factor per level
        low, high = min(result.profile.levels_khz), max(result.profile.levels_khz)
        pairs = zip(got[v.name][low], got[v.name][high], strict=True)
        ratios = {round(a / b, 12) for a, b in pairs}
        assert len(ratios) == 1 and ratios.pop() > 1.0
    raw = read_runs_csv(result.runs_path)
    assert set(raw["bp"]) == {2000000}  # as timed, at the host's clock
    assert sorted(raw["bp"][2000000]) != sorted(got["bp"][max(result.profile.levels_khz)])


def test_even_run_counts_agree_within_rounding_and_bootstrap_sees_no_difference(tmp_path, bundle):
    from simulator import bootstrap

    result = _session(tmp_path, bundle, 8)
    got = read_latency_samples(result.profile_path)
    for v in result.profile.variants:
        for k, runs in got[v.name].items():
            assert math.isclose(median(runs), v.latency_at(k), rel_tol=1e-14)
    b = bootstrap(result.profile_path, latency_samples_ms=got, capacity_mah=1, resamples=4)
    assert b.warnings == []
    assert len(b.latency_resampled) == len(got) * len(result.profile.levels_khz)


def test_board_mode_runs_are_the_profiles_runs_as_timed(tmp_path):
    from lab.profiling.output import write_runs_csv

    rows = [
        Measurement(k, "bp", "busy", k, k, True, median_ms=median(s), samples_ms=tuple(s))
        for k, s in ((1000000, [3.0, 2.0, 2.5]), (1400000, [1.5, 1.75]))
    ]
    rows.append(Measurement(1000000, "idle", "idle", 1000000, 1000000, True))
    run = ProfileRun(rows, [], {}, {}, "um34c")
    path = write_runs_csv(tmp_path / "p.runs.csv", run, "board")
    raw = read_runs_csv(path)
    assert raw == {"bp": {1000000: [3.0, 2.0, 2.5], 1400000: [1.5, 1.75]}}
    assert project_samples(raw, {"board": "x"}, [1000000, 1400000]) == raw
    assert "samples_ms" not in rows[0].row()  # not a column of the measurements CSV


def test_a_missing_or_damaged_runs_file_is_named(tmp_path, bundle):
    result = _session(tmp_path, bundle, 5)
    text = result.runs_path.read_text().splitlines()
    result.runs_path.write_text("\n".join([*text[:3], "rt3,2000000,bp,9,-1.0"]) + "\n")
    with pytest.raises(ProfileSamplesError, match=r"h\.runs\.csv: line 4: latency_ms '-1\.0'"):
        read_latency_samples(result.profile_path)
    result.runs_path.unlink()
    with pytest.raises(ProfileSamplesError, match=r"h\.runs\.csv: no such file"):
        read_latency_samples(result.profile_path)
