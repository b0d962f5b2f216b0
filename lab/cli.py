"""The ``rt3lab`` command: one entry point, subcommands gathered from each package.

Exit codes: 0 success; 2 bad usage or bad input (one line naming what was wrong);
1 any other failure; 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import warnings
from functools import partial
from importlib import import_module
from typing import Any

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
    ("lab.runtime.cli", None),
    ("power_meter.cli", "meter"),
    ("reports.cli", None),
    ("lab.study.cli", "study"),
    ("lab.demo.run", None),
    ("lab.host.cli", "cache"),
]
BENCHES: list[str] = [
    "lab.bench.train",
    "lab.bench.runtime",
    "lab.bench.runner",
    "lab.bench.search",
    "lab.bench.distill",
    "simulator.bench",
    "power_meter.bench",
    "simulator.sweep_bench",
    "lab.bench.startup",
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rt3lab {__version__}")
        raise typer.Exit()


# Metavars in click's words for typer's bare type names (typer 0.29 prints ``<str>``).
_METAVARS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "bool": "BOOLEAN"}


def _metavar(param: Any) -> str | None:
    """A real metavar for a parameter that has none: TEXT, INTEGER, PATH, a|b, RUN_DIR."""
    if param.param_type_name == "argument":
        return param.name.upper() + ("..." if param.nargs != 1 else "")
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    try:
        label = param.display_type(None).strip("<>")
    except Exception:  # a typer without display_type: leave its own
        return None
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]
    if label.lower() in _METAVARS:
        return _METAVARS[label.lower()]
    return label if "|" in label else label.upper()


def _usage_without_braces(param: Any) -> str:
    """Click's usage convention: NAME when required, [NAME] when not (typer: {name})."""
    name = param.metavar or param.name.upper()
    return name if param.required else f"[{name}]"


def tidy_help(command: Any, plain: bool) -> None:
    """Give every parameter of ``command`` and its subcommands a real metavar.

    ``plain`` (stdout is not a terminal) switches help to click's formatter, which wraps
    long words instead of cutting them.
    """
    if plain and hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = None
    help_text = getattr(command, "help", None)
    if help_text and not getattr(command, "short_help", None):
        # A command's summary in its group's list: its first paragraph, whole.
        command.short_help = " ".join(help_text.strip().split("\n\n")[0].split())
    params = list(getattr(command, "params", []))
    if hasattr(command, "get_help_option") and hasattr(command, "context_class"):
        help_option = command.get_help_option(command.context_class(command))
        if help_option is not None:
            params.append(help_option)
    for param in params:
        if param.metavar is None:
            param.metavar = _metavar(param)
        if param.param_type_name == "argument" and hasattr(param, "_usage_display_name"):
            param._usage_display_name = partial(_usage_without_braces, param)
            param.display_type_rich = lambda ctx=None: None  # the metavar names it
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub, plain)


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


def _interrupted(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is in ``exc``'s chain (typer exits 130 on one, silently)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point with meaningful exit codes."""
    from lab.host.threads import configure_openmp

    configure_openmp()  # before torch (and OpenMP) is imported by any command
    from termout import is_terminal

    command = typer.main.get_command(build_app())
    tidy_help(command, plain=not is_terminal())
    debug = bool(os.environ.get("RT3LAB_DEBUG"))
    if not debug:  # a warning is one line naming what it is about, no source line
        warnings.formatwarning = lambda message, *_a, **_k: f"rt3lab: warning: {message}\n"
    try:
        # Standalone mode: usage errors exit 2 with click's message, --help and Exit work.
        command.main(args=argv, prog_name="rt3lab", standalone_mode=True)
    except KeyboardInterrupt:
        typer.echo("rt3lab: interrupted", err=True)
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 130 and _interrupted(exc):  # typer's exit for a Ctrl-C in a command
            typer.echo("rt3lab: interrupted", err=True)
        raise
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
