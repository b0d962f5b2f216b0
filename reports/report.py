"""Building a report from a run directory or a sweep directory."""

from __future__ import annotations

from pathlib import Path

from contracts.policies import REFERENCE
from contracts.workloads import workload_label
from reports.plots import run_figures
from reports.render import (
    ReportFiles,
    flags_block,
    headline_table,
    host_block,
    reproduction_block,
    spread_block,
    warnings_block,
    write_report,
)
from reports.reproduction import reproduction_table
from reports.run import RunDirError, load_run
from reports.sweep_summary import is_sweep_dir, load_sweep, sweep_figures, sweep_tables
from reports.verdict import provenance_sentence, verdict_paragraph


def build_report(run_dir: str | Path, out: str | Path, overwrite: bool = False) -> ReportFiles:
    """Write ``report.html`` and ``report.md`` for a run directory (or a sweep's) to ``out``.

    A report already in ``out`` is refused unless ``overwrite``. Raises ``RunDirError`` (a
    ValueError) naming what is missing or malformed.
    """
    from contracts.files import refuse_existing

    src, dst = Path(run_dir), Path(out)
    refuse_existing([dst / "report.html", dst / "report.md"], overwrite, RunDirError)
    if not (src / "results.json").is_file() and src.is_dir() and is_sweep_dir(src):
        df, manifest = load_sweep(src)
        return write_report(
            dst,
            f"rt3lab sweep report: {src.name}",
            str(src),
            sweep_tables(df, manifest),
            sweep_figures(df),
        )
    if src.is_dir() and not (src / "results.json").is_file():
        raise RunDirError(
            f"{src}: no results.json and no sweep dataset (sweep.json, cells/): nothing to "
            "report; write a run with `rt3lab simulate --out DIR`, `rt3lab demo` or "
            "`rt3lab sweep`"
        )
    run = load_run(src)
    tables = [headline_table(run), reproduction_block(reproduction_table(run))]
    for block in (warnings_block(run), flags_block(run), host_block(run), spread_block(run)):
        if block is not None:
            tables.append(block)
    workloads = {str(r.get("workload")) for r in run.records}
    label = workload_label(workloads.pop()) if len(workloads) == 1 else ""
    rt3 = run.record(REFERENCE)
    measured = provenance_sentence(rt3) if rt3 is not None else ""
    text = verdict_paragraph(run.records, label, measured)
    if (run.profile or {}).get("flags"):
        text += f" The profile carries {len(run.profile['flags'])} measurement flag(s)."
    profile = run.records[0].get("profile", "")
    return write_report(
        dst, f"rt3lab report: {profile}", str(src), tables, run_figures(run), verdict=text
    )
