"""`rt3lab profile` as a user runs it, in a subprocess, against a fake board: a sysfs tree
made to respond by a fake kernel, and power_meter's UM34C emulator on a pty whose power
follows a known law of the fake board's frequency. Also the host mode and `rt3lab
simulate` on what it writes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from profiling_fakes import FakeKernel, FrequencyLaw, make_cpufreq_tree, snapshot

from device_profiles import load_profile, unprovenanced_numbers
from lab.profiling.stats import median

HERE = os.path.dirname(os.path.abspath(__file__))
SMALL = {"vocab_size": 150, "emb": 32, "ff": 24, "layers": 1, "heads": 2}  # as test_runner

P_STATIC_W, C_EFF_F = 2.5, 1.8e-9  # not the published odroid fit (3.98 W, 2.317e-9 F)
FAST = [
    "--warmup", "2", "--min-runs", "8", "--time-cap", "0.3", "--settle", "0.6",
    "--idle", "0.8", "--power-window", "0.8",
]  # fmt: skip


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from lab.runtime.synthetic import synthetic_bundle

    return synthetic_bundle(tmp_path_factory.mktemp("bundle") / "b", densities={"bp": 0.6})


def rt3lab(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "lab", *map(str, args)], capture_output=True, text=True, **kw
    )


def rt3lab_here(capsys, *args):
    """The root CLI in this process (torch is loaded already): (exit code, stdout, stderr)."""
    from lab.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def fake_board(tmp_path):
    """An Odroid-XU4-like A15 policy, its fake kernel, and a UM34C whose power follows it."""
    from power_meter.emulators import UMEmulator

    a15 = load_profile("odroid-xu4").cluster("a15")
    volts = dict(zip(a15.levels_khz, a15.voltages_v, strict=True))
    d = make_cpufreq_tree(tmp_path / "sys", a15.levels_khz, cpus=(4, 5, 6, 7))
    law = FrequencyLaw(P_STATIC_W, C_EFF_F, volts, max(a15.levels_khz))
    emu = UMEmulator(law, model="UM34C", accel=4.0)  # updates every 0.125 s of wall time
    law.clock = emu.clock
    emu.start()
    try:
        with FakeKernel(d, on_change=law.set_frequency) as kernel:
            yield tmp_path / "sys", d, emu, kernel
    finally:
        emu.stop()


def test_recovers_p_static_and_c_and_restores_the_governor(tmp_path, bundle, fake_board, capsys):
    root, d, emu, kernel = fake_board
    before = snapshot(d)
    out = tmp_path / "out/odroid.yaml"
    # In this process (torch is loaded already); the slow test below runs it as a subprocess.
    code, stdout, err = rt3lab_here(
        capsys, "profile", "--bundle", bundle, "--board", "odroid-xu4", "--cpufreq-root", root,
        "--policy", "4", "--power", f"um34c:{emu.port}", "--sets", "bp",
        "--levels", "600000,1400000,2000000", *FAST, "--json", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    cal = json.loads(stdout)
    fit = cal["power_fit"]
    assert fit["p_static_w"] == pytest.approx(P_STATIC_W, rel=0.02)
    assert fit["c_eff_f"] == pytest.approx(C_EFF_F, rel=0.02)
    assert max(abs(r) for r in fit["residuals_w"]) < 0.05
    assert cal["flagged"] == []
    assert snapshot(d) == before  # schedutil again, min/max as found
    assert [k for _, k in kernel.history][:3] == [600000, 1400000, 2000000]
    # the comparison against the published profile is there, and shows they differ
    assert {c["freq_khz"] for c in cal["comparison"]} == {600000, 1400000, 2000000}
    profile = load_profile(out)
    assert unprovenanced_numbers(profile) == []
    src = profile.resolve(profile.power[0].levels[0].provenance)
    assert (src.kind, src.meter, src.board) == ("measured", "um34c", "odroid-xu4")
    assert out.with_suffix(".measurements.csv").exists()
    code, stdout, err = rt3lab_here(capsys, "simulate", "--profile", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)


@pytest.mark.slow  # the fast default run covers signals with tests/lab/profiling/test_guard.py
def test_interrupted_run_restores_the_governor(tmp_path, bundle, fake_board):
    root, d, emu, _kernel = fake_board
    before = snapshot(d)
    from foreground import foreground  # Ctrl-C reaches it as in a terminal

    proc = subprocess.Popen(
        foreground([sys.executable, "-m", "lab", "profile", "--bundle", str(bundle), "--board",
         "odroid-xu4", "--cpufreq-root", str(root), "--power", f"um34c:{emu.port}",
         "--levels", "600000,2000000", "--settle", "30", "--out", str(tmp_path / "x.yaml")]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while (d / "scaling_governor").read_text().strip() != "userspace":
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.05)
    assert proc.returncode == 130, err
    assert snapshot(d) == before
    assert not (tmp_path / "x.yaml").exists()


def test_level_not_offered_is_a_one_line_error(tmp_path, bundle, fake_board):
    root, d, emu, kernel = fake_board
    before = snapshot(d)
    done = rt3lab(
        "profile", "--bundle", bundle, "--board", "odroid-xu4", "--cpufreq-root", root,
        "--power", f"um34c:{emu.port}", "--levels", "600000,650000", "--out", tmp_path / "x.yaml",
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "[650000] kHz not offered" in done.stderr
    assert snapshot(d) == before and kernel.history == []


def test_host_profile_feeds_simulate(tmp_path, bundle, capsys):
    out = tmp_path / "host.yaml"
    code, stdout, err = rt3lab_here(
        capsys, "profile", "--bundle", bundle, "--board", "rt3-paper", "--power", "none",
        "--host-khz", "2000000", "--warmup", "2", "--time-cap", "0.5", "--json",
        "--deadlines", "scaled", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    cal = json.loads(stdout)
    p = load_profile(out)
    assert p.levels_khz == [800000, 1000000, 1400000]
    assert unprovenanced_numbers(p) == []
    bp = p.variant("bp")
    measured = cal["latency"]["bp@2000000"]["median_ms"]
    assert bp.latency_at(1000000) == pytest.approx(measured * 2.0)  # a = 0: b = lat * f_host
    prov = p.resolve(bp.latency[0].provenance)
    assert prov.kind == "modelled" and "a + b/f" in prov.formula and "a = 0" in prov.formula
    assert p.power == load_profile("rt3-paper").power  # the board's published power
    # RT3's setup: BP exactly meets the highest level's constraint; the others keep their
    # ratios to it (115 / 104 / 94 ms in rt3-paper).
    assert p.deadline_ms(1400000) == pytest.approx(bp.latency_at(1400000))
    assert p.deadline_ms(800000) == pytest.approx(bp.latency_at(1400000) * 94 / 115)
    assert p.resolve(p.workload.provenance).kind == "modelled"
    code, stdout, err = rt3lab_here(capsys, "simulate", "--profile", out, "--compare", "--json")
    assert code == 0, err
    assert json.loads(stdout)


def test_host_profile_can_keep_the_boards_deadlines(tmp_path, bundle):
    from lab.profiling.session import host_profile_from_bundle

    out = host_profile_from_bundle(
        bundle, "rt3-paper", tmp_path / "h.yaml", threads=1, host_khz=2000000, time_cap_s=0.2,
        deadlines="base",
    )  # fmt: skip
    p = load_profile(out.profile_path)
    assert [p.deadline_ms(f) for f in (1400000, 1000000, 800000)] == [115, 104, 94]


def test_host_profile_follows_the_bundles_deadline_rule(tmp_path, bundle):
    """``--deadlines bundle`` (the default) applies the rule the bundle was compressed
    under: ``dense-top`` makes the dense model meet the top level to the last bit (so the
    dense-max baseline is on time there), the other levels keep RT3's ratios; a bundle
    that records no rule keeps the board's constraints."""
    import shutil

    from lab.profiling.session import host_profile_from_bundle

    b = tmp_path / "b"
    shutil.copytree(bundle, b)
    doc = json.loads((b / "bundle.json").read_text())
    doc["provenance"]["deadlines"] = {"mode": "dense-top", "asked": "auto"}
    (b / "bundle.json").write_text(json.dumps(doc))
    kw = {"threads": 1, "host_khz": 2000000, "time_cap_s": 0.2}
    p = load_profile(
        host_profile_from_bundle(b, "rt3-paper", tmp_path / "h.yaml", **kw).profile_path
    )
    dense_top = p.variant("dense").latency_at(1400000)
    assert p.deadline_ms(1400000) == dense_top  # exactly: not merely approximately
    assert p.deadline_ms(800000) == pytest.approx(dense_top * 94 / 115)
    assert "dense exactly meets" in p.resolve(p.workload.provenance).formula
    del doc["provenance"]["deadlines"]
    (b / "bundle.json").write_text(json.dumps(doc))
    p = load_profile(
        host_profile_from_bundle(b, "rt3-paper", tmp_path / "g.yaml", **kw).profile_path
    )
    assert [p.deadline_ms(f) for f in (1400000, 1000000, 800000)] == [115, 104, 94]


