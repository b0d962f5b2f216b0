"""On-time accounting, the baselines' definitions, the headline workload and the
provenance of a bundle's accuracies."""

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.results import SWEEP_COLUMNS, on_time
from device_profiles import load_profile, profile_from_dict
from device_profiles.schema import Published, Variant
from simulator import (
    BASELINES,
    SimulationResult,
    SimulatorInputError,
    headline_policies,
    headline_workload,
    simulate,
    variants_from_bundle,
)

RT3 = load_profile("rt3-paper")
PROV = Published(kind="published", source="test")
# Sets that meet every rt3-paper deadline (94 ms at 800 MHz) or only the top ones.
SETS = [
    Variant(name="pp-a", accuracy=0.30, sparsity=0.85, nonzero_mults=6e6, nonzero_adds=6e6,
            provenance=PROV),
    Variant(name="pp-b", accuracy=0.28, sparsity=0.92, nonzero_mults=3e6, nonzero_adds=3e6,
            provenance=PROV),
]  # fmt: skip


def _with_accuracy(dense: float = 0.31, bp: float = 0.305):
    d = RT3.model_dump(mode="json", exclude_none=True)
    for v, acc in zip(d["variants"], (dense, bp), strict=True):
        v["accuracy"] = acc
    return profile_from_dict(d)


@settings(max_examples=30, deadline=None)
@given(
    policy=st.sampled_from(["rt3", "dense-max", "dvfs-only:bp", "static-sparse"]),
    workload=st.sampled_from(["continuous", "periodic:9", "periodic:20", "poisson:8"]),
)
def test_on_time_accounting_adds_up(policy, workload):
    r = simulate(_with_accuracy(), policy=policy, workload=workload, capacity_mah=0.05,
                 variants=SETS, battery_model="ideal")  # fmt: skip
    late = r.deadline_misses - r.dropped
    assert r.on_time_inferences == r.inferences - late >= 0
    assert r.missed_inferences == r.deadline_misses
    total = r.on_time_inferences + r.missed_inferences
    assert r.miss_rate == (pytest.approx(r.missed_inferences / total) if total else None)
    if r.on_time_inferences:
        assert r.energy_per_on_time_inference_j == pytest.approx(r.energy_j / r.on_time_inferences)
    assert r.battery_life_h == pytest.approx(r.battery_life_s / 3600)


def test_on_time_fields_survive_json_and_parquet_columns():
    r = simulate(RT3, capacity_mah=0.05)  # every inference of rt3-paper's own bp is late
    assert r.on_time_inferences == 0 and r.missed_inferences == r.inferences > 0
    assert r.energy_per_on_time_inference_j is None and r.miss_rate == 1.0
    again = SimulationResult(**json.loads(r.model_dump_json()))
    assert again.model_dump() == r.model_dump()
    for key in ("on_time_inferences", "missed_inferences", "miss_rate",
                "energy_per_on_time_inference_j", "battery_life_h"):  # fmt: skip
        assert key in SWEEP_COLUMNS


def test_dropped_requests_are_missed_but_not_inferences():
    f = on_time({"inferences": 3, "deadline_misses": 4, "dropped": 4, "energy_j": 3.0,
                 "battery_life_s": 1.0})  # fmt: skip
    assert (f["on_time_inferences"], f["missed_inferences"]) == (3, 4)


def test_dense_max_is_the_unpruned_model_at_the_top_level_even_when_a_set_scores_higher():
    p = _with_accuracy(dense=0.25)  # pp-a (0.30) is now "most accurate"
    r = simulate(p, policy="dense-max", variants=SETS, capacity_mah=0.05)
    assert set(r.variant_at_level.values()) == {"dense"}
    assert r.governor == "max" and r.level_changes == 0
    assert r.inferences_per_variant["dense"] == r.inferences
    no_dense = profile_from_dict({**p.model_dump(mode="json", exclude_none=True), "variants": []})
    with pytest.raises(SimulatorInputError, match="dense-max: needs the unpruned model"):
        simulate(no_dense, policy="dense-max", variants=SETS, capacity_mah=0.05)


def test_rt3_switches_among_the_pattern_sets_never_to_the_separate_dense_model():
    """Deadlines the dense model meets at every level, dense the most accurate variant: rt3
    still runs a set of its BP backbone (the unpruned model is not one of its variants)."""
    d = _with_accuracy(dense=0.31, bp=0.305).model_dump(mode="json", exclude_none=True)
    for tc in d["workload"]["timing_constraints"]:
        tc["deadline_ms"] *= 10  # 1150 / 1040 / 940 ms: dense (321 ms at 1.4 GHz) meets all
    r = simulate(profile_from_dict(d), policy="rt3", variants=SETS, capacity_mah=0.05)
    assert r.deadline_misses == 0
    assert set(r.variant_at_level.values()) == {"bp"}  # the most accurate set


