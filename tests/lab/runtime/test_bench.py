"""``rt3lab bench runtime`` end to end on a small synthetic bundle, and its helpers."""

import json

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles.schema import SwitchCost, Variant
from lab.bench.runtime import profile_latency_section
from lab.cli import main
from lab.runtime.measure import Timing, host_freq_khz, pin_threads, switch_anchors
from lab.runtime.synthetic import nested_block_column_sets, synthetic_bundle

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
    assert set(data["sets"]) == {"bp", "p50", "p30", "p20"}
    for s in data["sets"].values():
        for key in ("density", "latency_ms", "dense_latency_ms", "speedup", "flop_speedup_limit"):
            assert s[key] > 0
        assert s["speedup"] == pytest.approx(s["dense_latency_ms"] / s["latency_ms"])
        assert set(s["anchors"]) >= {"mask-per-call", "bsr", "premasked"}
        assert s["amdahl_limit"] >= 1
        assert s["first_after_switch_ms"] > 0
        lo, hi = s["speedup_ci95"]
        assert 0 < lo <= hi
        assert s["speedup_over_limit_ci95"] == pytest.approx(
            [lo / s["flop_speedup_limit"], hi / s["flop_speedup_limit"]]
        )
    p20 = data["sets"]["p20"]
    assert p20["flop_speedup_limit"] > data["sets"]["p50"]["flop_speedup_limit"] > 1
    assert data["switch_ms_median"] > 0 and data["switch_ms_p99"] >= data["switch_ms_median"]
    # the kernel-matched control: the dense model on the native kernel, where it builds
    assert isinstance(data["native_kernel"], str)
    if data["native_dense_latency_ms"] is not None:
        for s in data["sets"].values():
            assert s["speedup_over_native_dense"] > 0
            assert 1 <= s["native_dense_amdahl_limit"] <= s["flop_speedup_limit"]
            lo, hi = s["native_dense_speedup_over_limit_ci95"]
            assert 0 < lo <= hi
    # the whole model on the native engine, timed in the same rounds, where it builds
    if data["engine_dense_latency_ms"] is not None:
        for s in data["sets"].values():
            e = s["engine"]
            assert e["latency_ms"] > 0 and e["speedup_over_engine_dense"] > 0
            lo, hi = e["engine_dense_speedup_over_limit_ci95"]
            assert 0 < lo <= hi
            lo, hi = e["torch_dense_speedup_over_limit_ci95"]
            assert 0 < lo <= hi
    assert set(data["switch_anchors"]) == {"mask-reapply", "load_state_dict"}
    mem = data["memory_bytes"]
    assert 0 < mem["sets_total_bytes"] < mem["pruned_dense_bytes"]
    assert "decoder" in data["layers"] and data["layers"]["decoder"]["input_shape"] == [1, 8, 32]
    forms = {"block-column", "column-union", "dense"}
    assert {s["form"] for s in data["layers"]["decoder"]["sets"].values()} <= forms
    assert data["workload"] == {"batch": 1, "seq_len": 8}
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


def test_switch_anchors_really_rewrite_the_weights():
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Linear(64, 64))
    sets = nested_block_column_sets({"0": lin[0]}, {"a": 0.5, "b": 0.25}, 16, 16)
    got = switch_anchors(lin, sets, reps=3)
    assert set(got) == {"mask-reapply", "load_state_dict"} and all(
        t.median_ms > 0 for t in got.values()
    )
    assert torch.count_nonzero(lin[0].weight) == 64 * 64  # the original is untouched


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
    ex = data["executorch_dense"]
    assert ex["backend"] == "XNNPACK" and ex["threads"] == 1 and ex["max_rel_err"] <= 1e-4
    assert ex["latency_ms"] > 0
    assert ex["torch_dense_speedup_over_it"] == pytest.approx(
        ex["latency_ms"] / data["dense_latency_ms"]
    )
    for s in data["sets"].values():
        row = s["executorch_dense"]
        assert row["compact_speedup"] == pytest.approx(ex["latency_ms"] / s["latency_ms"])
        lo, hi = row["compact_speedup_ci95"]
        assert lo <= hi