def test_meter_that_disappears_mid_run(tmp_path, bundle, fake_board, capsys):
    from power_meter.emulators import Fault

    root, d, emu, kernel = fake_board
    before = snapshot(d)
    follow = kernel.on_change

    def unplug_once_measuring(khz):
        # unplugged 1 s of wall time after the first level is set, back only after a minute
        follow(khz)
        if len(kernel.history) == 1:
            emu.inject(Fault("disconnect", at_s=emu.clock() + 4 * 1.0, duration_s=4 * 60.0))

    kernel.on_change = unplug_once_measuring
    code, _, err = rt3lab_here(
        capsys, "profile", "--bundle", bundle, "--board", "odroid-xu4", "--cpufreq-root", root,
        "--power", f"um34c:{emu.port}", "--sets", "bp", "--levels", "600000,2000000", *FAST,
        "--out", tmp_path / "x.yaml",
    )  # fmt: skip
    assert code == 2, err
    last = err.strip().splitlines()[-1]  # progress lines above it, then one error line
    assert last.startswith("rt3lab: error: --power um34c:") and "meter lost mid-run" in last
    assert kernel.history  # it had started
    assert snapshot(d) == before
    assert not (tmp_path / "x.yaml").exists()


def test_demo_entry_point_with_a_memory_bound_fraction(tmp_path, bundle):
    from lab.profiling.session import host_profile_from_bundle
    from simulator import simulate

    out = host_profile_from_bundle(
        bundle, "raspberry-pi-4", tmp_path / "pi.yaml", threads=1, host_khz=3000000,
        memory_fraction=0.25, time_cap_s=0.3,
    )  # fmt: skip
    p = load_profile(out.profile_path)
    fit = out.latency_fits["bp"]
    measured = out.run.busy("bp")[0].median_ms
    assert fit.a_ms == pytest.approx(0.25 * measured)
    lowest = p.levels_khz[0]
    assert p.variant("bp").latency_at(lowest) == pytest.approx(
        0.25 * measured + 0.75 * measured * 3000000 / lowest
    )
    assert "memory-bound fraction" in p.resolve(p.variant("bp").latency[0].provenance).formula
    result = simulate(p, policy="rt3")
    assert result.inferences > 0


