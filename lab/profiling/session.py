"""One profiling session end to end: open the board and the power source, measure, fit,
write the profile, the raw CSV and the calibration, and leave the board as it was.

`run_session(ProfileOptions(...)) -> ProfileResult` is ``rt3lab profile`` without its argv
(the CLI is a thin layer over it; ``--json`` prints the result's calibration). It runs
`profile_board` when a power source is given, or `profile_host`, the host mode (``--power
none``): latencies at this host's current clock, projected to a chosen board's levels.
The demo's entry point is `host_profile_from_bundle`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from device_profiles import DeviceProfile, dump_profile, load_profile
from lab.profiling.board.connect import board_control, board_files, board_journal, recover
from lab.profiling.board.cpufreq import CpufreqControl, FrequencyControl, FrequencyError, NoControl
from lab.profiling.board.guard import restoring
from lab.profiling.board.sysfs import AdbFiles, Files, LocalFiles
from lab.profiling.board.thermal import ThermalProbe
from lab.profiling.calibrate import (
    LatencyFit,
    PowerFit,
    compare_power,
    compare_with_bench,
    fit_power,
)
from lab.profiling.cluster import big_cluster_policy, threads_for
from lab.profiling.options import OptionError, ProfileOptions
from lab.profiling.output import (
    busy_power_by_level,
    deadline_mode,
    host_profile,
    latency_fits,
    measured_profile,
    run_variant_names,
    write_csv,
    write_runs_csv,
)
from lab.profiling.power import MeterPower, PowerSource, make_power
from lab.profiling.procedure import (
    Measurement,
    Plan,
    ProfileRun,
    measure_variant,
    merge_rounds,
    run_profile,
    set_level,
)
from lab.profiling.sanity import settle
from lab.profiling.workload import BundleWorkload, VariantInfo, Workload


def parse_levels(text: str | None) -> list[int] | None:
    """``--levels``: ``all`` / None, or comma-separated kHz (``600000,1.2GHz,800MHz``)."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    out = []
    for item in text.split(","):
        m = re.fullmatch(r"\s*([\d.]+)\s*(ghz|mhz|khz)?\s*", item.lower())
        if not m:
            raise FrequencyError(
                f"--levels: {item.strip()!r} is not a frequency (kHz, or with MHz/GHz)"
            )
        scale = {"ghz": 1e6, "mhz": 1e3, "khz": 1, None: 1}[m[2]]
        out.append(round(float(m[1]) * scale))
    return sorted(set(out))


@dataclass
class ProfileResult:
    """What a session wrote and found; `summary` is the calibration (``--json``)."""

    profile: DeviceProfile
    profile_path: Path
    csv_path: Path
    calibration_path: Path
    run: ProfileRun
    power_fit: PowerFit | None
    latency_fits: dict[str, LatencyFit]
    comparison: list[dict[str, float]] = field(default_factory=list)
    runs_path: Path | None = None  # every timed run (``PROFILE.runs.csv``)

    def summary(self) -> dict[str, Any]:
        """The calibration as JSON-ready data."""
        return json.loads(self.calibration_path.read_text())


def _paths(out: str | Path) -> tuple[Path, Path, Path]:
    out = Path(out)
    stem = out.with_suffix("")
    return out, Path(f"{stem}.measurements.csv"), Path(f"{stem}.calibration.json")


def calibration_path(profile_path: str | Path) -> Path:
    """Where the calibration of the profile at ``profile_path`` is written.

    >>> calibration_path("out/host.yaml").as_posix()
    'out/host.calibration.json'
    """
    return _paths(profile_path)[2]


def runs_csv_path(profile_path: str | Path) -> Path:
    """Where the per-run latencies of the profile at ``profile_path`` are written.

    >>> runs_csv_path("out/host.yaml").as_posix()
    'out/host.runs.csv'
    """
    return Path(f"{Path(profile_path).with_suffix('')}.runs.csv")


