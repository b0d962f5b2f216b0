"""``rt3lab bench startup``: how long the CLI takes to start, against typer and rich alone.

Each command runs ``--runs`` times in a fresh interpreter, interleaved so that load on the
machine touches all of them alike; the table gives the median and best wall time, the ratio
of each median to ``import typer, rich``'s, and the load average before and after.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import typer

from contracts import strict_json

app = typer.Typer()


def _commands() -> dict[str, list[str]]:
    script = Path(sys.executable).with_name("rt3lab")
    rt3lab = [str(script)] if script.exists() else [sys.executable, "-m", "lab"]
    return {
        "python -c 'import typer, rich'": [sys.executable, "-c", "import typer, rich"],
        "rt3lab --help": [*rt3lab, "--help"],
        "python -c 'import simulator'": [sys.executable, "-c", "import simulator"],
        "python -c 'pass'": [sys.executable, "-c", "pass"],
    }


@app.command()
def startup(
    runs: int = typer.Option(15, "--runs", help="Runs of each command (interleaved)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Time rt3lab --help and import simulator against import typer, rich, side by side."""
    commands = _commands()
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            t0 = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - t0)
    load_after = os.getloadavg()
    base = statistics.median(times["python -c 'import typer, rich'"])
    rows = [
        {
            "command": name,
            "median_s": statistics.median(t),
            "best_s": min(t),
            "ratio_to_typer_rich": statistics.median(t) / base,
        }
        for name, t in times.items()
    ]
    result = {
        "runs": runs,
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
        "rows": rows,
    }
    if as_json:
        typer.echo(strict_json.dumps(result))
        return
    from rich.table import Table

    from termout import print_table

    table = Table(title=f"start-up, {runs} interleaved runs each")
    for col in ("command", "median s", "best s", "x typer+rich"):
        table.add_column(col, justify="left" if col == "command" else "right")
    for r in rows:
        table.add_row(
            r["command"],
            f"{r['median_s']:.3f}",
            f"{r['best_s']:.3f}",
            f"{r['ratio_to_typer_rich']:.2f}",
        )
    print_table(table)
    typer.echo(
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in load_after)
    )
