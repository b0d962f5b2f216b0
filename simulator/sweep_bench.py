"""``rt3lab bench sweep``: sweep cells per second on a dask LocalCluster against a serial loop
over the same cells in the same run."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from typing import Any

import typer

app = typer.Typer()


def bench_config(n_cells: int) -> Any:
    """A sweep of about ``n_cells`` cells: rt3-paper, every policy and battery model,
    small capacities (fast mode) so each cell is a short simulation."""
    from simulator import POLICIES
    from simulator.sweep import validate_config

    per_cap = len(POLICIES) * 4 * 2  # policies x battery models x workloads
    n_caps = max(1, math.ceil(n_cells / per_cap))
    return validate_config(
        {
            "profiles": ["rt3-paper"],
            "policies": list(POLICIES),
            "battery_models": ["ideal", "peukert", "kibam", "thevenin"],
            "capacities_mah": [round(0.5 + 0.05 * i, 3) for i in range(n_caps)],
            "workloads": ["continuous", "periodic:5"],
            "seeds": [0],
            "mode": "fast",
        },
        source="bench",
    )


def _cpu_s() -> float:
    """This process's CPU seconds (user + system), run on each worker too."""
    return time.process_time()


def _dask_run(cfg: Any, processes: bool, workers: int) -> dict[str, float]:
    from simulator.sweep import run_sweep, start_client

    t0 = time.perf_counter()
    client = start_client("local", workers, processes=processes)
    started = time.perf_counter() - t0
    try:
        with tempfile.TemporaryDirectory(prefix="rt3lab-bench-sweep-") as tmp:
            w0 = client.run(_cpu_s) if processes else {}
            c0 = time.process_time()
            summary = run_sweep(cfg, tmp, client)
            client_cpu = time.process_time() - c0
            w1 = client.run(_cpu_s) if processes else {}
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    out = {
        "cluster_start_s": started,
        "wall_s": summary.wall_s,
        "cells_per_s": summary.ran / summary.wall_s,
        "cells_per_s_with_start": summary.ran / (summary.wall_s + started),
        "batches": summary.batches,
        # CPU seconds the sweep took (threads: all in this process): what the other
        # engineers' load does not inflate as much as wall time
        "client_cpu_s": client_cpu,
    }
    if processes:
        out["workers_cpu_s"] = sum(w1[k] - w0[k] for k in w0)
    return out


@app.command()
def sweep(
    n_cells: int = typer.Option(2000, "--cells", help="About how many cells to run."),
    workers: int | None = typer.Option(None, "--workers", help="Local workers (default 2)."),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Cells per second: serial loop vs LocalCluster (processes, and threads), same cells."""
    from simulator.sweep import cells, run_cell, warm_up

    cfg = bench_config(n_cells)
    todo = cells(cfg)
    n_workers = workers or min(2, os.cpu_count() or 1)
    warm_up()  # the same warm-up as each worker's (imports), then the profile cache
    run_cell(todo[0])
    t0, c0 = time.perf_counter(), time.process_time()
    for c in todo:
        run_cell(c)
    serial_s = time.perf_counter() - t0
    serial_cpu = time.process_time() - c0
    procs = _dask_run(cfg, processes=True, workers=n_workers)
    threads = _dask_run(cfg, processes=False, workers=n_workers)
    record = {
        "cells": len(todo),
        "workers": n_workers,
        "cpus": os.cpu_count(),
        "serial_wall_s": round(serial_s, 4),
        "serial_cells_per_s": round(len(todo) / serial_s, 1),
        "dask_processes": {k: round(v, 4) for k, v in procs.items()},
        "dask_threads": {k: round(v, 4) for k, v in threads.items()},
        "speedup_processes": round(procs["cells_per_s"] * serial_s / len(todo), 3),
        "speedup_threads": round(threads["cells_per_s"] * serial_s / len(todo), 3),
        "serial_cpu_s": round(serial_cpu, 4),
        # the serial loop's CPU over the processes run's (client and workers): the
        # speedup 2 workers can reach on 2 idle cores is about 2x this
        "cpu_efficiency_processes": round(
            serial_cpu / (procs["client_cpu_s"] + procs["workers_cpu_s"]), 3
        ),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if as_json:
        typer.echo(json.dumps(record))
        return

    from rich.table import Table

    from termout import console as termout_console

    table = Table(title=f"sweep: {len(todo)} cells, {n_workers} local workers")
    for col in ("runner", "wall s", "cells/s", "speedup", "cluster start s"):
        table.add_column(col, justify="right")
    table.add_row("serial loop", f"{serial_s:.2f}", f"{len(todo) / serial_s:.0f}", "1.00", "-")
    for name, r, sp in (
        ("LocalCluster, processes", procs, record["speedup_processes"]),
        ("LocalCluster, threads", threads, record["speedup_threads"]),
    ):
        table.add_row(
            name,
            f"{r['wall_s']:.2f}",
            f"{r['cells_per_s']:.0f}",
            f"{sp:.2f}",
            f"{r['cluster_start_s']:.2f}",
        )
    termout_console().print(table)
    termout_console().print(f"load average {record['load_average']}")
