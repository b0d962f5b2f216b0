"""Reports: plots and HTML/Markdown reports from result tables.

Reports read a run directory's files (JSON, Parquet, CSV, YAML) and never import the
simulator. ``build_report(run_dir, out)`` writes ``report.html`` (self-contained, images
embedded) and ``report.md``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reports.plots import Figure, pareto_front, run_figures
    from reports.render import ReportFiles
    from reports.report import build_report
    from reports.reproduction import ReproRow, reproduction_table
    from reports.run import RunData, RunDirError, load_run

# Public names and the module defining each: imported on first use (PEP 562), so that
# importing the package (as the CLI does at start-up) stays light.
_LAZY: dict[str, str] = {
    "Figure": "reports.plots",
    "pareto_front": "reports.plots",
    "run_figures": "reports.plots",
    "ReportFiles": "reports.render",
    "build_report": "reports.report",
    "ReproRow": "reports.reproduction",
    "reproduction_table": "reports.reproduction",
    "RunData": "reports.run",
    "RunDirError": "reports.run",
    "load_run": "reports.run",
}

__all__ = [
    "Figure",
    "ReportFiles",
    "ReproRow",
    "RunData",
    "RunDirError",
    "build_report",
    "load_run",
    "pareto_front",
    "reproduction_table",
    "run_figures",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The package's public names, loaded or not."""
    return sorted(set(globals()) | set(_LAZY))
