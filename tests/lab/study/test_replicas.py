"""Bundle replicas (issue 29): the pooled intervals' machinery on real simulations, and a
replica of a tiny real bundle (its own latency table, the bundle's deadline rule, the
search re-run) pooled with the bundle."""

import json

import pytest

from device_profiles import load_profile
from lab.compression.latency.table import TABLE_FILE, LatencyTable
from lab.study.intervals import demo_intervals, demo_member, pooled_intervals
from lab.study.replicas import REPLICAS_FILE, bundle_replicas, replica_members

ADDED = ("bundles", "members", "sources")


def _runs(ms: float, spread: float) -> dict[int, list[float]]:
    """Timed runs of one variant at the paper profile's levels (ms)."""
    return {
        k: [ms * 1_400_000 / k * (1 + spread * (i - 5) / 5) for i in range(11)]
        for k in (1_400_000, 1_000_000, 800_000)
    }


def test_a_pool_of_one_is_the_demo_intervals_to_the_last_digit():
    prof = load_profile("rt3-paper")
    samples = {"bp": _runs(60.0, 0.05), "pp-800": _runs(40.0, 0.05)}
    evaluation = {"per_sequence": {"tokens": [4, 4, 4], "correct": {"bp": [1, 2, 3]}}}
    want = demo_intervals(prof, None, evaluation, samples, n=40, seed=5)
    member = demo_member("own", prof, None, evaluation, samples)
    got = pooled_intervals([member], n=40, seed=5)
    assert got["bundles"] == 1 and [m["name"] for m in got["members"]] == ["own"]
    assert json.dumps({k: v for k, v in got.items() if k not in ADDED}) == json.dumps(want)


def test_a_pool_whose_members_differ_covers_every_members_point_values():
    prof = load_profile("rt3-paper")
    fast = demo_member("fast", prof, None, None, {"bp": _runs(50.0, 0.02)})
    slow = demo_member("slow", prof, None, None, {"bp": _runs(110.0, 0.02)})
    one = pooled_intervals([fast], n=200, seed=0)
    got = pooled_intervals([fast, slow], n=200, seed=0)
    assert got["bundles"] == 2 and got["resamples"] == 200
    assert sum(m["resamples_drawn"] for m in got["members"]) == 200
    points = {m["name"]: m["policies"] for m in got["members"]}
    rt3_points = [pols["rt3"]["on_time_inferences"] for pols in points.values()]
    assert rt3_points[0] != rt3_points[1]
    for row in got["policies"]:
        lo, hi = row["on_time_inferences_ci95"]
        for name, pols in points.items():
            assert lo <= pols[row["policy"]]["on_time_inferences"] <= hi, (row["policy"], name)
    # the point estimate stays the first member's; the interval widens with the pool
    rt3 = {p["policy"]: p for p in got["policies"]}["rt3"]
    rt3_one = {p["policy"]: p for p in one["policies"]}["rt3"]
    assert rt3["on_time_inferences"] == rt3_one["on_time_inferences"]
    width = rt3["on_time_inferences_ci95"][1] - rt3["on_time_inferences_ci95"][0]
    assert width > rt3_one["on_time_inferences_ci95"][1] - rt3_one["on_time_inferences_ci95"][0]


@pytest.fixture(scope="module")
def replicas(tiny_bundle):
    """One replica of the tiny bundle (dask workers as threads)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RT3LAB_CACHE", str(tiny_bundle / "cache"))
        work = tiny_bundle / "replicas"
        return bundle_replicas(tiny_bundle / "bundle", 1, work, in_process=True, resamples=20)


def test_a_replica_measures_its_own_table_and_keeps_the_bundles_deadline_rule(
    tiny_bundle, replicas
):
    bundle = tiny_bundle / "bundle"
    (r,) = replicas["replicas"]
    own = bundle / TABLE_FILE
    assert r["latency_table"]["file"] != str(own)
    fresh = LatencyTable.load(r["latency_table"]["file"])
    theirs = LatencyTable.load(own).buckets()
    differ = [n for n, b in fresh.buckets().items() if theirs[n] != b]
    assert fresh.buckets().keys() == theirs.keys()
    assert r["buckets"] == "the bundle's" if not differ else all(n in r["buckets"] for n in differ)
    assert (tiny_bundle / "replicas" / REPLICAS_FILE).is_file()
    recorded = json.loads((bundle / "bundle.json").read_text())["provenance"]["deadlines"]
    d = r["deadlines"]
    assert d["mode"] == recorded["mode"] == replicas["rule"] == "dense-top"
    # dense-top on the NEW table: the dense model's estimate there is the top deadline
    dense_top = fresh.latency_ms({}, 1_400_000)
    assert d["anchor"] == {"model": "dense", "estimate_ms": pytest.approx(dense_top)}
    assert d["deadline_ms"]["1400000"] == pytest.approx(dense_top)
    assert d["deadline_ms"]["800000"] / dense_top == pytest.approx(94 / 115)
    assert sorted(s["freq_khz"] for s in r["sets"]) == [800_000, 1_000_000, 1_400_000]
    assert {"rt3", "static-sparse"} <= set(r["simulation"]["policies"])


def test_the_pooled_intervals_name_the_bundle_and_its_replica(replicas):
    (member,) = replica_members(replicas)
    assert member.name == "replica 1" and member.latency and member.accuracy
    got = pooled_intervals([member, member], n=30, seed=0)
    assert [m["name"] for m in got["members"]] == ["replica 1", "replica 1"]
    assert "and 1 replica(s)" in got["sources"] and "the 2 bundle(s)" in got["sources"]
