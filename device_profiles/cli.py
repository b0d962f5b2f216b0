"""``rt3lab profiles``: list, show and validate device profiles."""

from __future__ import annotations

from pathlib import Path

import typer

from contracts import strict_json
from termout import format_option, print_table

app = typer.Typer(help="Device profiles: boards as validated data.", no_args_is_help=True)


@app.command("list")
def list_profiles(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    fmt: str = format_option(),
) -> None:
    """List the profiles that ship with rt3lab."""
    from rich.table import Table

    from device_profiles.loader import load_profile, shipped_profiles

    rows = []
    for name in shipped_profiles():
        p = load_profile(name)
        levels = p.levels_khz
        rows.append(
            {
                "name": name,
                "board": p.board.name,
                "soc": p.board.soc,
                "levels": len(levels),
                "max_mhz": levels[-1] / 1000,
                "battery_wh": round(p.battery.energy_j / 3600, 3),
                "variants": [v.name for v in p.variants],
            }
        )
    if as_json:
        typer.echo(strict_json.dumps(rows, indent=2))
        return
    table = Table(title="Shipped device profiles")
    for col in ("name", "board", "soc", "levels", "max MHz", "battery Wh", "variants"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            r["board"],
            r["soc"],
            str(r["levels"]),
            f"{r['max_mhz']:.0f}",
            f"{r['battery_wh']:.2f}",
            ", ".join(r["variants"]),
        )
    print_table(table, fmt)


@app.command("show")
def show(
    profile: str = typer.Argument(..., help="A shipped profile's name or a YAML path."),
    as_json: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
) -> None:
    """Print a validated profile (YAML, or JSON with --json).

    When no variant meets the deadline at some level (at every level: every inference
    misses, and the board needs `rt3lab profile --bundle` first), one line on stderr says
    so; stdout stays the profile alone.
    """
    from device_profiles.deadlines import deadline_note
    from device_profiles.loader import dump_profile, load_profile

    p = load_profile(profile)
    if as_json:
        typer.echo(strict_json.dumps(p.model_dump(mode="json", exclude_none=True), indent=2))
    else:
        typer.echo(dump_profile(p), nl=False)
    note = deadline_note(p)
    if note is not None:
        typer.echo(f"note: {note}", err=True)


@app.command("validate")
def validate(
    paths: list[Path] = typer.Argument(..., metavar="PROFILE.yaml...", help="Profiles to check."),
) -> None:
    """Exit 0 when every file validates; else exit 2 naming each bad file, field and why.

    Every file is checked (one line each), even after a bad one.
    """
    from device_profiles.loader import load_profile

    bad = []
    for path in paths:
        try:
            p = load_profile(path)
        except (ValueError, FileNotFoundError) as exc:
            typer.echo(f"rt3lab: error: {exc}", err=True)
            bad.append(path)
            continue
        typer.echo(f"{path}: ok ({p.name}, {len(p.levels_khz)} levels, {len(p.variants)} variants)")
    if bad:
        raise typer.Exit(2)
