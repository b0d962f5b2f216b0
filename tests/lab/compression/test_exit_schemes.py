"""``compress --scheme depth|early-exit`` (issue 30) on the TEST budget: the bundle's fields,
``evaluate`` reproducing them on the runtime's model, the one-line refusals (non-monotone
thresholds, a bundle of one scheme loaded as another), and ``profile --bundle`` writing an
early-exit set's latency as a distribution."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from bundle_builder import write_corpus
from cli_runner import rt3lab
from scheme_bench import bench_json, check_bench

from device_profiles import load_profile
from lab.bench.runtime_tables import print_tables
from lab.compression.budget import TEST
from lab.compression.options import CompressOptions
from lab.compression.pipeline import load_lm_data
from lab.compression.schemes import scheme_builder
from lab.runtime.bundle import Bundle


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both schemes' bundles, built once (dense model cached between them)."""
    root = tmp_path_factory.mktemp("exit-schemes")
    wiki = write_corpus(root / "wikitext2")
    mp = pytest.MonkeyPatch()
    mp.setenv("RT3LAB_CACHE", str(root / "cache"))
    budget = replace(TEST, final_steps=6)
    data = load_lm_data(f"wikitext2:{wiki}", budget)
    out = {}
    try:
        for scheme in ("depth", "early-exit"):
            opts = CompressOptions(
                "rt3-paper", root / scheme, budget, seed=1, threads=1, scheme=scheme
            )
            out[scheme] = scheme_builder(scheme)(data, load_profile("rt3-paper"), opts, None)
    finally:
        mp.undo()
    return out


def _doc(path: Path) -> dict:
    return json.loads((path / "bundle.json").read_text())


def test_a_depth_bundle_has_one_variant_per_level_deepest_first(built):
    doc = _doc(built["depth"])
    assert doc["scheme"] == "depth"
    sets = doc["sets"]
    assert [s["freq_khz"] for s in sets] == [1400000, 1000000, 800000]
    depths = [s["depth"] for s in sets]
    assert depths == sorted(depths, reverse=True) and depths[0] == 2  # dense-top: full depth
    for s in sets:
        assert s["decoder"] == ("decoder" if s["depth"] == 2 else f"exit_heads.{s['depth']}")
        assert "exits" not in s and "exit_histogram" not in s  # early exit's, for the simulator
        assert 0 < s["accuracy"] <= 1
    exits = doc["provenance"]["exits"]
    assert exits["design"]["decoders"] == "per-depth" and "why" in exits["design"]
    assert exits["runtime"] == "engine"
    assert set(exits["variant_latency_ms"]) == {"dense", "depth-0", "depth-1", "depth-2"}
    assert all(ms[0] > 0 for ms in exits["variant_latency_ms"].values())
    assert doc["model"]["config"]["exit_heads"] == [0, 1]


def test_an_early_exit_bundle_records_exits_thresholds_histograms_and_latency(built):
    doc = _doc(built["early-exit"])
    assert doc["scheme"] == "early-exit"
    sets = doc["sets"]
    thresholds = [s["threshold"] for s in sets]
    assert thresholds == sorted(thresholds, reverse=True)  # never rising as the clock drops
    for s in sets:
        assert s["exits"] == [1, 2]
        assert len(s["exit_histogram"]) == 2 and sum(s["exit_histogram"]) == pytest.approx(1)
        assert len(s["exit_latency_ms"]) == 2
        assert 0 <= s["threshold"] <= 1
    # the exits' latencies were measured, not assumed: the same for every level's set
    assert len({tuple(s["exit_latency_ms"]) for s in sets}) == 1
    levels = doc["provenance"]["exits"]["levels"]
    assert [lv["threshold"] for lv in levels] == thresholds
    assert all("miss_share" in lv and "meets_deadline" in lv for lv in levels)


