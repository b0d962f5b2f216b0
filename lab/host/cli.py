"""``rt3lab cache info|clear``: see and empty the cache (``$RT3LAB_CACHE``)."""

from __future__ import annotations

import typer

from contracts import strict_json
from termout import format_option, print_table

app = typer.Typer(help="The cache: $RT3LAB_CACHE, else ~/.cache/rt3lab.", no_args_is_help=True)


@app.command("info")
def info(
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
    fmt: str = format_option(),
) -> None:
    """Where the cache is and what each part of it holds."""
    from lab.host.cache import cache_info

    result = cache_info()
    if as_json:
        typer.echo(strict_json.dumps(result.to_dict(), indent=2))
        return
    from rich.table import Table

    table = Table(title=f"rt3lab cache at {result.root}")
    for column in ("part", "holds", "files", "MB"):
        table.add_column(column, justify="right" if column in ("files", "MB") else "left")
    for p in result.parts:
        table.add_row(p.name, p.holds, f"{p.files:,}", f"{p.bytes / 1e6:,.1f}")
    print_table(table, fmt)


@app.command("clear")
def clear(
    parts: list[str] = typer.Argument(None, help="Parts to clear (default: all but profiling)."),
    journals: bool = typer.Option(
        False, "--journals", help="Also delete profiling restore journals."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Delete cached artefacts; every one of them is rebuilt when next needed."""
    from lab.host.cache import clear_cache

    removed = clear_cache(parts or None, journals=journals)
    if as_json:
        typer.echo(strict_json.dumps({"removed": removed}, indent=2))
        return
    typer.echo(f"removed {len(removed)} item(s)" + "".join(f"\n  {r}" for r in removed))
