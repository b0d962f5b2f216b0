"""Building a report from a run directory or a sweep directory."""

from __future__ import annotations

from pathlib import Path

from contracts.policies import REFERENCE
from contracts.workloads import workload_label
from reports.commands import short_commands
from reports.deadline_map import deadline_map_block, map_sentences
from reports.energy import energy_block
from reports.intervals import read_intervals
from reports.plots import run_figures
from reports.render import (
    ReportFiles,
    TableBlock,
    commands_block,
    flags_block,
    headline_table,
    host_block,
    reproduction_block,
    spread_block,
    warnings_block,
    write_report,
)
from reports.reproduction import reproduction_table
from reports.run import RunData, RunDirError, load_run
from reports.sweep_summary import is_sweep_dir, load_sweep, sweep_figures, sweep_tables
from reports.verdict import Verdict, build_verdict, provenance_sentence


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
    return write_report(
        dst,
        f"rt3lab report: {run.records[0].get('profile', '')}",
        str(src),
        run_tables(run),
        run_figures(run),
        verdict=run_verdict(run),
    )


def run_tables(run: RunData) -> list[TableBlock]:
    """The run's tables in report order: headline, reproduction, energy, then what the run
    has of warnings, flags, host, spread, and the commands (once, short paths) last."""
    tables = [
        headline_table(run),
        reproduction_block(reproduction_table(run)),
        energy_block(run),
    ]
    for block in (
        deadline_map_block(run),
        warnings_block(run),
        flags_block(run),
        host_block(run),
        spread_block(run),
        commands_block(short_commands(run.commands, run.path)),
    ):
        if block is not None:
            tables.append(block)
    return tables


def run_verdict(run: RunData) -> Verdict:
    """The run's verdict: its workload, what rt3 ran, its gains, the intervals found and
    what was measured."""
    workloads = {str(r.get("workload")) for r in run.records}
    label = workload_label(workloads.pop()) if len(workloads) == 1 else ""
    rt3 = run.record(REFERENCE)
    measured = provenance_sentence(rt3) if rt3 is not None else ""
    if (run.profile or {}).get("flags"):
        measured += f" The profile carries {len(run.profile['flags'])} measurement flag(s)."
    intervals = read_intervals(run.records, run.uncertainty)
    verdict = build_verdict(run.records, label, measured.strip(), intervals)
    if run.deadline_map:  # what would change the answer: the deadline
        verdict.notes[:0] = map_sentences(run.deadline_map)
    pool = (run.uncertainty or {}).get("bundles")
    if isinstance(pool, int) and pool > 1:  # the demo's intervals, pooled over replicas
        sources = (run.uncertainty or {}).get("sources") or ""
        verdict.notes.append(f"The 95 % intervals cover {pool} bundles: {sources}.")
    return verdict
