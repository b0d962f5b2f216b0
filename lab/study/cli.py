"""``rt3lab study ...``: studies over a bundle (``deadlines``: the deadline map) and across
schemes (``schemes``: which reconfiguration buys the most battery)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from contracts import strict_json
from lab.study.grid import DEFAULT_POINTS, MAX_POINTS, MIN_POINTS

app = typer.Typer(
    help="Studies: deadlines (the deadline map of a bundle), schemes (every reconfiguration "
    "scheme on one map).",
    no_args_is_help=True,
)


@app.command()
def deadlines(
    bundle: Path = typer.Option(..., "--bundle", help="The bundle (rt3lab compress --out)."),
    points: int = typer.Option(
        DEFAULT_POINTS,
        "--points",
        help=f"Deadlines swept, {MIN_POINTS} to {MAX_POINTS}: from scaled to dense-top, then "
        "one past it where the dense model meets every level.",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write deadlines.json and the two figures here."
    ),
    scheduler: str = typer.Option(
        "local", "--scheduler", help="'local' for a LocalCluster, or a dask scheduler address."
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="Local workers (default: min(2, CPUs))."
    ),
    in_process: bool = typer.Option(
        False, "--in-process", help="Local workers as threads in this process."
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="Torch and engine threads (default: the bundle's latency table's; a table at "
        "other threads is measured again).",
    ),
    episodes: int | None = typer.Option(
        None, "--episodes", help="Search episodes per point (default: the bundle's)."
    ),
    resamples: int = typer.Option(200, "--resamples", help="Bootstrap resamples per point."),
    as_json: bool = typer.Option(False, "--json", help="Print the study's JSON only."),
) -> None:
    """The deadline map: sweep the top level's deadline from RT3's BP anchor (scaled) to
    dense-top and past it; at each point re-run the search, re-score and re-time the sets,
    and simulate every policy with 95 % intervals."""
    from lab.study.deadlines import DeadlineStudyOptions, deadline_study

    options = DeadlineStudyOptions(
        bundle, points, out, scheduler, workers, in_process, threads, episodes, resamples
    )
    options.check()  # bad input: one line, exit 2, before anything loads
    doc = deadline_study(options, say=_stderr_lines())
    if as_json:
        typer.echo(strict_json.dumps(doc, indent=1))
        return
    _print(doc)


@app.command()
def schemes(
    names: str = typer.Option(
        "rt3,width,depth,early-exit",
        "--schemes",
        help="The schemes compared, comma-separated (contracts.schemes.SCHEMES).",
    ),
    quick: bool = typer.Option(
        False, "--quick", help="The quick budget (the default; same as --budget quick)."
    ),
    budget: str = typer.Option(
        "quick", "--budget", metavar="quick|default|test", help="compress's budget, every scheme."
    ),
    board: str = typer.Option("rt3-paper", "--board", help="The device profile simulated."),
    out: Path = typer.Option(
        Path("schemes-study"),
        "--out",
        help="The study's directory: bundles/SCHEME (reused when complete), profiles/, "
        "schemes.json and schemes-frontier.png.",
    ),
    data: str = typer.Option("builtin", "--data", help="The data compress trains on."),
    resamples: int = typer.Option(200, "--resamples", help="Bootstrap resamples per scheme."),
    max_accuracy_loss: float = typer.Option(
        1.0,
        "--max-accuracy-loss",
        metavar="PTS",
        help="Equal accuracy: a policy counts when its mean accuracy is within PTS points of "
        "the dense model's.",
    ),
    seed: int = typer.Option(0, "--seed", help="One seed for every scheme."),
    threads: int | None = typer.Option(None, "--threads", help="torch threads."),
    as_json: bool = typer.Option(False, "--json", help="Print the study's JSON only."),
) -> None:
    """Every scheme on one map: compress each (same budget and seed), profile its bundle on
    this host, simulate every policy with 95 % intervals, and say which scheme lasts longest
    within --max-accuracy-loss points of dense; the frontier plot beside the JSON."""
    from lab.study.schemes import SchemeStudyOptions, scheme_study

    options = SchemeStudyOptions(
        names, "quick" if quick else budget, board, out, data, resamples, max_accuracy_loss,
        seed, threads,
    )  # fmt: skip
    options.check()  # bad input: one line, exit 2, before anything trains
    doc = scheme_study(options, say=_stderr_lines())
    if as_json:
        typer.echo(strict_json.dumps(doc, indent=1))
        return
    _print_schemes(doc)


def _print_schemes(doc: dict[str, Any]) -> None:
    """Per scheme its best policy within the bound, then the summary."""
    from rich.table import Table

    from termout import console

    bound = doc["max_accuracy_loss"]
    table = Table(title=f"schemes on {doc['board']} ({doc['budget']} budget, {doc['host']})")
    table.add_column("scheme")
    table.add_column(f"best within {bound:g} pt")
    for col in ("hours", "95 % interval", "accuracy"):
        table.add_column(col, justify="right")
    for scheme, e in doc["schemes"].items():
        b = e["best_within_accuracy"] or {}
        ci = b.get("ci95")
        table.add_row(
            scheme,
            b.get("policy", "none"),
            "" if not b else f"{b['battery_life_h']:.2f}",
            f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "",
            "" if not b else f"{b['mean_accuracy']:.4f}",
        )
    shown = console()
    shown.print(table)
    for line in doc["summary"]["sentences"]:
        shown.print(line, highlight=False)
    for fig in doc.get("figures", []):
        shown.print(f"figure: {fig}", highlight=False)


def _stderr_lines() -> Any:
    from termout import console

    err = console(stderr=True)
    return lambda m: err.print(m, style="dim", markup=False, highlight=False)


def _ratio(r: dict[str, Any]) -> str:
    if r.get("point") is None:
        return "n/a"
    ci = r.get("ci95")
    return f"{r['point']:.2f}x" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _print(doc: dict[str, Any]) -> None:
    """The table: per point, rt3's accuracy and its gains in hours with their intervals."""
    from rich.table import Table

    from termout import console

    table = Table(title=f"deadline map of {doc['bundle']} ({doc['profile']}, {doc['host']})")
    bases = ("static-sparse", "dvfs-only:bp", "dense-max")
    for col in ("top deadline ms", "anchor", "rt3 accuracy", *(f"hours vs {b}" for b in bases)):
        table.add_column(col, justify="left" if col == "anchor" else "right")
    for p in doc["points"]:
        acc = p["policies"]["rt3"]["mean_accuracy"]
        table.add_row(
            f"{p['top_deadline_ms']:.4g}",
            p["anchor"] or "",
            "n/a" if acc is None else f"{acc:.4f}",
            *(_ratio(p["gains"].get(b, {}).get("hours", {})) for b in bases),
        )
    out = console()
    out.print(table)
    for line in doc["summary"]["sentences"]:
        out.print(line, highlight=False)
    out.print(f"accuracy samples: {doc['accuracy_samples']}", highlight=False)
    for fig in doc.get("figures", []):
        out.print(f"figure: {fig}", highlight=False)