def test_the_runtime_runs_every_variant_and_evaluate_reproduces_the_figures(built, capsys):
    from lab.runtime.reconfigurable import ReconfigurableModel

    for scheme, path in built.items():
        b = Bundle.load(path, scheme=scheme)
        rm = ReconfigurableModel.from_bundle(b)
        assert rm.executor == "engine" and set(rm.plans) == set(b.sets)
        outcome = rt3lab("evaluate", "--bundle", str(path), "--scheme", scheme, "--json")
        assert outcome.code == 0, outcome.stderr
        ev = json.loads(outcome.stdout)
        assert ev["mismatches"] == [] and ev["scheme"] == scheme
        # no masks: the op count stands in for RT3's sparsity checks
        assert "cost_never_rises_as_frequency_drops" in ev["checks"]
        assert "sparsity_increases_as_frequency_drops" not in ev["checks"]


def test_a_bundle_of_one_scheme_loaded_as_another_is_refused_in_one_line(built):
    outcome = rt3lab("evaluate", "--bundle", str(built["depth"]), "--scheme", "early-exit")
    assert outcome.code == 2
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and "bundle of scheme 'depth', loaded as 'early-exit'" in lines[0]


def test_a_bundle_whose_thresholds_rise_as_the_clock_drops_is_refused(tmp_path):
    from lab.model import build_model
    from lab.runtime.pattern_set import PatternSet

    config = {"vocab_size": 30, "emb": 8, "ff": 8, "layers": 2, "heads": 2, "exit_heads": [1]}
    state = build_model("rt3-transformer", config).state_dict()
    b = Bundle.create("rt3-transformer", config, state, state, scheme="early-exit")
    for name, khz, t in (("hi", 1400000, 0.9), ("lo", 800000, 0.2)):
        plan = {"exits": [1, 2], "heads": ["exit_heads.1", "decoder"], "threshold": t}
        fields = {"exits": [1, 2], "threshold": t}
        b.add_set(PatternSet(name, {}, plan), 1, 1, freq_khz=khz, exit_fields=fields)
    root = b.save(tmp_path / "b")
    doc = _doc(root)
    doc["sets"][0]["freq_khz"], doc["sets"][1]["freq_khz"] = 800000, 1400000  # 0.2 then 0.9
    (root / "bundle.json").write_text(json.dumps(doc))
    outcome = rt3lab("export", "--bundle", str(root), "--out", str(tmp_path / "x"))
    assert outcome.code == 2
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and "thresholds must not rise as the frequency drops" in lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--thresholds", "0.2,0.5,0.9"], "must not rise as the frequency drops"),
        (["--thresholds", "0.9,0.5"], "expected 3 numbers in [0, 1]"),
        (["--thresholds", "0.9,0.5,1.5"], "expected 3 numbers in [0, 1]"),
    ],
)
def test_non_monotone_or_bad_thresholds_are_refused_in_one_line(tmp_path, args, says):
    outcome = rt3lab(
        "compress", "--out", str(tmp_path / "o"), "--quick", "--scheme", "early-exit", *args
    )
    assert outcome.code == 2
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], outcome.stderr
    assert not (tmp_path / "o").exists()


def test_options_the_exit_schemes_do_not_use_are_refused_in_one_line(tmp_path):
    from lab.compression.sparsifier import CompressionError

    opts = CompressOptions(
        "rt3-paper", tmp_path / "o", TEST, threads=1, scheme="depth", estimator="op-count"
    )
    with pytest.raises(CompressionError, match="--estimator: --scheme depth times every exit"):
        scheme_builder("depth")(None, load_profile("rt3-paper"), opts, None)


def test_thresholds_apply_to_early_exit_only(tmp_path):
    outcome = rt3lab("compress", "--out", str(tmp_path / "o"), "--quick", "--thresholds", "1,1,1")
    assert outcome.code == 2 and "applies to --scheme early-exit" in outcome.stderr