def test_host_table_with_rounds_and_a_bench_to_compare(tmp_path, bundle, capsys):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"dense_latency_ms": 1e6, "sets": {"bp": {"latency_ms": 1e6}}}))
    code, stdout, err = rt3lab_here(
        capsys, "profile", "--bundle", bundle, "--board", "rt3-paper", "--host-khz", "1000000",
        "--rounds", "2", "--warmup", "1", "--time-cap", "0.2", "--compare-bench", bench,
        "--out", tmp_path / "h.yaml",
    )  # fmt: skip
    assert code == 0, err
    assert "latency per variant and level" in stdout
    assert "vs bench runtime: bp:" in stdout and "DIFFERS" in stdout  # 1e6 ms is no match
    cal = json.loads((tmp_path / "h.calibration.json").read_text())
    assert cal["rounds"] == 2 and {c["variant"] for c in cal["bench_comparison"]} == {
        "dense", "bp",
    }  # fmt: skip
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    code, _, err = rt3lab_here(
        capsys, "profile", "--bundle", bundle, "--board", "rt3-paper", "--compare-bench", bad,
        "--out", tmp_path / "h2.yaml",
    )  # fmt: skip
    assert code == 2 and "--compare-bench" in err


FAKE_ADB = r"""#!/bin/sh
# A fake adb for one fake device whose filesystem root is $FAKE_ADB_ROOT.
echo "$*" >> "$FAKE_ADB_ROOT/adb.log"
[ "$1" = "-s" ] && shift 2
case "$1" in
  root) echo "restarting adbd as root"; exit 0 ;;
  shell)
    R=$FAKE_ADB_ROOT
    cmd=$(printf '%s' "$2" | sed "s# /sys/# $R/sys/#g; s# '/sys/# '$R/sys/#g")
    stop() { echo "stop $1" >> "$FAKE_ADB_ROOT/services.log"; }
    start() { echo "start $1" >> "$FAKE_ADB_ROOT/services.log"; }
    eval "$cmd" ;;
  *) echo "fake adb: unsupported: $*" >&2; exit 1 ;;
esac
"""


