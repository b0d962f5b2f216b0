"""``rt3lab bench runtime`` end to end on a small synthetic bundle, and its helpers."""

import json

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles.schema import SwitchCost, Variant
from lab.bench.runtime import RuntimeBenchOptions, bench_runtime, profile_latency_section
from lab.bench.runtime_tables import print_tables
from lab.cli import main
from lab.runtime.measure import Timing, host_freq_khz, pin_threads
from lab.runtime.synthetic import synthetic_bundle

SMALL = {"vocab_size": 120, "emb": 32, "ff": 24, "layers": 1, "heads": 4}


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return synthetic_bundle(tmp_path_factory.mktemp("b") / "bundle", config=SMALL)


def run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_bench_json_has_the_issue_keys_and_writes_a_profile_section(bundle_dir, tmp_path, capsys):
    prof = tmp_path / "latency.yaml"
    args = [
        "bench",
        "runtime",
        "--bundle",
        str(bundle_dir),
        "--json",
        "--rounds",
        "2",
        "--per-round",
        "1",
        "--warmup",
        "1",
        "--switch-reps",
        "50",
        "--anchor-switch-reps",
        "2",
        "--seq-len",
        "8",
        "--profile-out",
        str(prof),
        "--no-executorch",  # its row has its own (slow) test
    ]
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None)
    out = capsys.readouterr().out
    data = json.loads(out)  # only JSON on stdout
    # the runtime first: the engine where it builds (the default path), else the torch reference
    assert data["runtime"] in ("engine", "torch") and data["runtime_note"]
    assert set(data["sets"]) == {"bp", "p50", "p30", "p20"}
    for s in data["sets"].values():
        for key in ("density", "latency_ms", "dense_latency_ms", "speedup", "flop_speedup_limit"):
            assert s[key] > 0
        assert s["speedup"] == pytest.approx(s["dense_latency_ms"] / s["latency_ms"])
        assert s["first_after_switch_ms"] > 0
        lo, hi = s["speedup_ci95"]
        assert 0 < lo <= hi
        assert s["speedup_over_limit_ci95"] == pytest.approx(
            [lo / s["flop_speedup_limit"], hi / s["flop_speedup_limit"]]
        )
        for name in ("mask-per-call", "bsr", "premasked"):  # set anchors, rounds of their own
            row = s["anchors"][name]
            assert row["latency_ms"] > 0 and row["runtime_speedup"] > 0
            lo, hi = row["runtime_speedup_ci95"]
            assert 0 < lo <= hi
    p20 = data["sets"]["p20"]
    assert p20["flop_speedup_limit"] > data["sets"]["p50"]["flop_speedup_limit"] > 1
    assert data["switch_ms_median"] > 0 and data["switch_ms_p99"] >= data["switch_ms_median"]
    anchors = data["anchors"]
    assert set(anchors) == {"torch", "native-per-layer", "executorch", "mask-per-call", "bsr",
                            "premasked"}  # fmt: skip
    assert "not asked for" in anchors["executorch"]["skipped"]
    # the torch reference, in the same rounds as the runtime (the runtime itself on torch)
    torch_rows = (
        [] if data["runtime"] == "torch" else [s["anchors"]["torch"] for s in data["sets"].values()]
    )
    for row in torch_rows:
        assert row["latency_ms"] > 0 and row["speedup"] > 0 and row["amdahl_limit"] >= 1
        assert row["dense_speedup"] == pytest.approx(
            anchors["torch"]["dense_latency_ms"] * row["runtime_speedup"] / row["latency_ms"]
        )
        lo, hi = row["dense_speedup_over_limit_ci95"]
        assert 0 < lo <= hi
    if "skipped" not in anchors["native-per-layer"]:  # the per-layer C kernel, where it builds
        for s in data["sets"].values():
            row = s["anchors"]["native-per-layer"]
            assert row["speedup"] > 0 and row["runtime_speedup"] > 0
    assert set(data["switch_anchors"]) == {"mask-reapply", "load_state_dict"}
    mem = data["memory_bytes"]
    assert 0 < mem["sets_total_bytes"] < mem["pruned_dense_bytes"]
    assert "decoder" in data["layers"] and data["layers"]["decoder"]["input_shape"] == [1, 8, 32]
    forms = {"block-column", "dense"}
    assert {s["form"] for s in data["layers"]["decoder"]["sets"].values()} <= forms
    assert data["workload"] == {"batch": 1, "seq_len": 8}
    # the serving call's wrapper (what the table, evaluate and profile time) on the sparsest
    # set, against the bound engine call; the general call beside it
    if data["runtime"] == "engine":
        sv = data["serving"]
        assert sv["set"] == "p20" and sv["runs_per_side"] == 2 * 50
        assert sv["serving_overhead_us"] == pytest.approx(
            1e3 * (sv["serving_median_ms"] - sv["bound_median_ms"])
        )
        assert sv["serving_overhead_ratio"] == pytest.approx(
            sv["serving_overhead_us"] / (1e3 * sv["bound_median_ms"])
        )
        assert sv["serving_under_3pct"] == (sv["serving_overhead_ratio"] < 0.03)
        for side in ("serving", "call"):
            lo, hi = sv[f"{side}_over_bound_ci95"]
            assert 0 < lo <= hi
    else:
        assert "serving" not in data
    section = yaml.safe_load(prof.read_text())
    assert section["sources"]["host-runtime-bench"]["kind"] == "measured"
    names = [v["name"] for v in section["variants"]]
    assert names == ["dense", "bp", "p50", "p30", "p20"]
    for v in section["variants"]:
        Variant(**v)
        assert v["latency"][0]["provenance"] == "host-runtime-bench"
    assert section["variants"][4]["nonzero_mults"] > 0
    SwitchCost(**section["switch_cost"])


