"""Reports: plots and HTML/Markdown reports from result tables.

Reports read a run directory's files (JSON, Parquet, CSV, YAML) and never import the
simulator. ``build_report(run_dir, out)`` writes ``report.html`` (self-contained, images
embedded) and ``report.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contracts.lazy import lazy_exports

if TYPE_CHECKING:
    from reports.pareto import pareto_front
    from reports.plots import Figure, run_figures
    from reports.render import ReportFiles
    from reports.report import build_report
    from reports.reproduction import ReproRow, reproduction_table
    from reports.run import RunData, RunDirError, load_run

# Public names and the module defining each: imported on first use (PEP 562), so that
# importing the package (as the CLI does at start-up) stays light.
_LAZY: dict[str, str] = {
    "Figure": "reports.plots",
    "pareto_front": "reports.pareto",
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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
