"""``rt3lab profile``: measure a board (or this host) and write a device profile."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lab.host.threads import threads_option

app = typer.Typer()


@app.command()
def profile(
    action: str | None = typer.Argument(
        None,
        metavar="[restore]",
        help="'restore': put back the frequency settings a killed run left changed (from "
        "its journal) on --cpufreq-root or --adb, and exit.",
    ),
    bundle: Path = typer.Option(None, "--bundle", help="Bundle directory (rt3lab compress)."),
    board: str = typer.Option(
        None,
        "--board",
        help="Board measured (its shipped profile name, or a label with --base); "
        "in host mode, the board whose levels and power the host latencies are projected to.",
    ),
    out: Path = typer.Option(None, "--out", help="PROFILE.yaml to write (CSV and JSON beside it)."),
    power: str = typer.Option(
        "none",
        "--power",
        help="um34c:PORT, um24c:PORT, um25c:PORT, tc66c:PORT, ppk2:PORT, rapl, ina3221[:RAIL], "
        "pi5-pmic or none. 'none' is host mode: latency only, frequency left alone.",
    ),
    cpufreq_root: Path = typer.Option(
        Path("/sys"),
        "--cpufreq-root",
        help="sysfs root (a fake tree with the kernel's layout "
        "works); a path ending in devices/system/cpu is accepted too.",
    ),
    policy: str | None = typer.Option(None, "--policy", help="cpufreq policy: policyN, cpuN or N."),
    adb: str | None = typer.Option(
        None, "--adb", help="Control an Android device over adb (serial, or '-' for the only one)."
    ),
    levels: str | None = typer.Option(None, "--levels", help="kHz list (or MHz/GHz), or 'all'."),
    base: str | None = typer.Option(
        None,
        "--base",
        help="Profile giving battery, governor, deadlines and voltages "
        "(default: --board when it is a shipped profile).",
    ),
    name: str | None = typer.Option(None, "--name", help="Name of the profile written."),
    sets: str | None = typer.Option(None, "--sets", help="Comma-separated variants (default all)."),
    seq_len: int = typer.Option(35, "--seq-len", help="Tokens per inference."),
    threads: int | None = typer.Option(None, help="torch+engine threads", callback=threads_option),
    warmup: int = typer.Option(5, "--warmup", help="Warm-up runs per level and variant."),
    min_runs: int = typer.Option(10, "--min-runs", help="Timed runs before the CI is checked."),
    max_runs: int = typer.Option(1000, "--max-runs", help="Timed runs at most."),
    rel_ci: float = typer.Option(
        0.02, "--rel-ci", help="Stop when the median's 95% CI is within this fraction."
    ),
    time_cap: float = typer.Option(10.0, "--time-cap", help="Seconds of timed runs at most."),
    settle: float = typer.Option(0.5, "--settle", help="Seconds to wait after a level is set."),
    idle: float = typer.Option(2.0, "--idle", help="Seconds of each idle baseline window."),
    power_window: float = typer.Option(2.0, "--power-window", help="Busy window, s, at least."),
    settle_timeout: float = typer.Option(
        2.0, "--settle-timeout", help="Seconds for a set frequency to read back before failing."
    ),
    power_output: str = typer.Option(
        "levels", "--power-output", help="levels (measured per level) or model (fitted C*V^2*f)."
    ),
    host_khz: int | None = typer.Option(
        None, "--host-khz", help="Host mode: the host's clock, kHz (default: read it)."
    ),
    deadlines: str = typer.Option(
        "bundle",
        "--deadlines",
        help="Host mode: bundle (the rule the bundle was compressed under), dense-top (the "
        "dense model meets the top level's constraint), scaled (the bundle's BP does, as in "
        "RT3) or base (the board's constraints as they are).",
    ),
    memory_fraction: float | None = typer.Option(
        None,
        "--memory-fraction",
        help="Host mode: fraction of latency that does not scale with f (default 0).",
    ),
    compare_bench: Path | None = typer.Option(
        None,
        "--compare-bench",
        help="Host mode: `rt3lab bench runtime --json` output to "
        "compare the host latencies with (same --threads).",
    ),
    rounds: int = typer.Option(
        1,
        "--rounds",
        help="Host mode: independent rounds; the interval becomes the envelope "
        "of their CIs (run-to-run noise on a shared machine).",
    ),
    engine: str = typer.Option(
        "auto",
        "--engine",
        help="auto, torch or runner: what runs and times the model. runner: the standalone "
        "runner (no Python in the timed loop), on the --adb device or this board; auto: "
        "runner with --adb, torch otherwise.",
    ),
    runner_bin: Path | None = typer.Option(
        None,
        "--runner",
        help="A runner binary to use (default: build it, for the device's CPU with --adb).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the calibration as JSON only."),
) -> None:
    """Measure latency (and power) per pattern set at every frequency level; write a profile.

    Before the board is touched its settings are journalled; `rt3lab profile restore`
    restores from a journal a killed run left, as does the next `rt3lab profile` there."""
    import click

    from lab.profiling.cpufreq import CpufreqControl
    from lab.profiling.procedure import Plan
    from lab.profiling.session import (
        base_profile,
        make_power,
        make_workload,
        parse_levels,
        profile_board,
        profile_host,
        resolve_engine,
        sysfs_root,
    )
    from lab.profiling.sysfs import AdbFiles, LocalFiles
    from termout import console as termout_console

    if action is not None:
        if action != "restore":
            raise typer.BadParameter(f"expected 'restore' or nothing, got {action!r}")
        _restore(cpufreq_root, adb, policy)
        return
    for value, opt in ((bundle, "--bundle"), (board, "--board"), (out, "--out")):
        if value is None:
            raise click.MissingParameter(param_hint=f"'{opt}'", param_type="option")
    if power_output not in ("levels", "model"):
        raise typer.BadParameter(f"must be levels or model, got {power_output!r}")
    console = termout_console(stderr=True)
    say = (lambda _m: None) if as_json else (lambda m: console.print(f"[dim]{m}[/dim]"))
    wanted = parse_levels(levels)
    plan_kw = dict(
        warmup=warmup, min_runs=min_runs, max_runs=max_runs, rel_ci=rel_ci,
        time_cap_s=time_cap, settle_s=settle, idle_s=idle, power_window_s=power_window,
    )  # fmt: skip
    Plan(levels_khz=(), **plan_kw)  # bad numbers are refused before the board is touched
    set_list = [s.strip() for s in sets.split(",")] if sets else None
    base_profile(board, base)  # a bad --board/--base fails before anything else
    engine = resolve_engine(engine, adb, board_mode=power.lower() != "none")
    if runner_bin is not None and not runner_bin.is_file():
        raise FileNotFoundError(f"--runner: {runner_bin}: no such file")
    root = sysfs_root(cpufreq_root)
    if adb is not None:
        from lab.profiling.adb import AndroidControl

        files = AdbFiles(serial=None if adb == "-" else adb)
    else:
        if not root.is_dir():
            raise FileNotFoundError(f"--cpufreq-root: {cpufreq_root}: no such directory")
        files = LocalFiles(root)
    if power.lower() == "none":
        if wanted is not None:
            raise typer.BadParameter(
                "host mode (--power none) measures at the current clock; "
                "--levels needs a power source and frequency control",
                param_hint="--levels",
            )
        bench = None
        if compare_bench is not None:
            try:
                bench = json.loads(compare_bench.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(
                    f"--compare-bench: {compare_bench}: not a bench JSON: {exc}"
                ) from None
        if engine == "runner" and adb is not None:
            raise typer.BadParameter(
                "host mode (--power none) runs the model on this host; on the device it "
                "needs a power source (board mode)",
                param_hint="--engine runner with --adb",
            )
        workload = make_workload(bundle, seq_len, threads, set_list, engine, None, runner_bin)
        outcome = profile_host(workload, board, out, plan_kw, host_khz, memory_fraction,
                               files if adb is None else None, name, say, bench,
                               rounds, base, deadlines)  # fmt: skip
    else:
        source = make_power(power, files)
        if adb is not None:
            control = AndroidControl(serial=None if adb == "-" else adb, policy=policy,
                                     settle_timeout_s=settle_timeout)  # fmt: skip
        else:
            control = CpufreqControl(files, policy, settle_timeout_s=settle_timeout)
        _recover(control, adb, cpufreq_root)  # a killed run's leftovers first
        # Check what can be checked before the (slow) model load; the board is not touched.
        control.check_levels(wanted or control.levels_khz())
        control.check_writable()
        workload = make_workload(bundle, seq_len, threads, set_list, engine, adb, runner_bin,
                                 control.cpus())  # fmt: skip
        outcome = profile_board(workload, control, source, board, out, plan_kw, wanted, base,
                                files, name, power_output, say)  # fmt: skip
    summary = outcome.summary()
    if as_json:
        typer.echo(json.dumps(summary, default=str))
        return
    _print(console, outcome)


def _journal(adb: str | None, cpufreq_root: Path) -> object:
    from lab.profiling.journal import Journal
    from lab.profiling.session import sysfs_root

    return Journal.for_board(sysfs_root(cpufreq_root), adb)


def _recover(control: object, adb: str | None, cpufreq_root: Path) -> None:
    """Restore from a journal a killed run left on this board (and say so); then journal
    this run's changes."""
    from lab.profiling.journal import describe, restore_from

    journal = _journal(adb, cpufreq_root)
    policy_dir = control.dir  # type: ignore[attr-defined]
    done = restore_from(journal, control)  # type: ignore[arg-type]
    if done is not None:
        typer.echo(f"rt3lab profile: {describe(done)}", err=True)
        control.dir = policy_dir  # type: ignore[attr-defined]
        control.saved = None  # type: ignore[attr-defined]  # this run saves afresh
    control.journal = journal  # type: ignore[attr-defined]


def _restore(cpufreq_root: Path, adb: str | None, policy: str | None) -> None:
    """`rt3lab profile restore`: restore from the board's journal, or say there is none."""
    from lab.profiling.cpufreq import CpufreqControl
    from lab.profiling.journal import describe, restore_from
    from lab.profiling.session import sysfs_root
    from lab.profiling.sysfs import LocalFiles

    journal = _journal(adb, cpufreq_root)
    if journal.read() is None:  # type: ignore[attr-defined]
        typer.echo(f"nothing to restore: no journal for {journal.board} ({journal.path})")  # type: ignore[attr-defined]
        return
    if adb is not None:
        from lab.profiling.adb import AndroidControl

        control: object = AndroidControl(serial=None if adb == "-" else adb, policy=policy)
    else:
        root = sysfs_root(cpufreq_root)
        if not root.is_dir():
            raise FileNotFoundError(f"--cpufreq-root: {cpufreq_root}: no such directory")
        control = CpufreqControl(LocalFiles(root), policy)
    done = restore_from(journal, control)  # type: ignore[arg-type]
    assert done is not None
    typer.echo(describe(done))


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