def test_table_mode_restores_threads(bundle_dir, capsys):
    import os

    threads, cpus = torch.get_num_threads(), os.sched_getaffinity(0)
    code, out, err = run(
        [
            "bench",
            "runtime",
            "--bundle",
            str(bundle_dir),
            "--no-anchors",
            "--no-layers",
            "--rounds",
            "1",
            "--per-round",
            "1",
            "--warmup",
            "0",
            "--switch-reps",
            "10",
            "--seq-len",
            "1",
            "--threads",
            "1",
        ],
        capsys,
    )
    assert code == 0, err
    assert "p50" in out and "switching" in out and "memory" in out
    assert torch.get_num_threads() == threads and os.sched_getaffinity(0) == cpus


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--synthetic", "gpt9"], "--synthetic: 'gpt9'"),
        (["--synthetic", "rt3", "--densities", "0.5,x"], "--densities: 'x'"),
        (["--synthetic", "rt3", "--densities", "1.5"], "--densities: 1.5"),
        ([], "exactly one of --bundle"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message, capsys):
    code, _, err = run(["bench", "runtime", *args], capsys)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_bad_bundle_exits_2_naming_the_file(tmp_path, capsys):
    code, _, err = run(["bench", "runtime", "--bundle", str(tmp_path)], capsys)
    assert code == 2 and "bundle.json: not found" in err


def test_host_freq_from_fake_sysfs_then_cpuinfo(tmp_path):
    cpufreq = tmp_path / "sys/devices/system/cpu/cpu0/cpufreq"
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\ncpu MHz\t\t: 2596.124\n")
    assert host_freq_khz(str(tmp_path)) == 2_596_124
    cpufreq.mkdir(parents=True)
    (cpufreq / "scaling_cur_freq").write_text("1400000\n")
    assert host_freq_khz(str(tmp_path)) == 1_400_000
    assert host_freq_khz(str(tmp_path / "nothing")) is None


def test_timing_median_and_p99():
    t = Timing.of([i / 1000 for i in range(1, 101)])
    assert t.median_ms == pytest.approx(50.5) and t.p99_ms == pytest.approx(99.0) and t.n == 100