def test_android_phone_over_adb_with_a_usb_meter(tmp_path, bundle, fake_board, capsys, monkeypatch):
    _, d, emu, kernel = fake_board  # the phone's /sys is tmp_path/sys
    before = snapshot(d)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "adb").write_text(FAKE_ADB)
    (bin_dir / "adb").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(tmp_path))
    code, stdout, err = rt3lab_here(
        capsys, "profile", "--bundle", bundle, "--board", "odroid-xu4", "--adb", "8A1X",
        "--policy", "cpu4", "--power", f"um34c:{emu.port}", "--sets", "bp", "--engine", "torch",
        "--levels", "600000,2000000", *FAST, "--json", "--out", tmp_path / "phone.yaml",
    )  # fmt: skip
    assert code == 0, err
    cal = json.loads(stdout)
    assert cal["control"]["backend"] == "adb" and cal["flagged"] == []
    assert snapshot(d) == before
    assert [k for _, k in kernel.history][:2] == [600000, 2000000]
    services = (tmp_path / "services.log").read_text().split("\n")
    assert services[:2] == ["stop thermal-engine", "stop perfd"]
    assert sorted(services[2:4]) == ["start perfd", "start thermal-engine"]
    assert all(
        line.startswith("-s 8A1X ") for line in (tmp_path / "adb.log").read_text().splitlines()
    )
    phone = load_profile(tmp_path / "phone.yaml")
    assert phone.levels_khz == [600000, 2000000]
    assert "not on the adb device" in phone.sources["rt3lab-latency"].note


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory):
    """The runner tests' small bundle: dense, p30 and bp, one layer."""
    from lab.runtime.synthetic import synthetic_bundle

    return synthetic_bundle(
        tmp_path_factory.mktemp("small") / "b", SMALL, {"bp": 0.6, "p30": 0.3}, block_cols=4
    )