def base_profile(board: str, base: str | None) -> DeviceProfile:
    """The profile that gives battery, governor, deadlines and voltages: ``base``, else
    ``board`` when it names a shipped profile or a profile file."""
    try:
        return load_profile(base or board)
    except ValueError as exc:
        if base is None:
            raise ValueError(
                f"--board {board!r} is not a shipped profile: give --base PROFILE (a profile "
                "of this board or a similar one, for battery, governor and deadlines)"
            ) from exc
        raise


def _write(
    out: str | Path,
    profile: DeviceProfile,
    run: ProfileRun,
    board: str,
    power_fit: PowerFit | None,
    fits: dict[str, LatencyFit],
    comparison: list[dict[str, float]],
    extra: dict[str, Any],
) -> ProfileResult:
    profile_path, csv_path, cal_path = _paths(out)
    profile_path.parent.mkdir(parents=True, exist_ok=True)
    profile_path.write_text(dump_profile(profile), encoding="utf-8")
    write_csv(csv_path, run, board)
    runs_path = write_runs_csv(runs_csv_path(profile_path), run, board)
    cal = {
        "profile": str(profile_path),
        "measurements": str(csv_path),
        "runs": str(runs_path),
        "board": board,
        "control": run.control,
        "workload": run.workload,
        "meter": run.meter,
        "power_fit": None
        if power_fit is None
        else {**asdict(power_fit), "formula": power_fit.formula()},
        "latency_fits": {k: {**asdict(v), "formula": v.formula()} for k, v in fits.items()},
        "comparison": comparison,
        "flagged": [r.row() for r in run.flagged],
        "switch_ms_median": None
        if not run.switch_ms
        else sorted(run.switch_ms)[len(run.switch_ms) // 2],
        "latency": {
            r.variant + "@" + str(r.level_khz): {
                "median_ms": r.median_ms,
                "ci_low_ms": r.ci_low_ms,
                "ci_high_ms": r.ci_high_ms,
                "runs": r.runs,
                "converged": r.converged,
            }
            for r in run.rows
            if r.kind == "busy"
        },
        **extra,
    }
    cal_path.write_text(json.dumps(cal, indent=2, default=str), encoding="utf-8")
    return ProfileResult(
        profile, profile_path, csv_path, cal_path, run, power_fit, fits, comparison, runs_path
    )


@contextmanager
def pinned(control: FrequencyControl) -> Iterator[list[int] | None]:
    """Run this process on the CPUs whose clock is being set (as nn-Meter pins with
    taskset), then put the affinity back. Skipped (None) for a remote device or when none
    of the policy's CPUs is available to this process (a fake tree, a container)."""
    local = isinstance(control, CpufreqControl) and not isinstance(control.files, AdbFiles)
    if not local or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    assert isinstance(control, CpufreqControl)
    before = os.sched_getaffinity(0)
    cpus = sorted(set(control.cpus()) & before)
    if not cpus:
        yield None
        return
    os.sched_setaffinity(0, cpus)
    try:
        yield cpus
    finally:
        os.sched_setaffinity(0, before)


def _thermal(files: Files | None, power: PowerSource) -> ThermalProbe | None:
    if files is None:
        return None
    # A Pi 5 (PMIC source) also says whether its firmware is throttling.
    runner = power.command_runner() if isinstance(power, MeterPower) else None
    return ThermalProbe(files, runner)


def profile_board(
    workload: Workload,
    control: FrequencyControl,
    power: PowerSource,
    board: str,
    out: str | Path,
    plan_kw: dict[str, Any] | None = None,
    levels: list[int] | None = None,
    base: str | None = None,
    files: Files | None = None,
    name: str | None = None,
    power_output: str = "levels",
    progress: Callable[[str], None] | None = None,
) -> ProfileResult:
    """Measure ``board`` at ``levels`` (default: all it offers) with ``power``, fit, write.

    The board's frequency settings are restored however this ends.
    """
    base_p = base_profile(board, base)
    if isinstance(control, CpufreqControl):
        # Everything that can be checked is checked before the board is touched.
        offered = control.levels_khz()
        levels = levels or offered
        control.check_levels(levels)
        control.check_writable()
    elif levels is None:
        levels = control.levels_khz()
    plan = Plan(levels_khz=tuple(levels), **(plan_kw or {}))
    power.start()
    try:
        with restoring(control), pinned(control) as cpus:
            thermal = _thermal(files, power)
            run = run_profile(control, workload, plan, power, thermal, progress)
            run.control["pinned_cpus"] = cpus
            infos = {n: workload.info(n) for n in run_variant_names(run)}

            def remeasure(level: int, vname: str) -> Measurement:
                set_level(control, plan, level, power)  # settled, as in the first pass
                return measure_variant(control, workload, plan, level, vname, power, thermal)

            # Odd timings are re-measured at their level before anything is written.
            run, flags = settle(
                run, {n: i.sparsity for n, i in infos.items()}, plan.rel_ci, remeasure,
                progress=progress,
            )  # fmt: skip
    finally:
        power.close()
    busy = busy_power_by_level(run)
    cl = base_p.cluster(base_p.inference_cluster)
    volts = None
    if cl.voltages_v is not None and all(k in cl.levels_khz for k in busy):
        volts = [cl.voltage_at(k) for k in busy]
    pfit = fit_power(list(busy), list(busy.values()), volts, cl.name) if len(busy) >= 2 else None
    fits = latency_fits(run, run_variant_names(run))
    published = {}
    for k in busy:
        try:
            published[k] = base_p.power_at(k)[0]
        except KeyError:
            continue
    comparison = [
        {"freq_khz": c.freq_khz, "measured_w": c.measured_w, "published_w": c.published_w,
         "rel_diff": c.rel_diff}
        for c in compare_power(busy, published)
    ]  # fmt: skip
    profile = measured_profile(run, base_p, board, infos, name, power_output, pfit, flags)
    extra = {"base": base_p.name, "latency_comparison": latency_vs_base(run, base_p, infos)}
    return _write(out, profile, run, board, pfit, fits, comparison, extra)


def latency_vs_base(
    run: ProfileRun, base: DeviceProfile, infos: dict[str, VariantInfo]
) -> list[dict[str, Any]]:
    """Measured latency next to what ``base`` says for the same variant and level: its own
    table when it has the variant, else its op-count model on the bundle's op counts."""
    rows = []
    own = {v.name: v for v in base.variants}
    for name, info in infos.items():
        for r in run.busy(name):
            theirs, how = None, None
            if name in own and own[name].latency_at(r.level_khz) is not None:
                theirs = own[name].latency_at(r.level_khz)
                row = next(x for x in own[name].latency if x.freq_khz == r.level_khz)
                how = base.resolve(row.provenance).kind
            elif base.latency_model is not None and info.nonzero_mults is not None:
                adds = info.nonzero_adds or 0.0
                theirs = base.latency_model.latency_ms(info.nonzero_mults, adds, r.level_khz)
                how = f"{base.resolve(base.latency_model.provenance).kind} (op-count model)"
            if theirs is not None and r.median_ms is not None:
                rows.append(
                    {"variant": name, "freq_khz": r.level_khz, "measured_ms": r.median_ms,
                     "base_ms": theirs, "base_kind": how, "ratio": r.median_ms / theirs}
                )  # fmt: skip
    return rows


def profile_host(
    workload: Workload,
    board: str,
    out: str | Path,
    plan_kw: dict[str, Any] | None = None,
    host_khz: int | None = None,
    memory_fraction: float | None = None,
    files: Files | None = None,
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
    bench: dict[str, Any] | None = None,
    rounds: int = 1,
    base: str | None = None,
    deadlines: str = "bundle",
) -> ProfileResult:
    """Host mode: measure at this host's current frequency (nothing is set), project each
    variant's latency to ``board``'s levels by ``a + b/f``, keep ``board``'s power.

    ``deadlines`` is ``bundle`` (the rule the bundle was compressed under), ``scaled`` (BP
    meets the highest level's constraint exactly), ``dense-top`` (the dense model does) or
    ``base`` (the board's constraints as they are); see `host_profile`.

    ``rounds > 1`` repeats the measurement and merges the rounds (`merge_rounds`).
    """
    if rounds < 1:
        raise ValueError(f"--rounds: must be at least 1, got {rounds}")
    recorded = getattr(getattr(workload, "bundle", None), "provenance", {}).get("deadlines")
    deadline_mode(deadlines, recorded)  # bad input before the (slow) measurement
    base_p = base_profile(board, base)
    control = NoControl(files if files is not None else LocalFiles("/sys"), assumed_khz=host_khz)
    khz = control.levels_khz()[0]
    plan = Plan(levels_khz=(khz,), **{"settle_s": 0.0, **(plan_kw or {})})
    run = merge_rounds(
        [
            run_profile(control, workload, plan, None, None, progress, tolerance_khz=10**9)
            for _ in range(rounds)
        ]
    )
    infos = {n: workload.info(n) for n in run_variant_names(run)}
    # Odd timings are re-measured before anything is written; what stays odd is flagged.
    run, flags = settle(
        run,
        {n: i.sparsity for n, i in infos.items()},
        plan.rel_ci,
        lambda level, vname: measure_variant(
            control, workload, plan, level, vname, tolerance_khz=10**9
        ),
        progress=progress,
    )
    profile, fits = host_profile(
        run,
        base_p,
        infos,
        khz,
        memory_fraction,
        name,
        deadlines,
        flags=flags,
        bundle_deadlines=recorded,
    )
    extra: dict[str, Any] = {
        "base": base_p.name, "host_khz": khz, "memory_fraction": memory_fraction,
        "rounds": rounds,
    }  # fmt: skip
    if bench is not None:
        rows = [
            {"variant": r.variant, "median_ms": r.median_ms, "ci_low_ms": r.ci_low_ms,
             "ci_high_ms": r.ci_high_ms}
            for r in run.rows if r.kind == "busy"
        ]  # fmt: skip
        extra["bench_comparison"] = compare_with_bench(rows, bench)
    return _write(out, profile, run, f"host projected to {base_p.name}", None, fits, [], extra)


def host_profile_from_bundle(
    bundle: str | Path,
    board: str,
    out: str | Path,
    threads: int | None = None,
    seq_len: int = 35,
    host_khz: int | None = None,
    memory_fraction: float | None = None,
    time_cap_s: float = 10.0,
    progress: Callable[[str], None] | None = None,
    deadlines: str = "bundle",
) -> ProfileResult:
    """The demo's entry point: ``rt3lab profile --bundle B --board NAME --power none``.

    Measures every variant of ``bundle`` on this host and writes ``board``'s profile with
    the host latencies projected to its levels (and the CSV and calibration beside it).
    """
    workload = bundle_workload(bundle, seq_len, threads, None)
    return profile_host(
        workload, board, out, {"time_cap_s": time_cap_s}, host_khz, memory_fraction,
        None, None, progress, deadlines=deadlines,
    )  # fmt: skip


def bundle_workload(
    bundle: str | Path, seq_len: int, threads: int | None, sets: list[str] | None
) -> BundleWorkload:
    """The workload for ``--bundle``."""
    return BundleWorkload(bundle, seq_len=seq_len, threads=threads, sets=sets)


ENGINES = ("auto", "torch", "runner")


def resolve_engine(engine: str, adb: str | None, board_mode: bool = True) -> str:
    """``--engine``: ``auto`` is the runner on an adb device in board mode (the model runs
    there) and PyTorch in this process otherwise; ``torch`` with ``--adb`` times the model
    on the host (the device's clock set and its power metered only).

    >>> resolve_engine("auto", "8A1X"), resolve_engine("auto", None)
    ('runner', 'torch')
    >>> resolve_engine("auto", "8A1X", board_mode=False), resolve_engine("runner", None)
    ('torch', 'runner')
    """
    if engine not in ENGINES:
        raise ValueError(f"--engine: expected one of {'|'.join(ENGINES)}, got {engine!r}")
    if engine == "auto":
        return "runner" if adb is not None and board_mode else "torch"
    return engine


def make_workload(
    bundle: str | Path,
    seq_len: int,
    threads: int | None,
    sets: list[str] | None,
    engine: str = "torch",
    adb: str | None = None,
    runner_bin: str | Path | None = None,
    cpus: list[int] | None = None,
) -> Workload:
    """The workload for ``--bundle`` and ``--engine`` (already resolved): PyTorch (or the
    native engine) here, or the standalone runner here or on the ``--adb`` device (``adb`` =
    serial, ``-`` for the only one), pinned there to ``cpus``, on ``threads`` threads (the
    runner's default 1)."""
    if engine != "runner":
        return bundle_workload(bundle, seq_len, threads, sets)
    from lab.profiling.runner_workload import runner_workload

    serial = None if adb in (None, "-") else adb
    return runner_workload(
        bundle, seq_len, sets, serial, adb is not None, runner_bin, cpus, threads or 1
    )


__all__ = [
    "ProfileResult",
    "host_profile_from_bundle",
    "make_workload",
    "parse_levels",
    "profile_board",
    "profile_host",
    "resolve_engine",
    "run_session",
]


def run_session(
    options: ProfileOptions,
    progress: Callable[[str], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> ProfileResult:
    """``rt3lab profile`` without its argv: check ``options`` (bad input fails before the
    board is touched or the bundle loaded), measure, write the profile, CSV and calibration.

    ``progress`` gets progress lines; ``notice`` what was restored from the journal of a
    killed run on the board (default: standard error).
    """
    o = options
    o.check_power_output()
    wanted = sorted(set(o.levels)) if isinstance(o.levels, list) else parse_levels(o.levels)
    base_profile(o.board, o.base)  # a bad --board/--base fails before anything else
    engine = resolve_engine(o.engine, o.adb, board_mode=not o.host_mode)
    if o.runner_bin is not None and not o.runner_bin.is_file():
        raise FileNotFoundError(f"--runner: {o.runner_bin}: no such file")
    files = board_files(o.cpufreq_root, o.adb)
    if o.host_mode:
        return _host_session(o, engine, wanted, files, progress)
    source = make_power(o.power, files)
    policy = o.policy
    if policy is None and o.adb is not None:  # a phone: its big cluster
        policy = big_cluster_policy(files)
    control = board_control(files, o.adb, policy, o.settle_timeout_s)
    say = notice or (lambda m: print(m, file=sys.stderr))
    recover(control, board_journal(o.cpufreq_root, o.adb), say)  # a killed run's leftovers
    # Check what can be checked before the (slow) model load; the board is not touched.
    control.check_levels(wanted or control.levels_khz())
    control.check_writable()
    threads = o.threads
    if threads is None and engine == "runner" and o.adb is not None:
        threads = threads_for(control.cpus())  # one per core of the cluster it is pinned to
    workload = make_workload(o.bundle, o.seq_len, threads, o.sets, engine, o.adb, o.runner_bin,
                             control.cpus())  # fmt: skip
    return profile_board(workload, control, source, o.board, o.out, o.plan_settings(), wanted,
                         o.base, files, o.name, o.power_output, progress)  # fmt: skip


def _host_session(
    o: ProfileOptions,
    engine: str,
    wanted: list[int] | None,
    files: Files,
    progress: Callable[[str], None] | None,
) -> ProfileResult:
    """Host mode (``--power none``) of `run_session`."""
    if wanted is not None:
        raise OptionError(
            "host mode (--power none) measures at the current clock; "
            "--levels needs a power source and frequency control",
            "--levels",
        )
    bench = None
    if o.compare_bench is not None:
        try:
            bench = json.loads(o.compare_bench.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(
                f"--compare-bench: {o.compare_bench}: not a bench JSON: {exc}"
            ) from None
    if engine == "runner" and o.adb is not None:
        raise OptionError(
            "host mode (--power none) runs the model on this host; on the device it "
            "needs a power source (board mode)",
            "--engine runner with --adb",
        )
    workload = make_workload(o.bundle, o.seq_len, o.threads, o.sets, engine, None, o.runner_bin)
    return profile_host(workload, o.board, o.out, o.plan_settings(), o.host_khz,
                        o.memory_fraction, files if o.adb is None else None, o.name, progress,
                        bench, o.rounds, o.base, o.deadlines)  # fmt: skip