def test_dvfs_only_baselines_hold_one_model_under_the_governor():
    p = _with_accuracy()
    for name in ("bp", "dense"):
        r = simulate(p, policy=f"dvfs-only:{name}", variants=SETS, capacity_mah=0.05)
        assert set(r.variant_at_level.values()) == {name} and r.level_changes == 2
    r = simulate(p, policy="static-sparse", variants=SETS, capacity_mah=0.05)
    assert set(r.variant_at_level.values()) == {"pp-b"}


def test_baselines_are_named_once_and_defined_in_the_simulator_readme():
    assert headline_policies(["dense", "bp", "pp-a"]) == ["rt3", *BASELINES]
    readme = (Path(__file__).resolve().parents[2] / "simulator" / "README.md").read_text()
    section = readme.split("## Baselines", 1)[1].split("\n## ", 1)[0]
    for name in BASELINES:
        assert re.search(rf"^- `{re.escape(name)}`: \S", section, re.M), name


def test_periodic_headline_hours_depend_on_the_model():
    p = _with_accuracy()
    wl = headline_workload(p)
    assert wl == f"periodic:{1e3 / 115.0!r}"
    runs = {
        pol: simulate(p, policy=pol, workload=wl, variants=SETS, capacity_mah=0.2)
        for pol in ("rt3", "dense-max", "dvfs-only:bp")
    }
    hours = {pol: r.battery_life_h for pol, r in runs.items()}
    assert len({round(h, 9) for h in hours.values()}) == 3, hours
    # rt3's sets meet every deadline here: only a request caught by a governor step (its
    # abort, transition and set switch count against its deadline) can be late
    r = runs["rt3"]
    assert r.missed_inferences <= r.level_changes and r.on_time_inferences > 0
    # back to back, the hours of every DVFS policy follow the power model alone
    cont = [simulate(p, policy=pol, variants=SETS, capacity_mah=0.2).battery_life_h
            for pol in ("rt3", "dvfs-only:bp")]  # fmt: skip
    assert cont[0] == pytest.approx(cont[1])


def test_bundle_accuracies_are_measured_with_bundle_and_split(tmp_path):
    doc = {
        "format": "rt3lab-bundle",
        "version": 1,
        "sets": [{"name": "pp", "file": "sets/pp.safetensors", "accuracy": 0.25,
                  "sparsity": 0.8, "nonzero_mults": 6e6, "nonzero_adds": 6e6}],
        "reference": {"dense": {"accuracy": 0.27, "nonzero_mults": 5e7, "nonzero_adds": 5e7}},
        "provenance": {"created": "2026-12-06T00:00:00Z", "data": "builtin"},
    }  # fmt: skip
    (tmp_path / "bundle.json").write_text(json.dumps(doc))
    (tmp_path / "sets").mkdir()
    for rel in ("backbone.safetensors", "dense.safetensors", "sets/pp.safetensors"):
        (tmp_path / rel).write_bytes(b"")  # simulate reads no weights, only checks they exist
    with pytest.warns(UserWarning, match="no checksums"):
        variants = variants_from_bundle(tmp_path)
    assert [v.name for v in variants] == ["pp", "dense"]
    for v in variants:
        assert v.provenance.kind == "measured"
        assert f"bundle {tmp_path}" in v.provenance.note and "split test" in v.provenance.note
    r = simulate(RT3, variants=variants, capacity_mah=0.05)
    assert r.provenance["accuracy"] == "measured"


def test_a_profile_whose_variants_meet_no_deadline_says_so_in_one_line():
    from simulator.cli import grouped_warnings

    results = [
        simulate(RT3, policy=p, capacity_mah=0.05) for p in headline_policies(["dense", "bp"])
    ]
    lines = grouped_warnings(results)
    assert lines[0].startswith("profile 'rt3-paper': no variant (bp, dense) meets the deadline")
    assert not any("every inference there misses" in line for line in lines)
    assert len(lines) <= 3  # that line and one per distinct accuracy warning
    ok = [simulate(_with_accuracy(), policy="rt3", variants=SETS, capacity_mah=0.05)]
    assert not any("meets the deadline at any level" in line for line in grouped_warnings(ok))
