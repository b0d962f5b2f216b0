"""Bad input gets a clear error; policies, bundles, run directories and the CLI."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from device_profiles import load_profile, profile_from_dict
from lab.cli import main
from simulator import (
    BASELINES,
    POLICIES,
    SimulatorInputError,
    simulate,
    variants_from_bundle,
    write_run,
)

RT3 = load_profile("rt3-paper")


def test_unknown_policy_mode_workload():
    with pytest.raises(SimulatorInputError, match="policy: unknown 'greedy'"):
        simulate(RT3, policy="greedy")
    with pytest.raises(SimulatorInputError, match="mode: unknown"):
        simulate(RT3, mode="quick")
    with pytest.raises(SimulatorInputError, match="workload: unknown 'bursty'"):
        simulate(RT3, workload="bursty")
    with pytest.raises(SimulatorInputError, match="rate must be a positive"):
        simulate(RT3, workload="periodic:-3")


@pytest.mark.parametrize("cap", [0, -1.0, float("nan")])
def test_zero_capacity(cap):
    with pytest.raises(SimulatorInputError, match="capacity_mah"):
        simulate(RT3, capacity_mah=cap)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("time_s\n0\n2\n1\n", "line 4: time_s 1 is before the previous 2.0"),
        ("time_s\n0\n-1\n", "line 3: time_s -1 must be finite and non-negative"),
        ("t\n0\n", "'time_s' column"),
        ("time_s\nabc\n", "line 2: time_s 'abc' is not a number"),
        ("time_s\n", "no requests"),
    ],
)
def test_bad_trace(tmp_path, body, match):
    f = tmp_path / "trace.csv"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(SimulatorInputError, match=match) as err:
        simulate(RT3, workload=f"trace:{f}")
    assert str(f) in str(err.value)


def test_variant_table_missing_a_level():
    d = RT3.model_dump(mode="json", exclude_none=True)
    d["variants"][1]["latency"] = d["variants"][1]["latency"][1:]  # drop 800 MHz
    with pytest.raises(SimulatorInputError, match=r"'bp'.*no entry for level\(s\) \[800000\]"):
        simulate(profile_from_dict(d))
    # a governor that never goes to 800 MHz does not need that row
    assert simulate(profile_from_dict(d), governor="max", capacity_mah=0.1).inferences > 0


def test_variant_with_zero_operations():
    d = RT3.model_dump(mode="json", exclude_none=True)
    d["variants"].append(
        {"name": "empty", "sparsity": 0.99, "nonzero_mults": 0, "nonzero_adds": 0,
         "provenance": "rt3-opcount"}
    )  # fmt: skip
    with pytest.raises(SimulatorInputError, match=r"'empty': latency at .* expected > 0"):
        simulate(profile_from_dict(d))


def test_trace_with_no_idle_power_ends_with_a_warning(tmp_path):
    f = tmp_path / "trace.csv"
    f.write_text("time_s\n0\n1\n", encoding="utf-8")
    r = simulate(RT3, workload=f"trace:{f}")
    assert r.inferences == 2 and any("never empties" in w for w in r.warnings)


def test_rt3_picks_the_most_accurate_variant_that_meets_the_deadline():
    d = RT3.model_dump(mode="json", exclude_none=True)
    d["variants"].append(
        {"name": "pp", "sparsity": 0.85, "nonzero_mults": 6e6, "nonzero_adds": 6e6,
         "provenance": "rt3-opcount"}
    )  # fmt: skip
    p = profile_from_dict(d)
    r = simulate(p, capacity_mah=0.5)
    assert r.variant_at_level == {1400000: "pp", 1000000: "pp", 800000: "pp"}
    assert not any("deadline" in w for w in r.warnings)
    assert r.mean_accuracy is None and any("ranked by sparsity" in w for w in r.warnings)
    loose = simulate(p, capacity_mah=0.5, workload="periodic:1")  # deadline: 1 s vs 115 ms
    assert loose.variant_at_level[1400000] == "pp"  # the profile's tighter constraint rules


def _bundle(tmp_path: Path) -> Path:
    data = {
        "format": "rt3lab-bundle",
        "version": 1,
        "model": {"kind": "rt3-transformer", "config": {}},
        "sets": [
            {"name": "bp", "file": "sets/bp.safetensors", "family": "block-column",
             "sparsity": 0.64, "density": 0.36, "nnz": 1, "nonzero_mults": 18604048,
             "nonzero_adds": 18604048, "accuracy": 0.30, "perplexity": 200.0, "freq_khz": None},
            {"name": "pp-80", "file": "sets/pp-80.safetensors", "family": "block-column",
             "sparsity": 0.80, "density": 0.2, "nnz": 1, "nonzero_mults": 6e6,
             "nonzero_adds": 6e6, "accuracy": 0.27, "perplexity": 260.0, "freq_khz": 800000},
        ],
        "reference": {"dense": {"accuracy": 0.31, "perplexity": 190.0,
                                "nonzero_mults": 51923200, "nonzero_adds": 51923200}},
    }  # fmt: skip
    import hashlib

    sums = {}  # the simulator reads no weights, but checks the files against their checksums
    for rel in ("backbone.safetensors", "dense.safetensors", *(e["file"] for e in data["sets"])):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(rel.encode())
        sums[rel] = hashlib.sha256(rel.encode()).hexdigest()
    data["checksums"] = sums
    (tmp_path / "bundle.json").write_text(json.dumps(data), encoding="utf-8")
    return tmp_path


def test_bundle_variants_accuracy_and_latency(tmp_path):
    vs = variants_from_bundle(_bundle(tmp_path))
    assert [v.name for v in vs] == ["bp", "pp-80", "dense"]
    r = simulate(RT3, variants=vs, capacity_mah=0.5)
    assert r.variant_at_level == {1400000: "pp-80", 1000000: "pp-80", 800000: "pp-80"}
    assert r.mean_accuracy == pytest.approx(0.27)
    assert r.provenance["latency"] == "modelled"
    # the oracle is at least as good as rt3 in accuracy-weighted inferences
    o = simulate(RT3, policy="oracle", variants=vs, capacity_mah=0.5)
    assert o.mean_accuracy * o.inferences >= r.mean_accuracy * r.inferences - 1e-9


def test_bad_bundle(tmp_path):
    with pytest.raises(SimulatorInputError, match=r"bundle\.json: not found"):
        variants_from_bundle(tmp_path)
    (tmp_path / "bundle.json").write_text(
        '{"format": "rt3lab-bundle", "version": 1, '
        '"sets": [{"name": "x", "nonzero_mults": "many"}]}'
    )
    with pytest.raises(SimulatorInputError, match=r"sets\[0\].nonzero_mults: expected a number"):
        variants_from_bundle(tmp_path)


def test_every_policy_runs_and_write_run_layout(tmp_path):
    results = [simulate(RT3, policy=p, capacity_mah=0.3, workload="periodic:5") for p in POLICIES]
    dense_max = results[POLICIES.index("dense-max")]
    assert dense_max.time_at_level_s[1400000] == pytest.approx(dense_max.battery_life_s)
    assert dense_max.inferences_per_variant["dense"] == dense_max.inferences
    write_run(tmp_path, results)
    data = json.loads((tmp_path / "results.json").read_text())
    assert [d["policy"] for d in data] == list(POLICIES)
    for key in ("battery_life_s", "inferences", "deadline_misses", "mean_accuracy", "energy_j",
                "energy_per_inference_j", "switches", "time_at_level_s",
                "inferences_per_variant", "warnings", "provenance"):  # fmt: skip
        assert key in data[0]
    ts = pd.read_parquet(tmp_path / "timeseries" / "rt3.parquet")
    assert list(ts.columns) == ["time_s", "soc", "voltage_v", "power_w", "freq_khz", "variant"]
    ev = pd.read_csv(tmp_path / "events" / "rt3.csv")
    assert list(ev.columns) == ["time_s", "kind", "detail"]
    assert ev["kind"].iloc[-1] == "empty"


def cli(args):
    try:
        main(args)
    except SystemExit as exc:
        return exc.code
    return 0


def test_cli_json_compare_and_errors(tmp_path, capsys):
    cli(["simulate", "--profile", "rt3-paper", "--battery-model", "kibam", "--workload",
          "periodic:5", "--capacity-mah", "0.3", "--out", str(tmp_path), "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    for key in ("battery_life_s", "inferences", "deadline_misses", "mean_accuracy", "energy_j",
                "switches"):  # fmt: skip
        assert key in out
    assert (tmp_path / "results.json").exists() and (tmp_path / "timeseries/rt3.parquet").exists()
    assert load_profile(tmp_path / "profile.yaml") == RT3
    assert "results.json" in json.loads((tmp_path / "commands.json").read_text())
    cli(["simulate", "--compare", "--capacity-mah", "0.2", "--json"])
    compared = [r["policy"] for r in json.loads(capsys.readouterr().out)]
    assert compared == ["rt3", *BASELINES]  # rt3-paper has dense and bp
    assert cli(["simulate", "--policy", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "policy: unknown 'nope'" in err


def test_import_simulator_does_not_import_torch():
    code = "import sys, simulator; simulator.simulate('rt3-paper', capacity_mah=0.1); " \
           "print('torch' in sys.modules)"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    root = Path(__file__).resolve().parents[2] / "simulator"
    for f in root.rglob("*.py"):
        text = f.read_text(encoding="utf-8")
        assert "import torch" not in text and "from torch" not in text, f


def test_oracle_beats_rt3_when_a_sparser_set_buys_more_accuracy_per_joule():
    from device_profiles.schema import Published, Variant

    prov = Published(kind="published", source="test")
    extra = [
        Variant(name="pp-60", accuracy=0.29, sparsity=0.8, nonzero_mults=1e7,
                nonzero_adds=1e7, provenance=prov),
        Variant(name="pp-80", accuracy=0.27, sparsity=0.9, nonzero_mults=6e6,
                nonzero_adds=6e6, provenance=prov),
    ]  # fmt: skip
    d = RT3.model_dump(mode="json", exclude_none=True)
    for v, acc in zip(d["variants"], (0.31, 0.30), strict=True):
        v["accuracy"] = acc
    p = profile_from_dict(d)
    # the closed form below loses the inference in flight at each step: the rerun rule
    kw = dict(battery_model="ideal", capacity_mah=2, variants=extra, governor_step="rerun")
    rt3 = simulate(p, policy="rt3", **kw)
    oracle = simulate(p, policy="oracle", **kw)
    # pp-60 takes 108.6 ms at 800 MHz, over the 94 ms constraint
    assert rt3.variant_at_level == {1400000: "pp-60", 1000000: "pp-60", 800000: "pp-80"}
    assert set(oracle.variant_at_level.values()) == {"pp-80"}
    # ideal battery, continuous: the optimum over every schedule is closed form
    energy = 2 * 3.6 * 3.5
    best = 0.0
    for share, khz in [(0.5, 1400000), (0.3, 1000000), (0.2, 800000)]:
        busy = p.power_at(khz)[0]
        lat = {
            v.name: p.latency_model.latency_ms(v.nonzero_mults, v.nonzero_adds, khz) for v in extra
        }
        best += max(
            v.accuracy * math.floor(share * energy / busy / (lat[v.name] / 1e3))
            for v in extra
            if lat[v.name] <= p.deadline_ms(khz)
        )
    assert oracle.mean_accuracy * oracle.inferences == pytest.approx(best, rel=1e-12)
    assert oracle.mean_accuracy * oracle.inferences > rt3.mean_accuracy * rt3.inferences


def test_a_real_bundle_from_the_runtime(tmp_path):
    synthetic = pytest.importorskip("lab.runtime.synthetic")
    directory = synthetic.synthetic_bundle(tmp_path / "b")
    vs = variants_from_bundle(directory)
    names = json.loads((directory / "bundle.json").read_text())["sets"]
    assert [v.name for v in vs][: len(names)] == [s["name"] for s in names]
    r = simulate(RT3, variants=vs, capacity_mah=0.2)
    assert r.inferences > 0 and r.mean_accuracy is None  # synthetic sets have no accuracy
    assert r.provenance["latency"] == "modelled"