def test_pin_threads_sets_torch_threads():
    before = torch.get_num_threads()
    try:
        info = pin_threads(1)
        assert info["threads"] == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_function_is_the_command_and_tables_read_recorded_runs(bundle_dir, capsys):
    """``bench_runtime`` returns the result ``--json`` prints; the tables print it, and the
    runs recorded under docs/ (written before the runtime led the figures) too."""
    from pathlib import Path

    options = RuntimeBenchOptions(
        bundle=bundle_dir, rounds=1, per_round=1, warmup=0, switch_reps=5, seq_len=4,
        anchors=False, layers=False,
    )  # fmt: skip
    result = bench_runtime(options)
    data = result.as_dict()
    assert data["sets"] is result.sets and "entries" not in data and "anchors" in data
    assert result.switch_ms_median > 0 and result.command.startswith("rt3lab bench runtime")
    assert "layers" not in data and "switch_anchors" not in data
    print_tables(data)
    docs = Path(__file__).resolve().parents[3] / "docs"
    for recorded in sorted(docs.glob("runtime-bench-*.json")):
        print_tables(json.loads(recorded.read_text()))
    out = capsys.readouterr().out
    assert "switching" in out and out.count("memory (MB)") >= 2
    if result.runtime == "engine":
        assert "per-call cost over the bound engine call" in out


def test_profile_section_needs_a_frequency():
    result = {
        "host": {"freq_khz": None, "torch": "x", "threads": 1, "hostname": "h", "cpu": "c"},
        "workload": {"batch": 1, "seq_len": 1},
        "dense_latency_ms": 1.0,
        "sets": {},
        "switch_ms_median": 0.01,
    }
    with pytest.raises(ValueError, match="frequency is unknown"):
        profile_latency_section(result, {})


@settings(max_examples=50, deadline=None)
@given(
    rounds=st.integers(1, 12),
    per_round=st.integers(1, 4),
    scale=st.floats(0.1, 10.0),
    data=st.data(),
)
def test_speedup_interval_is_ordered_bounded_and_scales(rounds, per_round, scale, data):
    """The bootstrap interval of a median ratio lies between the extreme sample ratios and
    scales with the numerator; a list without one whole round is an error."""
    from lab.runtime.measure import ratio_ci

    n = rounds * per_round
    times = st.lists(st.floats(1e-4, 1.0), min_size=n, max_size=n)
    num, den = data.draw(times), data.draw(times)
    lo, hi = ratio_ci(num, den, per_round, draws=200)
    assert lo <= hi
    assert min(num) / max(den) - 1e-12 <= lo and hi <= max(num) / min(den) + 1e-12
    slo, shi = ratio_ci([scale * x for x in num], den, per_round, draws=200)
    assert (slo, shi) == pytest.approx((scale * lo, scale * hi), rel=1e-9)
    with pytest.raises(ValueError, match="no complete round"):
        ratio_ci(num[: per_round - 1], den, per_round)


@pytest.mark.slow  # lowering to ExecuTorch takes ~20 s (its import alone ~10 s)
def test_executorch_xnnpack_dense_is_an_anchor_row(bundle_dir, capsys):
    """With the `anchors` extra installed: the dense model on ExecuTorch XNNPACK, checked
    equal to PyTorch's, timed in the same rounds, every set's speedup over it."""
    pytest.importorskip("executorch", reason="the 'anchors' extra is not installed")
    args = ["bench", "runtime", "--bundle", str(bundle_dir), "--json", "--rounds", "2",
            "--per-round", "1", "--warmup", "1", "--switch-reps", "20",
            "--anchor-switch-reps", "2", "--seq-len", "8", "--no-layers"]  # fmt: skip
    code, out, err = run(args, capsys)
    assert code in (0, None), err
    data = json.loads(out)
    ex = data["anchors"]["executorch"]
    assert ex["backend"] == "XNNPACK" and ex["threads"] == 1 and ex["max_rel_err"] <= 1e-4
    assert ex["dense_latency_ms"] > 0
    assert ex["runtime_dense_speedup"] == pytest.approx(
        ex["dense_latency_ms"] / data["dense_latency_ms"]
    )
    for s in data["sets"].values():
        row = s["anchors"]["executorch"]
        assert row["dense_speedup"] == pytest.approx(ex["dense_latency_ms"] / s["latency_ms"])
        lo, hi = row["dense_speedup_ci95"]
        assert lo <= hi
