"""``rt3lab simulate``: one discharge, or every policy side by side (``--compare``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from contracts.workloads import spec_forms
from simulator.accuracy_bound import NoTableWithinBound
from simulator.battery import battery_models
from simulator.policies import policy_forms
from termout import format_option

if TYPE_CHECKING:
    from device_profiles.schema import DeviceProfile

app = typer.Typer()


@app.command()
def simulate(
    profile: str = typer.Option(
        "rt3-paper", "--profile", help="Shipped profile name or YAML path."
    ),
    policy: str = typer.Option(
        "rt3",
        "--policy",
        help=f"{policy_forms()}.",
    ),
    battery_model: str = typer.Option(
        None,
        "--battery-model",
        help=f"{', '.join(battery_models())} (default: the profile's).",
    ),
    workload: str = typer.Option(
        "continuous",
        "--workload",
        help=f"{spec_forms()}; periodic alone: one request per top-level deadline.",
    ),
    mode: str = typer.Option("fast", "--mode", help="fast, exact or mean (Poisson: mean cycle)."),
    seed: int = typer.Option(0, "--seed"),
    governor: str = typer.Option(
        "profile", "--governor", help="profile, rt3-split, max, fixed, fixed:KHZ."
    ),
    capacity_mah: float = typer.Option(
        None, "--capacity-mah", help="Override the battery capacity."
    ),
    queue: str = typer.Option(
        "none", "--queue", help="Requests arriving while busy: none (drop), late, drop."
    ),
    governor_sample_s: float = typer.Option(
        None, "--governor-sample-s", help="The governor samples the battery at this period."
    ),
    governor_step: str = typer.Option(
        "finish",
        "--governor-step",
        help="What a governor step does to the inference in flight: finish (the work done "
        "stays done, the rest runs at the new clock on the same pattern set) or rerun "
        "(abandoned, counted as aborted, and re-run at the new level: the rule before issue 29).",
    ),
    max_accuracy_loss: float = typer.Option(
        None,
        "--max-accuracy-loss",
        help="Run each policy's longest-lasting table whose mean accuracy stays within PTS "
        "points of the unpruned model's (1.0 = one percentage point).",
        metavar="PTS",
    ),
    bundle: Path = typer.Option(None, "--bundle", help="Add a bundle's pattern sets as variants."),
    compare: bool = typer.Option(
        False, "--compare", help="Run rt3 and every baseline the variants allow; one table."
    ),
    out: Path = typer.Option(None, "--out", help="Write results.json, timeseries/, events/ here."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the results already in --out (else refused)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
    fmt: str = format_option(),
) -> None:
    """Simulate a battery discharge under DVFS with run-time pattern-set switching."""
    import simulator
    from contracts import strict_json
    from device_profiles import load_profile
    from simulator.results import check_run_dir
    from simulator.workload import check_seed

    check_seed(seed, "--seed")
    if out is not None:  # refused before the simulation, not after it
        check_run_dir(out, overwrite)
    prof = load_profile(profile)
    extra, policies = _variants_and_policies(prof, bundle, policy, compare)
    workload = simulator.headline_workload(prof, workload)
    options = dict(
        battery_model=battery_model,
        workload=workload,
        mode=mode,
        seed=seed,
        variants=extra,
        capacity_mah=capacity_mah,
        governor=governor,
        queue=queue,
        governor_sample_s=governor_sample_s,
        governor_step=governor_step,
        max_accuracy_loss=max_accuracy_loss,
    )
    runs = [_bounded_run(profile, p, options) for p in policies]
    if as_json:  # after the options proved valid; the table says it below itself
        _warn_if_only_misses(prof, extra, workload)
    results = [r for r in runs if not isinstance(r, NoTableWithinBound)]
    if out is not None and results:
        simulator.write_run(out, results, overwrite=overwrite)
        _write_provenance(out, profile)
    if as_json:
        data = [_as_json(r, max_accuracy_loss) for r in runs]
        typer.echo(strict_json.dumps(data if compare else data[0], indent=2))
        return
    _table(runs, fmt)


def _variants_and_policies(
    prof: DeviceProfile, bundle: Path | None, policy: str, compare: bool
) -> tuple[list | None, list[str]]:
    """The bundle's variants (None without one) and the policies run: ``policy``, or with
    ``compare`` rt3 and every baseline the profile's and the bundle's variants allow."""
    import simulator

    extra = None
    if bundle is not None:
        where = f"profile {prof.name!r}"
        extra = simulator.variants_from_bundle(bundle, prof.levels_khz, where)
    if not compare:
        return extra, [policy]
    names = [v.name for v in prof.variants] + [v.name for v in extra or []]
    return extra, simulator.headline_policies(names)


def _bounded_run(profile: str, policy: str, options: dict) -> object:
    """``simulate``'s result, or under an accuracy bound the ``NoTableWithinBound`` that
    says the policy has no table within it (a row without hours, not an error)."""
    import simulator

    try:
        return simulator.simulate(profile, policy=policy, **options)
    except NoTableWithinBound as none:
        return none


def _as_json(run: object, max_accuracy_loss: float | None) -> dict:
    """A result's JSON; a policy without a table within the bound: its name, the bound,
    no hours and why."""
    if isinstance(run, NoTableWithinBound):
        return {
            "policy": run.policy,
            "max_accuracy_loss": max_accuracy_loss,
            "battery_life_h": None,
            "table_choice": run.reason,
        }
    return run.model_dump(mode="json")


def _warn_if_only_misses(prof: object, extra: list | None, workload: str) -> None:
    """With ``--json``, one line on stderr before the run when no variant meets the
    deadline at any level under this workload: every inference will miss under every
    policy. A warning, not a refusal: the input is valid, and the run still answers RT3's
    own count (late inferences included) and the baselines' misses."""
    from device_profiles.deadlines import deadline_note, only_misses
    from simulator.workload import parse_workload

    wl = parse_workload(workload, 0)
    ms = None if wl.deadline_s is None else wl.deadline_s * 1e3
    if only_misses(prof, extra or (), ms):
        typer.echo(f"rt3lab: warning: {deadline_note(prof, extra or (), ms)}", err=True)


