"""``rt3lab demo``: the main job, end to end on built-in defaults."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer()


@app.command()
def demo(
    out: Path = typer.Option(Path("rt3lab-out"), "--out", help="Where the demo writes."),
) -> None:
    """Run the lab end to end on built-in defaults and print the headline table."""
    from device_profiles import load_profile, shipped_profiles

    out.mkdir(parents=True, exist_ok=True)
    table = Table(title="rt3lab demo: shipped device profiles")
    for col in ("profile", "levels (MHz)", "busy W at levels", "battery J"):
        table.add_column(col)
    for name in shipped_profiles():
        p = load_profile(name)
        levels = p.levels_khz
        shown = levels if len(levels) <= 4 else [levels[0], levels[len(levels) // 2], levels[-1]]
        table.add_row(
            name,
            ", ".join(f"{f / 1000:.0f}" for f in shown),
            ", ".join(f"{p.power_at(f)[0]:.3f}" for f in shown),
            f"{p.battery.energy_j:.0f}",
        )
    Console().print(table)
    typer.echo(f"demo output in {out}")