def install_fake_adb(tmp_path, monkeypatch):
    """tests/lab/profiling/fake_adb.py as `adb` on PATH; the device's root is tmp_path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = f'#!/bin/sh\nexec "{sys.executable}" -S "{HERE}/fake_adb.py" "$@"\n'
    (bin_dir / "adb").write_text(script)
    (bin_dir / "adb").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(tmp_path))


def test_phone_over_adb_runs_the_aarch64_runner_on_the_phone(
    tmp_path, small_bundle, fake_board, capsys, monkeypatch
):
    """The runner is cross-built, pushed, and run on the (fake, qemu-aarch64) phone at each
    level, on its big cluster (no --policy: the policy with the highest maximum) with one
    thread per core of it; the profile holds its own latencies, switch time and thread count.
    Fails, not skips, where qemu-aarch64 or ziglang is missing (`make test` installs both)."""
    from lab.runtime.runner import ZIG_HINT, zig_cc

    assert shutil.which("qemu-aarch64"), "qemu-aarch64 missing: apt-get install qemu-user"
    assert zig_cc() is not None, ZIG_HINT
    root, d, emu, kernel = fake_board  # the phone's /sys is tmp_path/sys: its A15s, CPUs 4-7
    little = make_cpufreq_tree(root, [200000, 1400000], cpus=(0, 1, 2, 3), thermal_c=None)
    before, before_little = snapshot(d), snapshot(little)
    install_fake_adb(tmp_path, monkeypatch)
    levels = [600000, 2000000]
    # --rel-ci 0.5: few runs (qemu's timings are noisy; the number is not the point here)
    code, stdout, err = rt3lab_here(
        capsys, "profile", "--bundle", small_bundle, "--board", "odroid-xu4", "--adb", "8A1X",
        "--power", f"um34c:{emu.port}", "--levels", "600000,2000000",
        *FAST, "--rel-ci", "0.5", "--power-window", "0.4", "--json",
        "--out", tmp_path / "phone.yaml",
    )  # fmt: skip
    assert code == 0, err
    cal = json.loads(stdout)
    assert cal["workload"]["engine"] == "runner"
    assert cal["workload"]["runner_target"] == "aarch64-linux"
    assert cal["control"]["cpus"] == [4, 5, 6, 7] and cal["workload"]["threads"] == 4
    assert snapshot(little) == before_little  # the little cluster is not touched
    assert snapshot(d) == before  # the phone's governor, min and max as found
    assert [k for _, k in kernel.history][:2] == levels
    pushed = tmp_path / "data/local/tmp/rt3lab"
    assert (pushed / "export/header.json").is_file() and (pushed / "export/arrays.bin").is_file()
    assert set((tmp_path / "taskset.log").read_text().split()) == {"f0"}  # CPUs 4-7
    # The profile's latency at each level and set is the median of what the runner printed
    # on the phone at that level: of one measurement's timed batches (--warmup 2, as FAST
    # asks; a measurement the sanity check re-took comes later in the log).
    runs = [json.loads(line) for line in (tmp_path / "runner.log").read_text().splitlines()]
    assert all(r["rc"] == 0 for r in runs)
    assert all(r["argv"][r["argv"].index("--threads") + 1] == "4" for r in runs)
    assert all(json.loads(r["stdout"])["threads"] == 4 for r in runs)
    groups: list[tuple[tuple[str, int], list[list[float]]]] = []
    for r in runs:
        argv = r["argv"]
        if "--switch-to" in argv or argv[argv.index("--warmup") + 1] != "2":
            groups.append((("", 0), []))  # a power-window fill or a switch ends a measurement
            continue
        key = (argv[argv.index("--set") + 1], r["khz"])
        if not groups or groups[-1][0] != key:
            groups.append((key, []))
        groups[-1][1].append(json.loads(r["stdout"])["runs_ms"])
    phone = load_profile(tmp_path / "phone.yaml")
    assert phone.levels_khz == levels
    for name in ("dense", "p30", "bp"):
        for khz in levels:
            want = cal["latency"][f"{name}@{khz}"]["median_ms"]
            medians = [
                median([x for batch in batches[i:j] for x in batch])
                for key, batches in groups if key == (name, khz)
                for i in range(len(batches)) for j in range(i + 1, len(batches) + 1)
            ]  # fmt: skip
            assert any(m == pytest.approx(want) for m in medians), (name, khz, want, medians)
            assert phone.variant(name).latency_at(khz) == pytest.approx(want)
    lat = phone.sources["rt3lab-latency"]
    assert lat.kind == "measured" and "runner (aarch64-linux" in lat.meter
    assert "adb:8A1X" in lat.note and lat.board == "odroid-xu4"
    assert "pinned to CPUs [4, 5, 6, 7]; 4 threads" in lat.note
    switches = [json.loads(r["stdout"])["switch_ms"] for r in runs if "--switch-to" in r["argv"]]
    assert len(switches) == 3, [(r["argv"], r["khz"]) for r in runs if "--switch-to" in r["argv"]]
    assert phone.switch_cost.time_ms == pytest.approx(median(switches))
    services = (tmp_path / "services.log").read_text().split("\n")
    assert services[:2] == ["stop thermal-engine", "stop perfd"]
    assert all(
        line.startswith("-s 8A1X ") for line in (tmp_path / "adb.log").read_text().splitlines()
    )


def test_local_board_with_the_runner_engine(tmp_path, small_bundle, fake_board, capsys):
    """--engine runner on a local board: the host-built runner times every set at every
    level (Python is not in the timed loop), and the governor is put back."""
    root, d, emu, _kernel = fake_board
    before = snapshot(d)
    code, stdout, err = rt3lab_here(
        capsys, "profile", "--bundle", small_bundle, "--board", "odroid-xu4", "--cpufreq-root",
        root, "--policy", "4", "--power", f"um34c:{emu.port}", "--engine", "runner",
        "--levels", "600000,2000000", *FAST, "--rel-ci", "0.5", "--power-window", "0.4",
        "--json", "--out", tmp_path / "pi.yaml",
    )  # fmt: skip
    assert code == 0, err
    cal = json.loads(stdout)
    assert cal["workload"]["engine"] == "runner" and cal["workload"]["runner_target"] == "host"
    assert snapshot(d) == before
    p = load_profile(tmp_path / "pi.yaml")
    lat = p.sources["rt3lab-latency"]
    assert "runner (host" in lat.meter and "this host" in lat.note
    for name in ("dense", "p30", "bp"):
        assert [r.freq_khz for r in p.variant(name).latency] == [600000, 2000000]
        assert all(r.latency_ms > 0 for r in p.variant(name).latency)
    assert p.switch_cost is not None and p.switch_cost.time_ms < 1.0


@pytest.mark.slow  # ~10 s of adb round trips; the default run covers the phone path above
def test_phone_refuses_a_runner_for_another_cpu_and_is_put_back(
    tmp_path, small_bundle, fake_board, capsys, monkeypatch
):
    """--runner BIN built for this host (x86-64 here), pushed to the aarch64 phone: one
    error line naming the device, exit 2, its governor restored, nothing written."""
    from lab.runtime.runner import build_runner

    _, d, emu, _kernel = fake_board
    before = snapshot(d)
    install_fake_adb(tmp_path, monkeypatch)
    host_bin = build_runner("host", tmp_path / "host-runner")
    code, _, err = rt3lab_here(
        capsys, "profile", "--bundle", small_bundle, "--board", "odroid-xu4", "--adb", "8A1X",
        "--policy", "cpu4", "--power", f"um34c:{emu.port}", "--levels", "600000",
        "--runner", host_bin, *FAST, "--out", tmp_path / "phone.yaml",
    )  # fmt: skip
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("rt3lab: error: runner on adb:8A1X: ") and "Exec format error" in last
    assert snapshot(d) == before
    assert not (tmp_path / "phone.yaml").exists()


def test_a_session_from_objects_as_the_demo_runs_it(tmp_path, bundle):
    """`run_session(ProfileOptions(...))` is the command without its argv; `--json` prints
    its result's calibration."""
    from lab.profiling.options import OptionError, ProfileOptions
    from lab.profiling.procedure import Plan
    from lab.profiling.session import run_session

    plan = Plan(levels_khz=(), warmup=1, time_cap_s=0.2)
    opts = ProfileOptions(
        bundle=bundle, board="rt3-paper", out=tmp_path / "h.yaml", threads=1, sets=["bp"],
        host_khz=2000000, plan=plan,
    )  # fmt: skip
    result = run_session(opts)
    assert result.profile_path == tmp_path / "h.yaml" and result.profile.name
    cal = result.summary()
    assert cal == json.loads((tmp_path / "h.calibration.json").read_text())
    assert set(cal["latency"]) == {"bp@2000000"}
    with pytest.raises(OptionError, match="--levels needs a power source") as err:
        run_session(ProfileOptions(bundle=bundle, board="rt3-paper", out=tmp_path / "x.yaml",
                                   levels=[600000]))  # fmt: skip
    assert err.value.option == "--levels" and not (tmp_path / "x.yaml").exists()
