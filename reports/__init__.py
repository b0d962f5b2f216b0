"""Reports: plots and HTML/Markdown reports from result tables.

Reports read a run directory's files (JSON, Parquet, CSV, YAML) and never import the
simulator. ``build_report(run_dir, out)`` writes ``report.html`` (self-contained, images
embedded) and ``report.md``.
"""

from reports.plots import Figure, pareto_front, run_figures
from reports.render import ReportFiles
from reports.report import build_report
from reports.reproduction import ReproRow, reproduction_table
from reports.run import RunData, RunDirError, load_run

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