def _write_provenance(out: Path, profile: str) -> None:
    """profile.yaml (the profile simulated) and commands.json (what made results.json)."""
    import shlex
    import sys

    from contracts import strict_json
    from contracts.files import write_file
    from device_profiles import dump_profile, load_profile
    from simulator.errors import SimulatorInputError

    write_file(out / "profile.yaml", dump_profile(load_profile(profile)))
    commands_file = out / "commands.json"
    commands = {}
    if commands_file.exists():  # the other commands that wrote this run (the demo's)
        try:
            commands = strict_json.read(commands_file, 1 << 20, SimulatorInputError)
        except SimulatorInputError:
            commands = {}  # not a record of commands: replaced by one
    if not isinstance(commands, dict):
        commands = {}
    argv = ["rt3lab", *sys.argv[1:]] if sys.argv and "rt3lab" in sys.argv[0] else ["rt3lab"]
    commands["results.json"] = shlex.join(argv)
    write_file(commands_file, json.dumps(commands, indent=2) + "\n")


def _table(runs: list, fmt: str = "table") -> None:
    from rich.table import Table

    from termout import console, print_table

    results = [r for r in runs if not isinstance(r, NoTableWithinBound)]
    first = results[0] if results else None
    title = "no policy has a table within the accuracy bound"
    if first is not None:
        title = f"{first.profile} · {first.battery_model} · {first.workload} · {first.mode}"
    table = Table(title=title)
    cols = ("policy", "life (h)", "inferences", "on time", "misses", "accuracy", "energy (J)")
    for col in (*cols, "switches"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for r in runs:
        if isinstance(r, NoTableWithinBound):
            table.add_row(r.policy, "none within bound", *["-"] * (len(cols) - 1))
            continue
        acc = "n/a" if r.mean_accuracy is None else f"{r.mean_accuracy:.4f}"
        table.add_row(
            r.policy,
            f"{r.battery_life_s / 3600:.3f}",
            f"{r.inferences:,}",
            f"{r.on_time_inferences:,}",
            f"{r.deadline_misses:,}",
            acc,
            f"{r.energy_j:,.1f}",
            str(r.switches),
        )
    print_table(table, fmt)
    err = console(stderr=fmt == "csv")  # warnings never mix into CSV on stdout
    for r in runs:
        why = r.reason if isinstance(r, NoTableWithinBound) else r.table_choice
        if why is not None:
            err.print(f"[cyan]table[/] {why}", highlight=False)
    for line in grouped_warnings(results, complete=len(results) == len(runs)):
        err.print(f"[yellow]warning[/] {line}", highlight=False)


def grouped_warnings(results: list, complete: bool = True) -> list[str]:
    """Each distinct warning once, with the policies that raised it; when no variant meets
    the deadline at any level, one line saying so instead of one per policy and level
    (only when ``complete``: no policy was left out for want of a table within an
    accuracy bound, whose tables may have met the deadlines)."""
    every_level_missed = complete and all(
        r.inferences_per_variant and r.on_time_inferences == 0 and r.missed_inferences > 0
        for r in results
    )
    out: list[str] = []
    if every_level_missed and results:
        names = sorted(results[0].inferences_per_variant)
        out.append(
            f"profile {results[0].profile!r}: no variant ({', '.join(names)}) meets the "
            "deadline at any level, so every inference misses under every policy; measure "
            "pattern sets that do on the board first (`rt3lab profile --bundle BUNDLE "
            f"--board {results[0].profile}`) or add a bundle's (--bundle BUNDLE)"
        )
    seen: dict[str, list[str]] = {}
    for r in results:
        for w in r.warnings:
            if every_level_missed and "deadline" in w and "every inference there misses" in w:
                continue
            seen.setdefault(w, []).append(r.policy)
    out += [f"({', '.join(pols)}): {w}" for w, pols in seen.items()]
    return out
