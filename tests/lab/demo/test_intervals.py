"""Issue 29, item 1: the demo's answer carries the measured uncertainty. A real small
bundle is re-scored (real torch) and profiled on this host (``--power none``); its
per-sequence accuracies and per-run latencies go through ``demo_intervals``, whose point
estimates are the measurements' own (no warning), with intervals per policy and per gain.
"""

from __future__ import annotations

import json

import pytest
from bundle_builder import build_bundle, write_corpus

from lab.compression.evaluation import evaluate_bundle
from lab.demo.intervals import accuracy_samples, demo_intervals, evaluation_sequences
from lab.profiling.options import ProfileOptions
from lab.profiling.procedure import Plan
from lab.profiling.samples import read_latency_samples
from lab.profiling.session import run_session


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("intervals")
    bundle = build_bundle(write_corpus(tmp / "wiki"), tmp / "bundle", true_figures=True)
    ev = evaluate_bundle(bundle, threads=1)
    plan = Plan(levels_khz=(), warmup=1, min_runs=9, max_runs=9, time_cap_s=5.0)
    opts = ProfileOptions(
        bundle=bundle, board="rt3-paper", out=tmp / "host.yaml", threads=1, host_khz=2000000,
        plan=plan,
    )  # fmt: skip
    result = run_session(opts)
    # the bundle records 0.999 for every set (bundle_builder): use what was measured
    measured_acc = {r.name: r.accuracy for r in ev.rows}
    variants = [
        v.model_copy(update={"accuracy": measured_acc[v.name]}) for v in result.profile.variants
    ]
    return result.profile_path, variants, ev


def test_intervals_per_policy_and_gain_with_the_measurements_as_point(measured):
    profile, variants, ev = measured
    samples = read_latency_samples(profile)
    out = demo_intervals(profile, variants, ev, samples, workload="periodic", n=30, seed=1)
    json.dumps(out)  # plain data
    assert out["warnings"] == []  # sample medians and weighted means are the profile's
    assert out["resamples"] == 30 and out["seed"] == 1
    assert sorted(out["accuracy_resampled"]) == ["bp", "dense", "pp-1400mhz"]
    assert out["latency_fixed"] == []
    pols = {p["policy"]: p for p in out["policies"]}
    assert {"rt3", "dense-max", "dvfs-only:bp"} <= set(pols)
    for p in pols.values():
        for key in ("battery_life_h_ci95", "on_time_inferences_ci95", "mean_accuracy_ci95"):
            lo, hi = p[key]
            assert lo <= hi, (p["policy"], key)
        lo, hi = p["mean_accuracy_ci95"]
        assert lo < hi  # the sequences differ, so resampling them moves the accuracy
    share = pols["rt3"]["variant_share"]
    assert all(abs(sum(s.values()) - 1.0) < 1e-9 for s in share.values()) and share
    gains = {g["baseline"]: g for g in out["gains"]}
    assert "dense-max" in gains
    for g in gains.values():
        for fig in ("hours", "on_time"):
            assert set(g[fig]) == {"point", "ci95", "straddles_one", "defined"}
    within = {r["policy"]: r for r in out["life_within_dense"]}
    assert set(within) == set(pols)
    assert all(r["max_accuracy_loss"] == 1.0 for r in within.values())
    assert within["dense-max"]["accuracy_loss_points"] == 0.0


def test_json_evaluation_gives_the_same_accuracy_samples(measured):
    _, _, ev = measured
    from_json = evaluation_sequences(json.loads(json.dumps(ev.to_dict(per_sequence=True))))
    assert from_json == evaluation_sequences(ev)  # exactly: the JSON holds integer counts
    assert evaluation_sequences(ev.to_dict()) == ({}, [])  # the plain JSON has none


def test_weighted_samples_average_to_the_accuracy(measured):
    _, _, ev = measured
    assert len(set(ev.sequence_tokens)) == 2  # a shorter last window
    got = accuracy_samples(ev.per_sequence, ev.sequence_tokens)
    rows = {r.name: r.accuracy for r in ev.rows}
    for name, accs in got.items():
        assert sum(accs) / len(accs) == pytest.approx(rows[name], abs=1e-15)
        plain = sum(ev.per_sequence[name]) / len(accs)
        assert plain != pytest.approx(rows[name], abs=1e-9) or rows[name] == 0.0
