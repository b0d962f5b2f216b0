"""``rt3lab simulate``: one discharge, or every policy side by side (``--compare``)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from contracts.workloads import spec_forms
from simulator.battery import battery_models
from simulator.policies import policy_forms
from termout import format_option

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
    extra = None
    if bundle is not None:
        extra = simulator.variants_from_bundle(bundle, prof.levels_khz, f"profile {prof.name!r}")
    workload = simulator.headline_workload(prof, workload)
    if compare:
        names = [v.name for v in prof.variants] + [v.name for v in extra or []]
        policies = simulator.headline_policies(names)
    else:
        policies = [policy]
    results = [
        simulator.simulate(
            profile,
            policy=p,
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
        )
        for p in policies
    ]
    if out is not None:
        simulator.write_run(out, results, overwrite=overwrite)
        _write_provenance(out, profile)
    if as_json:
        data = [r.model_dump(mode="json") for r in results]
        typer.echo(strict_json.dumps(data if compare else data[0], indent=2))
        return
    _table(results, fmt)


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


def _table(results: list, fmt: str = "table") -> None:
    from rich.table import Table

    from termout import console, print_table

    first = results[0]
    table = Table(
        title=f"{first.profile} · {first.battery_model} · {first.workload} · {first.mode}"
    )
    cols = ("policy", "life (h)", "inferences", "on time", "misses", "accuracy", "energy (J)")
    for col in (*cols, "switches"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for r in results:
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
    for line in grouped_warnings(results):
        err.print(f"[yellow]warning[/] {line}", highlight=False)


def grouped_warnings(results: list) -> list[str]:
    """Each distinct warning once, with the policies that raised it; when no variant meets
    the deadline at any level, one line saying so instead of one per policy and level."""
    every_level_missed = all(
        r.inferences_per_variant and r.on_time_inferences == 0 and r.missed_inferences > 0
        for r in results
    )
    out: list[str] = []
    if every_level_missed and results:
        names = sorted(results[0].inferences_per_variant)
        out.append(
            f"profile {results[0].profile!r}: no variant ({', '.join(names)}) meets the "
            "deadline at any level, so every inference misses under every policy; add "
            "pattern sets that do (--bundle BUNDLE, e.g. the demo's)"
        )
    seen: dict[str, list[str]] = {}
    for r in results:
        for w in r.warnings:
            if every_level_missed and "deadline" in w and "every inference there misses" in w:
                continue
            seen.setdefault(w, []).append(r.policy)
    out += [f"({', '.join(pols)}): {w}" for w, pols in seen.items()]
    return out
