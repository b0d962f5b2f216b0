"""The ``rt3lab`` command: one entry point, subcommands gathered from each package.

Exit codes: 0 success; 2 bad usage or bad input (one line naming what was wrong);
1 any other failure; 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module

import typer

from lab import __version__

# (module, group name or None to merge its commands into the parent). Every module here
# must import fast: heavy libraries (torch, matplotlib, dask) are imported inside commands.
COMMANDS: list[tuple[str, str | None]] = [
    ("device_profiles.cli", "profiles"),
    ("simulator.cli", None),
    ("simulator.sweep_cli", None),
    ("lab.compression.cli", None),
    ("lab.profiling.cli", None),
    ("power_meter.cli", "meter"),
    ("reports.cli", None),
    ("lab.demo", None),
]
BENCHES: list[str] = [
    "lab.models.bench",
    "lab.runtime.bench",
    "lab.compression.search_bench",
    "simulator.bench",
    "power_meter.bench",
    "simulator.sweep_bench",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rt3lab {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    """Assemble the root app from the packages' command modules."""
    app = typer.Typer(
        name="rt3lab",
        help=(
            "rt3lab: a hardware-in-the-loop lab for run-time reconfigurable Transformers "
            "on battery-powered devices."
        ),
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ) -> None:
        """rt3lab: measure what RT3 modelled."""

    for module, name in COMMANDS:
        sub = import_module(module).app
        if name is None:
            app.add_typer(sub)
        else:
            app.add_typer(sub, name=name)
    bench = typer.Typer(
        help="Benchmarks: each prints a table, or JSON with --json.", no_args_is_help=True
    )
    for module in BENCHES:
        bench.add_typer(import_module(module).app)
    app.add_typer(bench, name="bench")
    return app


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point with meaningful exit codes."""
    command = typer.main.get_command(build_app())
    debug = bool(os.environ.get("RT3LAB_DEBUG"))
    try:
        # Standalone mode: usage errors exit 2 with click's message, --help and Exit work.
        command.main(args=argv, prog_name="rt3lab", standalone_mode=True)
    except KeyboardInterrupt:
        typer.echo("rt3lab: interrupted", err=True)
        sys.exit(130)
    except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        # Bad input: every package raises ValueError subclasses naming what was wrong.
        if debug:
            raise
        typer.echo(f"rt3lab: error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        if debug:
            raise
        typer.echo(f"rt3lab: failed: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
