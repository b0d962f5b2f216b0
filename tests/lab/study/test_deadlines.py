"""``rt3lab study deadlines`` on a tiny real bundle (compressed here with the test budget and
the measured latency table): the points, their keys and deadlines, every policy meeting
every deadline where the dense model does at every level, the files, and bad input."""

import json

import pytest
from cli_runner import rt3lab

from lab.compression.budget import TEST
from simulator import BASELINES

GAINS = ("static-sparse", "dvfs-only:bp", "dense-max")


@pytest.fixture(scope="module")
def study(tiny_bundle):
    """``study deadlines --points 3 --json`` (dask workers as threads, one of them)."""
    out = tiny_bundle / "study"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RT3LAB_CACHE", str(tiny_bundle / "cache"))
        run = rt3lab(
            "study", "deadlines", "--bundle", str(tiny_bundle / "bundle"), "--points", "3",
            "--json", "--out", str(out), "--in-process", "--workers", "1", "--resamples", "30",
        )  # fmt: skip
    assert run.code == 0, run.stderr
    return json.loads(run.stdout), out


def test_three_points_with_their_deadlines_sets_policies_and_gains(study):
    doc, _ = study
    points = doc["points"]
    assert len(points) == 3
    levels = ["1400000", "1000000", "800000"]
    for p in points:
        assert list(p["deadlines_ms"]) == levels
        assert p["deadlines_ms"]["1400000"] == p["top_deadline_ms"]
        assert p["deadlines_ms"]["800000"] / p["top_deadline_ms"] == pytest.approx(94 / 115)
        assert sorted(p["sets"]) == sorted(levels)
        for s in p["sets"].values():
            assert 0 <= s["accuracy"] <= 1 and 0 < s["sparsity"] < 1
            assert s["latency_host_ms"] > 0 and isinstance(s["meets_deadline"], bool)
        assert {"rt3", *BASELINES} <= set(p["policies"])
        for row in p["policies"].values():
            assert row["battery_life_h"] > 0 and len(row["battery_life_h_ci95"]) == 2
            assert row["on_time_inferences_ci95"] is not None
        for base in GAINS:
            for figure in ("hours", "on_time"):
                g = p["gains"][base][figure]
                assert {"point", "ci95", "straddles_one", "defined"} <= set(g)
        assert p["search"]["episodes"] == TEST.episodes  # the bundle's, re-run per point
    assert set(doc["summary"]) >= {"battery_life_ranges_ms", "accuracy_only_ranges_ms"}
    assert len(doc["summary"]["sentences"]) == 2
    # the intervals say what they resampled
    assert doc["accuracy_samples"].startswith(("per test sequence", "none:"))
    assert all(p["resampled"]["latency"] for p in points)


def test_deadlines_increase_from_the_anchors_to_past_dense_top(study):
    doc, _ = study
    tops = [p["top_deadline_ms"] for p in doc["points"]]
    assert tops == sorted(tops) and len(set(tops)) == 3
    anchors = [p["anchor"] for p in doc["points"]]
    assert sorted(anchors[:2]) == ["dense-top", "scaled"]
    assert anchors[2] == "dense at every level"
    assert doc["anchors_ms"]["dense-top"] in tops and doc["anchors_ms"]["scaled"] in tops
    # the search went by the latency table's units, on the same rule
    searched = [p["search"]["deadlines_ms"]["1400000"] for p in doc["points"]]
    assert searched == sorted(searched) and len(set(searched)) == 3
    assert searched[0] == doc["anchors_ms_by_the_table"]["scaled"]
    # the search is re-run at each point's deadlines: a tighter one allows fewer level
    # combinations (at scaled the 0.8 GHz set must run 2.14x faster than BP), the loosest
    # every one; where none is allowed every one is searched and the point says so
    combos = [p["search"]["level_combinations"] for p in doc["points"]]
    allowed = [c["allowed"] for c in combos]
    assert allowed == sorted(allowed) and allowed[0] < allowed[-1] == combos[-1]["of"] == 120
    for p, c in zip(doc["points"], combos, strict=True):
        assert (c["allowed"] == 0) == (p["search"]["note"] is not None)
        assert c["searched"] == (c["of"] if c["allowed"] == 0 else c["allowed"])


def test_where_the_dense_model_meets_every_level_every_policy_meets_every_deadline(study):
    doc, _ = study
    loose = doc["points"][-1]
    dense_ms = loose["dense"]["latency_host_ms"] * doc["host_khz"]
    for khz, deadline in loose["deadlines_ms"].items():
        assert dense_ms / int(khz) <= deadline  # dense meets every level there
    for policy, row in loose["policies"].items():
        assert row["missed_inferences"] == 0, policy
        assert row["on_time_inferences"] == row["inferences"] > 0, policy
    # dense-max is on time wherever the deadline is at least dense-top
    for p in doc["points"]:
        if p["top_deadline_ms"] >= doc["anchors_ms"]["dense-top"]:
            assert p["policies"]["dense-max"]["missed_inferences"] == 0


def test_the_json_and_both_figures_are_written_to_out(study):
    doc, out = study
    assert json.loads((out / "deadlines.json").read_text()) == doc
    names = sorted(p.rsplit("/", 1)[-1] for p in doc["figures"])
    assert names == ["deadline-accuracy.png", "deadline-gains.png"]
    for name in names:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("points", ["0", "1", "10000"])
def test_a_bad_points_is_refused_in_one_line(tmp_path, points):
    run = rt3lab("study", "deadlines", "--bundle", str(tmp_path), "--points", points)
    assert run.code == 2
    assert run.stderr.count("\n") == 1 and f"--points {points}:" in run.stderr


def test_a_directory_without_a_bundle_is_refused_in_one_line(tmp_path):
    run = rt3lab("study", "deadlines", "--bundle", str(tmp_path), "--points", "3")
    assert run.code == 2 and run.stderr.count("\n") == 1 and "bundle.json" in run.stderr


@pytest.mark.slow
def test_eight_points_on_a_local_cluster_and_on_a_scheduler_address(tiny_bundle):
    """The default path (a local cluster of worker processes) and ``--scheduler ADDRESS``."""
    from dask.distributed import LocalCluster

    bundle = str(tiny_bundle / "bundle")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RT3LAB_CACHE", str(tiny_bundle / "cache"))
        run = rt3lab("study", "deadlines", "--bundle", bundle, "--json", "--resamples", "20")
        assert run.code == 0, run.stderr
        assert len(json.loads(run.stdout)["points"]) == 8
        with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
            run = rt3lab(
                "study", "deadlines", "--bundle", bundle, "--points", "3", "--json",
                "--resamples", "20", "--scheduler", cluster.scheduler_address,
            )  # fmt: skip
        assert run.code == 0, run.stderr
        assert len(json.loads(run.stdout)["points"]) == 3
