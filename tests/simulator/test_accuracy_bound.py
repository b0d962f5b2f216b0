"""Equal-accuracy comparisons (issue 29): under ``max_accuracy_loss`` each policy runs its
longest-lasting table whose mean accuracy stays within the bound; checked against brute
force over every table of its family, run through the real fast engine."""

import itertools
import json
import math

import pytest
from cli_runner import rt3lab
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from device_profiles import dump_profile, load_profile
from device_profiles.schema import LevelLatency, Published, Variant
from simulator import headline_workload, register_policy, simulate
from simulator.accuracy_bound import (
    ACCURACY_TOLERANCE,
    LIFE_TIE,
    NoTableWithinBound,
    TableOutcome,
    longest_within,
)
from simulator.headline import life_within_dense
from simulator.policies import TableSpace, unregister_policy

RT3 = load_profile("rt3-paper")
BARE = RT3.model_copy(update={"variants": []})  # the variants come with each run
LEVELS = sorted(RT3.levels_khz)  # 800, 1000, 1400 MHz: deadlines 94 / 104 / 115 ms
PROV = Published(kind="published", source="test")
WORKLOAD = headline_workload(RT3)  # one request per 115 ms
CAP = 0.3  # mAh: a short discharge, still three governor stages
NAMES = ("dense", "pp-1", "pp-2", "pp-3")


def _variant(name, acc, lat_ms, sparsity):
    rows = [LevelLatency(freq_khz=k, latency_ms=ms, provenance=PROV) for k, ms in lat_ms.items()]
    return Variant(name=name, accuracy=acc, sparsity=sparsity, latency=rows, provenance=PROV)


def _variants(accs, lats):
    """dense (sparsity 0) and three sets, latencies by level."""
    return [
        _variant(n, a, dict(zip(LEVELS, lat, strict=True)), s)
        for n, a, lat, s in zip(NAMES, accs, lats, (0.0, 0.5, 0.7, 0.9), strict=True)
    ]


@pytest.fixture(scope="module", autouse=True)
def table_policy():
    """``table:A,B,C``: the table A at 800 MHz, B at 1 GHz, C at 1.4 GHz (brute force)."""

    def table(inp):
        return dict(zip(sorted(inp.levels), inp.arg.split(","), strict=True))

    register_policy("table", table, takes_arg=True, compared=())
    yield
    unregister_policy("table")


def _run(variants, policy, **kw):
    kw = dict(workload=WORKLOAD, capacity_mah=CAP, variants=variants, **kw)
    return simulate(BARE, policy=policy, **kw)


def _deadline(khz):
    return min(RT3.deadline_ms(khz), 1e3 / float(WORKLOAD.split(":")[1]))


def _family(policy, variants):
    """Every table of the policy's family, as brute force sees it."""
    by_acc = sorted(variants, key=lambda v: -v.accuracy)
    if policy in ("static-sparse", "dvfs-only"):
        return [[v.name] * len(LEVELS) for v in variants]
    pool = [v for v in by_acc if v.name != "dense"] if policy == "rt3" else by_acc
    sets = [v for v in variants if v.name != "dense"]  # rt3 falls back to the fastest set,
    per_level = []  # the first declared on a tie
    for k in LEVELS:
        meets = [v.name for v in pool if v.latency_at(k) <= _deadline(k)]
        fallback = [min(sets, key=lambda v: v.latency_at(k)).name] if policy == "rt3" else None
        per_level.append(meets or fallback or [v.name for v in pool])
    return [list(c) for c in itertools.product(*per_level)]


latency = st.floats(40.0, 140.0)
PROPS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(
    accs=st.tuples(*[st.floats(0.20, 0.35)] * 4),
    lats=st.lists(st.tuples(latency, latency, latency), min_size=4, max_size=4),
    points=st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]),
    policy=st.sampled_from(["rt3", "oracle", "static-sparse", "dvfs-only"]),
)
def test_the_chosen_table_is_the_longest_lasting_within_the_bound(accs, lats, points, policy):
    variants = _variants(accs, lats)
    floor = accs[0] - points / 100
    within = []
    for names in _family(policy, variants):
        r = _run(variants, "table:" + ",".join(names))
        if r.mean_accuracy is not None and r.mean_accuracy >= floor - ACCURACY_TOLERANCE:
            within.append(r)
    if not within:
        event("no table within the bound")
        with pytest.raises(NoTableWithinBound, match=f"{policy}: no table within"):
            _run(variants, policy, max_accuracy_loss=points)
        return
    got = _run(variants, policy, max_accuracy_loss=points)
    event(f"{len(within)} of {len(_family(policy, variants))} tables within")
    if got.variant_at_level != _run(variants, policy).variant_at_level:
        event("the bound changed the table")
    longest = max(r.battery_life_s for r in within)
    assert got.battery_life_s == pytest.approx(longest, rel=LIFE_TIE)
    assert got.mean_accuracy >= floor - ACCURACY_TOLERANCE
    assert got.variant_at_level in [r.variant_at_level for r in within]
    assert got.max_accuracy_loss == points
    assert got.table_choice.startswith(f"{policy}: ")


FIXED = _variants(
    (0.31, 0.305, 0.30, 0.28),
    [(150, 130, 100), (90, 80, 60), (80, 70, 50), (60, 50, 40)],
)


def test_without_a_bound_nothing_is_searched_and_the_result_says_so():
    r = _run(FIXED, "rt3")
    assert r.max_accuracy_loss is None and r.table_choice is None
    assert r.variant_at_level == {k: "pp-1" for k in LEVELS}


