"""``rt3lab profile``: measure a board (or this host) and write a device profile.

A thin layer over ``lab.profiling.session.run_session``: the options become a
`ProfileOptions`, the result is printed as tables, or its calibration as JSON (``--json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from contracts import strict_json
from lab.host.threads import threads_option

app = typer.Typer()

_HOST = "Host mode: "
Action = Annotated[
    str | None,
    typer.Argument(
        metavar="[restore]",
        help="'restore': put back the frequency settings a killed run left changed (from "
        "its journal) on --cpufreq-root or --adb, and exit.",
    ),
]
Bundle = Annotated[
    Path | None, typer.Option("--bundle", help="Bundle directory (rt3lab compress).")
]
Board = Annotated[
    str | None,
    typer.Option(
        "--board",
        help="Board measured (its shipped profile name, or a label with --base); "
        "in host mode, the board whose levels and power the host latencies are projected to.",
    ),
]
Out = Annotated[
    Path | None, typer.Option("--out", help="PROFILE.yaml to write (CSV and JSON beside it).")
]
Power = Annotated[
    str,
    typer.Option(
        "--power",
        help="A driver of `rt3lab meter list`: DRIVER:PORT for a USB meter (um34c:PORT, "
        "tc66c:PORT, ppk2:PORT, ...), DRIVER[:RAIL,...] for an on-board sensor (rapl, "
        "ina3221[:RAIL], pi5-pmic), or none. 'none' is host mode: latency only, frequency "
        "left alone.",
    ),
]
CpufreqRoot = Annotated[
    Path,
    typer.Option(
        "--cpufreq-root",
        help="sysfs root (a fake tree with the kernel's layout "
        "works); a path ending in devices/system/cpu is accepted too.",
    ),
]
Policy = Annotated[str | None, typer.Option("--policy", help="cpufreq policy: policyN, cpuN or N.")]
Adb = Annotated[
    str | None,
    typer.Option(
        "--adb", help="Control an Android device over adb (serial, or '-' for the only one)."
    ),
]
Levels = Annotated[str | None, typer.Option("--levels", help="kHz list (or MHz/GHz), or 'all'.")]
Base = Annotated[
    str | None,
    typer.Option(
        "--base",
        help="Profile giving battery, governor, deadlines and voltages "
        "(default: --board when it is a shipped profile).",
    ),
]
Name = Annotated[str | None, typer.Option("--name", help="Name of the profile written.")]
Sets = Annotated[str | None, typer.Option("--sets", help="Comma-separated variants (default all).")]
SeqLen = Annotated[int, typer.Option("--seq-len", help="Tokens per inference.")]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        help="torch+engine threads (1..256); the runner on --adb: one per core of the cluster.",
        callback=threads_option,
    ),
]
Warmup = Annotated[int, typer.Option("--warmup", help="Warm-up runs per level and variant.")]
MinRuns = Annotated[int, typer.Option("--min-runs", help="Timed runs before the CI is checked.")]
MaxRuns = Annotated[int, typer.Option("--max-runs", help="Timed runs at most.")]
RelCi = Annotated[
    float,
    typer.Option("--rel-ci", help="Stop when the median's 95% CI is within this fraction."),
]
TimeCap = Annotated[float, typer.Option("--time-cap", help="Seconds of timed runs at most.")]
Settle = Annotated[float, typer.Option("--settle", help="Seconds to wait after a level is set.")]
Idle = Annotated[float, typer.Option("--idle", help="Seconds of each idle baseline window.")]
PowerWindow = Annotated[float, typer.Option("--power-window", help="Busy window, s, at least.")]
SettleTimeout = Annotated[
    float,
    typer.Option(
        "--settle-timeout", help="Seconds for a set frequency to read back before failing."
    ),
]
PowerOutput = Annotated[
    str,
    typer.Option("--power-output", help="levels (measured per level) or model (fitted C*V^2*f)."),
]
HostKhz = Annotated[
    int | None,
    typer.Option("--host-khz", help=_HOST + "the host's clock, kHz (default: read it)."),
]
Deadlines = Annotated[
    str,
    typer.Option(
        "--deadlines",
        help=_HOST + "bundle (the rule the bundle was compressed under), dense-top (the "
        "dense model meets the top level's constraint), scaled (the bundle's BP does, as in "
        "RT3) or base (the board's constraints as they are).",
    ),
]
MemoryFraction = Annotated[
    float | None,
    typer.Option(
        "--memory-fraction",
        help=_HOST + "fraction of latency that does not scale with f (default 0).",
    ),
]
CompareBench = Annotated[
    Path | None,
    typer.Option(
        "--compare-bench",
        help=_HOST + "`rt3lab bench runtime --json` output to "
        "compare the host latencies with (same --threads).",
    ),
]
Rounds = Annotated[
    int,
    typer.Option(
        "--rounds",
        help=_HOST + "independent rounds; the interval becomes the envelope "
        "of their CIs (run-to-run noise on a shared machine).",
    ),
]
Engine = Annotated[
    str,
    typer.Option(
        "--engine",
        help="auto, torch or runner: what runs and times the model. runner: the standalone "
        "runner (no Python in the timed loop), on the --adb device or this board; auto: "
        "runner with --adb, torch otherwise.",
    ),
]
RunnerBin = Annotated[
    Path | None,
    typer.Option(
        "--runner",
        help="A runner binary to use (default: build it, for the device's CPU with --adb).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the calibration as JSON only.")]


@app.command()
def profile(
    action: Action = None,
    bundle: Bundle = None,  # required, but for restore: checked below
    board: Board = None,
    out: Out = None,
    power: Power = "none",
    cpufreq_root: CpufreqRoot = Path("/sys"),
    policy: Policy = None,
    adb: Adb = None,
    levels: Levels = None,
    base: Base = None,
    name: Name = None,
    sets: Sets = None,
    seq_len: SeqLen = 35,
    threads: Threads = None,
    warmup: Warmup = 5,
    min_runs: MinRuns = 10,
    max_runs: MaxRuns = 1000,
    rel_ci: RelCi = 0.02,
    time_cap: TimeCap = 10.0,
    settle: Settle = 0.5,
    idle: Idle = 2.0,
    power_window: PowerWindow = 2.0,
    settle_timeout: SettleTimeout = 2.0,
    power_output: PowerOutput = "levels",
    host_khz: HostKhz = None,
    deadlines: Deadlines = "bundle",
    memory_fraction: MemoryFraction = None,
    compare_bench: CompareBench = None,
    rounds: Rounds = 1,
    engine: Engine = "auto",
    runner_bin: RunnerBin = None,
    as_json: AsJson = False,
) -> None:
    """Measure latency (and power) per pattern set at every frequency level; write a profile.

    Before the board is touched its settings are journalled; `rt3lab profile restore`
    restores from a journal a killed run left, as does the next `rt3lab profile` there."""
    import click

    from lab.profiling.options import OptionError, ProfileOptions
    from lab.profiling.procedure import Plan
    from lab.profiling.session import run_session
    from termout import console as termout_console

    if action is not None:
        if action != "restore":
            raise typer.BadParameter(f"expected 'restore' or nothing, got {action!r}")
        from lab.profiling.board.connect import restore_board

        typer.echo(restore_board(cpufreq_root, adb, policy))
        return
    for value, opt in ((bundle, "--bundle"), (board, "--board"), (out, "--out")):
        if value is None:
            raise click.MissingParameter(param_hint=f"'{opt}'", param_type="option")
    options = ProfileOptions(
        bundle=bundle, board=board, out=out, power=power, cpufreq_root=cpufreq_root,
        policy=policy, adb=adb, levels=levels, base=base, name=name,
        sets=[s.strip() for s in sets.split(",")] if sets else None, seq_len=seq_len,
        threads=threads, plan=Plan(
            levels_khz=(), warmup=warmup, min_runs=min_runs, max_runs=max_runs, rel_ci=rel_ci,
            time_cap_s=time_cap, settle_s=settle, idle_s=idle, power_window_s=power_window,
        ),  # bad numbers are refused here, before the board is touched
        settle_timeout_s=settle_timeout, power_output=power_output, host_khz=host_khz,
        deadlines=deadlines, memory_fraction=memory_fraction, compare_bench=compare_bench,
        rounds=rounds, engine=engine, runner_bin=runner_bin,
    )  # fmt: skip
    console = termout_console(stderr=True)
    say = (lambda _m: None) if as_json else (lambda m: console.print(f"[dim]{m}[/dim]"))
    try:
        result = run_session(options, say, lambda m: typer.echo(m, err=True))
    except OptionError as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.option) from None
    if as_json:
        typer.echo(strict_json.dumps(result.summary(), default=str))
        return
    _print(console, result)


def _print(console: object, outcome: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from termout import console as termout_console

    assert isinstance(console, Console)
    run = outcome.run  # type: ignore[attr-defined]
    t = Table(title=f"latency per variant and level ({outcome.profile.name})")  # type: ignore[attr-defined]
    for col in ("level kHz", "variant", "median ms", "95% CI ms", "runs", "W", "flag"):
        t.add_column(col)
    for r in run.rows:
        if r.kind != "busy":
            continue
        t.add_row(
            str(r.level_khz), r.variant, f"{r.median_ms:.3f}",
            f"[{r.ci_low_ms:.3f}, {r.ci_high_ms:.3f}]", str(r.runs),
            "" if r.mean_power_w is None else f"{r.mean_power_w:.3f}",
            "" if r.freq_ok and not r.throttled else "FREQ" if not r.freq_ok else "THROTTLED",
        )  # fmt: skip
    out = termout_console()
    out.print(t)
    fit = outcome.power_fit  # type: ignore[attr-defined]
    if fit is not None:
        out.print(f"power: {fit.formula()}")
    for lf in outcome.latency_fits.values():  # type: ignore[attr-defined]
        out.print(f"{lf.variant}: {lf.formula()}")
    for c in outcome.summary().get("bench_comparison", []):  # type: ignore[attr-defined]
        out.print(
            f"vs bench runtime: {c['variant']}: {c['profile_median_ms']:.4f} ms "
            f"[{c['profile_ci_ms'][0]:.4f}, {c['profile_ci_ms'][1]:.4f}] vs "
            f"{c['bench_median_ms']:.4f} ms: {'agrees' if c['agrees'] else 'DIFFERS'}"
        )
    out.print(f"wrote {outcome.profile_path}, {outcome.csv_path}, {outcome.calibration_path}")  # type: ignore[attr-defined]
