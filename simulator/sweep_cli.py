"""``rt3lab sweep CONFIG.yaml``: a cross product of scenarios on dask, resumable."""

from __future__ import annotations

from pathlib import Path

import typer

import termout
from contracts import strict_json

app = typer.Typer()


@app.command()
def sweep(
    config: Path = typer.Argument(..., help="Sweep configuration (YAML): the axes to cross."),
    scheduler: str = typer.Option(
        "local", "--scheduler", help="'local' for a LocalCluster, or a dask scheduler address."
    ),
    out: Path = typer.Option(Path("rt3lab-sweep"), "--out", help="The sweep's directory."),
    workers: int | None = typer.Option(
        None, "--workers", help="Local workers (default: min(2, CPUs))."
    ),
    threads: bool = typer.Option(
        False, "--threads", help="Local workers as threads in this process, not processes."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Cells per dask task."),
    retry_failed: bool = typer.Option(
        True,
        "--retry-failed/--no-retry-failed",
        help="Run again the cells whose earlier run ended in an error (default: on).",
    ),
    write_every: float | None = typer.Option(
        None,
        "--write-every",
        help="Seconds finished cells may wait on the client before they are written, at "
        "most what a killed client loses (default 1; 0: a file per task).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON only."),
) -> None:
    """Run every cell of the sweep not yet in --out; interrupted sweeps resume, failed
    cells are retried."""
    from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn

    from contracts.files import output_dir
    from simulator.sweep import (
        SweepConfigError,
        cells,
        close_client,
        failed_cells,
        finished_cell_ids,
        load_sweep_config,
        run_sweep,
        start_client,
        write_interval,
    )

    cfg = load_sweep_config(config)
    write_interval(write_every)  # refused before a cluster starts
    output_dir(out, SweepConfigError, create=False)  # as is --out where a file stands
    total = len(cells(cfg))
    done = finished_cell_ids(out) - (failed_cells(out) if retry_failed else set())
    pending = total - len(done & {c.cell_id for c in cells(cfg)})
    client = start_client(scheduler, workers, processes=not threads)
    try:
        progress = termout.progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=as_json,
        )
        with progress:
            task = progress.add_task(
                f"sweep ({total - pending} of {total} already done)", total=pending
            )
            summary = run_sweep(
                cfg,
                out,
                client,
                batch_size=batch_size,
                on_batch=lambda done, _n: progress.update(task, completed=done),
                retry_failed=retry_failed,
                write_every_s=write_every,
            )
    finally:
        close_client(client)
    record = {
        "out": str(summary.out),
        "cells": summary.total,
        "skipped": summary.skipped,
        "ran": summary.ran,
        "errors": summary.errors,
        "retried": summary.retried,
        "failed": list(summary.failed),
        "batches": summary.batches,
        "wall_s": round(summary.wall_s, 3),
    }
    if as_json:
        typer.echo(strict_json.dumps(record))
        return
    typer.echo(
        f"sweep: {summary.ran} cells run ({summary.retried} retried after an error), "
        f"{summary.skipped} already done, {summary.errors} errors, in {summary.wall_s:.1f} s; "
        f"dataset {summary.out / 'cells'}"
    )
    for line in summary.failed:
        typer.echo(f"failed: {line}")
    typer.echo(f"summarise it with: rt3lab report {summary.out}")