def test_a_looser_bound_buys_hours_and_a_tighter_one_leaves_policies_without_hours():
    lives = {p: _run(FIXED, "rt3", max_accuracy_loss=p).battery_life_s for p in (0.5, 1.0, 3.0)}
    assert lives[0.5] <= lives[1.0] < lives[3.0]
    with pytest.raises(NoTableWithinBound) as none:
        _run(FIXED, "rt3", max_accuracy_loss=0.2)
    assert none.value.policy == "rt3"
    assert "the most accurate reaches 0.3050, 0.50 under" in none.value.reason


def test_dense_max_and_a_named_set_are_their_own_table_checked_against_the_bound():
    d = _run(FIXED, "dense-max", max_accuracy_loss=0.0)
    assert d.variant_at_level == {max(LEVELS): "dense"} and "its own table" in d.table_choice
    assert _run(FIXED, "dvfs-only:pp-2", max_accuracy_loss=1.0).mean_accuracy == 0.30
    with pytest.raises(NoTableWithinBound, match="dvfs-only:pp-3: no table within 1 point"):
        _run(FIXED, "dvfs-only:pp-3", max_accuracy_loss=1.0)


def test_a_policy_registered_without_a_space_runs_its_own_table_checked():
    register_policy("top-only", lambda inp: dict.fromkeys(inp.levels, "pp-3"))
    try:
        with pytest.raises(NoTableWithinBound, match="top-only: no table"):
            _run(FIXED, "top-only", max_accuracy_loss=1.0)
        assert "its own table" in _run(FIXED, "top-only", max_accuracy_loss=3.0).table_choice
    finally:
        unregister_policy("top-only")


def test_the_oracle_under_a_bound_lasts_longest_and_rt3_no_longer():
    for points in (1.0, 3.0):
        rows = {r.policy: r for r in life_within_dense(BARE, FIXED, points, capacity_mah=CAP)}
        assert rows["oracle"].battery_life_h >= rows["rt3"].battery_life_h
        for r in rows.values():
            assert r.accuracy_loss_points <= points + 1e-9 and r.dense_accuracy == 0.31
    assert json.dumps([r.to_dict() for r in rows.values()])


def test_coordinate_ascent_beyond_the_exhaustive_limit_stays_within_the_bound():
    """5 levels x 6 sets = 7,776 tables: more than the exhaustive search takes. A toy
    measure (life grows with each level's index, accuracy falls with it) whose best
    table within the bound is known."""
    levels = tuple(range(5))
    space = TableSpace(levels, tuple(tuple(f"s{i}" for i in range(6)) for _ in levels))

    def measure(table):
        idx = [int(table[k][1:]) for k in levels]
        n = sum(idx)
        return TableOutcome(float(n), n, n, 0.9 - 0.01 * n, {})

    search, how = longest_within(space, measure, floor=0.9 - 0.07)
    assert how.startswith("by coordinate ascent") and search.best[1].battery_life_s == 7.0
    assert len(search.tried) < space.count()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("-1", "got -1.0"),
        ("nan", "got nan"),
        ("inf", "got inf"),
    ],
)
def test_bad_bounds_are_refused_in_one_line(value, says, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(dump_profile(RT3.model_copy(update={"variants": FIXED})), encoding="utf-8")
    out = rt3lab("simulate", "--profile", str(path), "--max-accuracy-loss", value)
    assert out.code == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "max_accuracy_loss: expected a finite" in out.stderr
    assert says in out.stderr


def test_a_bound_without_a_dense_accuracy_is_refused_in_one_line():
    out = rt3lab("simulate", "--profile", "rt3-paper", "--max-accuracy-loss", "1")
    assert out.code == 2 and out.stderr.count("\n") == 1
    assert "needs the unpruned model's accuracy" in out.stderr


def test_compare_reports_hours_per_policy_and_none_where_no_table_is_within(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(dump_profile(RT3.model_copy(update={"variants": FIXED})), encoding="utf-8")
    args = ["simulate", "--profile", str(path), "--capacity-mah", str(CAP), "--workload",
            "periodic", "--compare", "--max-accuracy-loss", "0.6"]  # fmt: skip
    out = rt3lab(*args, "--json")
    assert out.code == 0, out.stderr
    rows = {r["policy"]: r for r in json.loads(out.stdout)}
    assert rows["static-sparse"]["battery_life_h"] > 0  # pp-1, 0.5 points under
    assert rows["dvfs-only:dense"]["table_choice"].startswith("dvfs-only:dense: its own")
    assert all(r["max_accuracy_loss"] == 0.6 for r in rows.values())
    plain = rt3lab(*args)
    assert plain.code == 0 and "rt3: the longest-lasting of" in plain.stdout
    tight = json.loads(rt3lab(*args[:-1], "0.1", "--json").stdout)
    none = [r for r in tight if r["battery_life_h"] is None]
    assert {r["policy"] for r in none} == {"rt3", "oracle"}
    assert all("no table within 0.1 point" in r["table_choice"] for r in none)
    assert "none within bound" in rt3lab(*args[:-1], "0.1").stdout
    assert not math.isnan(rows["rt3"]["battery_life_h"])


def test_static_sparse_runs_the_sparsest_set_whatever_the_accuracies():
    """The sparsest set, as documented, even where a denser set scores lower (resampled
    accuracies must not move static-sparse's choice)."""
    lats = [(90, 80, 70), (60, 50, 40), (50, 40, 30), (40, 30, 20)]
    variants = _variants((0.30, 0.20, 0.29, 0.28), lats)  # pp-1 the least accurate
    r = simulate(BARE, "static-sparse", "ideal", WORKLOAD, capacity_mah=CAP, variants=variants)
    assert set(r.variant_at_level.values()) == {"pp-3"}
