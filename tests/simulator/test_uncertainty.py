"""The bootstrap over measured latencies and per-sequence accuracies (issue 29): intervals,
the sets rt3 runs per level, rt3's gains, pairing, seeds; the real fast engine."""

import json
import random

import pytest

from device_profiles import load_profile
from device_profiles.schema import LevelLatency, Published, Variant
from simulator import SimulatorInputError, headline_workload, simulate
from simulator.uncertainty import bootstrap, draw_resamples

RT3 = load_profile("rt3-paper")
BARE = RT3.model_copy(update={"variants": []})
LEVELS = sorted(RT3.levels_khz)  # deadlines 94 / 104 / 115 ms
PROV = Published(kind="published", source="test")
CAP = 0.3
# dense, the BP model, and two pattern sets; pp-1 sits on the 800 MHz deadline (94 ms).
TABLE = {
    "dense": (0.310, 0.0, (560.0, 450.0, 320.0)),
    "bp": (0.305, 0.64, (200.0, 160.0, 115.4)),
    "pp-1": (0.300, 0.80, (93.0, 80.0, 60.0)),
    "pp-2": (0.285, 0.90, (60.0, 50.0, 40.0)),
}
VARIANTS = [
    Variant(
        name=name,
        accuracy=acc,
        sparsity=sp,
        latency=[
            LevelLatency(freq_khz=k, latency_ms=ms, provenance=PROV)
            for k, ms in zip(LEVELS, lat, strict=True)
        ],
        provenance=PROV,
    )
    for name, (acc, sp, lat) in TABLE.items()
]
KW = dict(capacity_mah=CAP, resamples=40)


def _by_level(values):
    return zip(LEVELS, values, strict=True)


def _noisy(seed=1, spread=0.03, sequences=60):
    """Latency runs around each table value; per-sequence accuracies around each accuracy,
    one shared per-sequence difficulty (the sequences are the same for every variant)."""
    rng = random.Random(seed)
    lat = {
        name: {k: [ms * rng.gauss(1, spread) for _ in range(9)] for k, ms in _by_level(t[2])}
        for name, t in TABLE.items()
    }
    hard = [rng.gauss(0, 0.05) for _ in range(sequences)]
    acc = {
        name: [min(1.0, max(0.0, t[0] + h + rng.gauss(0, 0.01))) for h in hard]
        for name, t in TABLE.items()
    }
    return lat, acc


def test_zero_spread_gives_zero_width_intervals_at_simulate_point_estimates():
    lat = {n: {k: [ms] * 5 for k, ms in _by_level(t[2])} for n, t in TABLE.items()}
    acc = {n: [t[0]] * 30 for n, t in TABLE.items()}
    r = bootstrap(BARE, VARIANTS, lat, acc, **KW)
    assert r.warnings == [] and r.latency_fixed == [] and r.accuracy_fixed == []
    wl = headline_workload(BARE)
    for p in r.policies:
        ref = simulate(BARE, policy=p.policy, workload=wl, capacity_mah=CAP, variants=VARIANTS)
        assert p.table == ref.variant_at_level
        # simulate's run records time-series rows, which split the battery's integration
        assert p.battery_life_h == pytest.approx(ref.battery_life_h, rel=1e-12)
        assert p.on_time_inferences == ref.on_time_inferences
        assert p.mean_accuracy == pytest.approx(ref.mean_accuracy, rel=1e-12)  # a mean of 30
        assert p.battery_life_h_ci95 == (p.battery_life_h, p.battery_life_h)
        assert p.on_time_inferences_ci95 == (p.on_time_inferences, p.on_time_inferences)
        assert p.mean_accuracy_ci95 == (pytest.approx(p.mean_accuracy),) * 2
    for g in r.gains:
        assert g.hours.ci95 == (g.hours.point, g.hours.point)
        assert g.hours.straddles_one == (g.hours.point == 1.0)


def test_nothing_given_is_held_fixed_and_said_so():
    r = bootstrap(BARE, VARIANTS, {"pp-1": {LEVELS[0]: [92.0, 93.0, 96.0]}}, **KW)
    assert r.latency_resampled == [f"pp-1@{LEVELS[0]}"]
    assert len(r.latency_fixed) == 4 * 3 - 1 and r.accuracy_resampled == []
    assert r.accuracy_fixed == list(TABLE)


def test_latency_noise_at_a_deadline_shows_in_rt3s_share_of_sets():
    """pp-1's runs straddle the 94 ms deadline at 800 MHz: rt3 runs pp-1 there in some
    resamples and pp-2 in the others; each level's shares sum to 1."""
    runs = {"pp-1": {LEVELS[0]: [90.0, 92.0, 93.0, 95.0, 96.0, 97.0, 91.0]}}
    r = bootstrap(BARE, VARIANTS, runs, **KW)
    share = r.policy("rt3").variant_share
    assert set(share[LEVELS[0]]) == {"pp-1", "pp-2"}
    assert share[LEVELS[2]] == {"pp-1": 1.0}
    lat, acc = _noisy()
    noisy = bootstrap(BARE, VARIANTS, lat, acc, **KW)
    for p in [*r.policies, *noisy.policies]:
        for level, shares in p.variant_share.items():
            assert sum(shares.values()) == pytest.approx(1.0), (p.policy, level)
    lo, hi = r.policy("rt3").battery_life_h_ci95
    assert lo < hi