def test_profile_of_an_early_exit_bundle_writes_each_levels_distribution(built, tmp_path):
    doc = _doc(built["early-exit"])
    out = tmp_path / "host.yaml"
    outcome = rt3lab(
        "profile", "--bundle", str(built["early-exit"]), "--board", "rt3-paper",
        "--power", "none", "--host-khz", "2000000", "--warmup", "1", "--time-cap", "0.2",
        "--threads", "1", "--deadlines", "base", "--out", str(out),
    )  # fmt: skip
    assert outcome.code == 0, outcome.stderr
    profile = load_profile(out)
    names = [v.name for v in profile.variants]
    assert "dense" in names and not any("@exit" in n for n in names)
    for row in doc["sets"]:
        v = profile.variant(row["name"])
        shares = [h for h in row["exit_histogram"] if h > 0]
        for lat in v.latency:
            assert lat.distribution is not None
            assert [p.share for p in lat.distribution] == pytest.approx(shares)
            mean = sum(p.latency_ms * p.share for p in lat.distribution)
            assert lat.latency_ms == pytest.approx(mean)
    # per exit, measured at the levels: a deeper exit is not modelled as free
    rows = (tmp_path / "host.measurements.csv").read_text()
    assert "@exit0" in rows and "@exit1" in rows


def test_bench_runtime_times_every_depth_on_the_engine_against_its_flop_limit(built):
    """A depth variant runs the first k layers and one decoder: its FLOP limit over the
    engine's dense model is above 1 below the full depth, 1 at it (the same computation)."""
    doc = bench_json(built["depth"])
    b = Bundle.load(built["depth"])
    rows = check_bench(doc, "depth", b.set_names)
    layers = b.model["config"]["layers"]
    for name, row in rows.items():
        k = b.entries[name].exit_fields["depth"]
        assert row["exit_layers"] == k and row["decoder"] == b.entries[name].exit_fields["decoder"]
        assert "per_exit" not in row
        assert row["flop_speedup_limit"] > 1 if k < layers else row["flop_speedup_limit"] == 1
    limits = [rows[n]["flop_speedup_limit"] for n in b.set_names]
    assert limits == sorted(limits)  # deepest first: shallower runs fewer ops
    # its anchors run masks, not exits: skipped, said why, none timed
    assert all("skipped" in a for a in doc["anchors"].values()) and "layers" not in doc
    assert all(row["anchors"] == {} for row in rows.values())


def test_bench_runtime_times_every_exit_of_an_early_exit_set(built, capsys):
    """Each exit forced: an earlier exit is cheaper than dense, the last one costs the dense
    model and the exit heads scored on the way; the tables list every exit."""
    doc = bench_json(built["early-exit"])
    b = Bundle.load(built["early-exit"])
    rows = check_bench(doc, "early-exit", b.set_names)
    for name, row in rows.items():
        exits = b.entries[name].exit_fields["exits"]
        per_exit = row["per_exit"]
        assert [e["exit_layers"] for e in per_exit] == exits
        assert row["threshold"] == b.entries[name].exit_fields["threshold"]
        assert row["latency_ms"] == per_exit[-1]["latency_ms"]  # its own: the last exit's
        assert all(e["flop_speedup_limit"] > 1 for e in per_exit[:-1])
        assert per_exit[-1]["flop_speedup_limit"] < 1
    print_tables(doc)
    shown = capsys.readouterr().out
    assert shown.count("exit at depth 1") == len(rows)


def test_bench_runtime_profile_out_of_an_early_exit_bundle_is_refused_in_one_line(built, tmp_path):
    """One latency per set is what --profile-out writes; an early exit's is a distribution:
    refused before any timing, one line, exit 2."""
    out = tmp_path / "p.yaml"
    outcome = rt3lab(
        "bench", "runtime", "--bundle", str(built["early-exit"]), "--profile-out", str(out)
    )
    assert outcome.code == 2 and not out.exists()
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and "exits early" in lines[0] and "profile --bundle" in lines[0]


@pytest.mark.parametrize("scheme", ["depth", "early-exit"])
def test_the_simulator_reads_both_bundles(built, scheme):
    outcome = rt3lab("simulate", "--profile", "rt3-paper", "--bundle", str(built[scheme]), "--json")
    assert outcome.code == 0, outcome.stderr
    assert json.loads(outcome.stdout)["inferences"] > 0