def test_the_same_seed_gives_the_same_answer_and_another_seed_another():
    lat, acc = _noisy()
    a = bootstrap(BARE, VARIANTS, lat, acc, seed=3, **KW).to_dict()
    assert a == bootstrap(BARE, VARIANTS, lat, acc, seed=3, **KW).to_dict()
    assert a != bootstrap(BARE, VARIANTS, lat, acc, seed=4, **KW).to_dict()
    assert json.loads(json.dumps(a))["policies"][0]["policy"] == "rt3"


def test_accuracies_are_resampled_in_pairs():
    """A constant per-sequence difference between two variants stays constant in every
    resample, so the two fixed-set runs' accuracy intervals are shifted copies."""
    rng = random.Random(0)
    base = [rng.random() * 0.5 for _ in range(50)]
    samples = {"pp-1": [b + 0.02 for b in base], "pp-2": base}
    d = draw_resamples({}, samples, resamples=100, seed=1)
    diffs = [a - b for a, b in zip(d.accuracy["pp-1"], d.accuracy["pp-2"], strict=True)]
    assert max(diffs) - min(diffs) < 1e-12 and diffs[0] == pytest.approx(0.02)
    assert max(d.accuracy["pp-2"]) - min(d.accuracy["pp-2"]) > 0.02  # they do move
    r = bootstrap(BARE, VARIANTS, {}, samples, policies=["dvfs-only:pp-1", "dvfs-only:pp-2"],
                  **KW)  # fmt: skip
    one, two = (r.policy(p).mean_accuracy_ci95 for p in ("dvfs-only:pp-1", "dvfs-only:pp-2"))
    assert one[0] - two[0] == pytest.approx(0.02, abs=1e-12)
    assert one[1] - two[1] == pytest.approx(0.02, abs=1e-12)


def test_rt3s_gain_over_each_baseline_comes_with_its_interval():
    lat, acc = _noisy(spread=0.05)
    r = bootstrap(BARE, VARIANTS, lat, acc, **KW)
    assert [g.baseline for g in r.gains] == [
        "dense-max", "dvfs-only:bp", "dvfs-only:dense", "static-sparse", "oracle"
    ]  # fmt: skip
    rt3 = r.policy("rt3")
    for g in r.gains:
        base = r.policy(g.baseline)
        assert g.hours.point == pytest.approx(rt3.battery_life_h / base.battery_life_h)
        lo, hi = g.hours.ci95
        assert lo <= hi and g.hours.straddles_one == (lo <= 1.0 <= hi)
        assert g.hours.defined == r.resamples
    dense = r.gain("dense-max").on_time  # dense misses every deadline: no on-time ratio
    assert (dense.point, dense.ci95, dense.straddles_one, dense.defined) == (None, None, None, 0)
    bp = r.gain("dvfs-only:bp").on_time  # bp meets 115 ms at the top level now and then
    assert 0 < bp.defined < r.resamples


def test_a_bound_carries_into_the_bootstrap():
    lat, acc = _noisy()
    r = bootstrap(BARE, VARIANTS, lat, acc, max_accuracy_loss=1.0, **KW)
    assert r.max_accuracy_loss == 1.0
    for p in r.policies:
        assert 0 <= p.without_table <= r.resamples
        if p.mean_accuracy is not None:
            assert p.mean_accuracy >= acc_mean(acc["dense"]) - 0.01 - 1e-12


def acc_mean(xs):
    return sum(xs) / len(xs)


@pytest.mark.parametrize(
    ("lat", "acc", "says"),
    [
        ({"pp-9": {LEVELS[0]: [1.0]}}, {}, "expected a variant of"),
        ({"pp-1": {123: [1.0]}}, {}, "at a level of"),
        ({"pp-1": {LEVELS[0]: []}}, {}, "at least one"),
        ({"pp-1": {LEVELS[0]: [float("nan")]}}, {}, "finite and > 0"),
        ({}, {"pp-1": [0.3] * 5, "pp-2": [0.3] * 4}, "the same test sequences"),
        ({}, {"pp-1": [1.5]}, "a fraction in [0, 1]"),
        ({}, {"nope": [0.3]}, "unknown variant(s) ['nope']"),
    ],
)
def test_bad_samples_are_refused_naming_what(lat, acc, says):
    with pytest.raises(SimulatorInputError, match=None) as bad:
        bootstrap(BARE, VARIANTS, lat, acc, **KW)
    assert says in str(bad.value)


def test_it_is_fast_enough_for_the_demo():
    """200 resamples x 6 policies on this profile (a full 3,000 mAh discharge each) take
    about 2 s of CPU on the 2-core machine; here a generous bound against a slow regression,
    on this process's CPU time (threads included), which other load on the machine does not
    inflate as it does wall time."""
    import time

    lat, acc = _noisy()
    t = time.process_time()
    bootstrap(BARE, VARIANTS, lat, acc, resamples=200)
    assert time.process_time() - t < 60
