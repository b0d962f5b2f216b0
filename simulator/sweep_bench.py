"""``rt3lab bench sweep``: sweep cells per second on a dask LocalCluster against a serial loop
over the same cells in the same run."""

from __future__ import annotations

import math
import os
import tempfile
import time
from typing import Any

import typer

from contracts import strict_json

app = typer.Typer()


def bench_config(n_cells: int) -> Any:
    """A sweep of about ``n_cells`` cells: rt3-paper, every built-in policy and battery
    model, small capacities (fast mode) so each cell is a short simulation."""
    from simulator import POLICIES
    from simulator.battery import BUILT_IN_MODELS
    from simulator.sweep import validate_config

    per_cap = len(POLICIES) * len(BUILT_IN_MODELS) * 2  # policies x battery models x workloads
    n_caps = max(1, math.ceil(n_cells / per_cap))
    return validate_config(
        {
            "profiles": ["rt3-paper"],
            "policies": list(POLICIES),
            "battery_models": list(BUILT_IN_MODELS),
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


def _serial_run(todo: list[Any]) -> tuple[float, float, float]:
    """Wall and CPU seconds of a plain loop over the cells in this process, and the cells'
    own seconds summed (each row's ``wall_s``)."""
    from simulator.sweep import run_cell

    t0, c0 = time.perf_counter(), time.process_time()
    cells_s = sum(run_cell(c)["wall_s"] for c in todo)
    return time.perf_counter() - t0, time.process_time() - c0, cells_s


def _dask_run(cfg: Any, client: Any, processes: bool) -> dict[str, float]:
    """One sweep of ``cfg`` on ``client`` into a fresh directory."""
    from simulator.sweep import read_sweep, run_sweep

    with tempfile.TemporaryDirectory(prefix="rt3lab-bench-sweep-") as tmp:
        w0 = client.run(_cpu_s) if processes else {}
        c0 = time.process_time()
        summary = run_sweep(cfg, tmp, client)
        client_cpu = time.process_time() - c0
        w1 = client.run(_cpu_s) if processes else {}
        cells_s = float(read_sweep(tmp)["wall_s"].sum())
    out = {
        "wall_s": summary.wall_s,
        "cells_per_s": summary.ran / summary.wall_s,
        "batches": summary.batches,
        # CPU seconds the sweep took (threads: all in this process): what the other
        # engineers' load does not inflate as much as wall time
        "client_cpu_s": client_cpu,
        # the cells' own seconds summed over the workers: against the serial loop's, what
        # running two at once costs the cells themselves (shared caches), not dask
        "cells_s": cells_s,
    }
    if processes:
        out["workers_cpu_s"] = sum(w1[k] - w0[k] for k in w0)
    return out


def _cluster_runs(
    cfg: Any, todo: list[Any], processes: bool, workers: int, repeats: int
) -> tuple[float, list[dict[str, float]]]:
    """Start a LocalCluster, then ``repeats`` pairs of (serial loop, sweep on the cluster)
    side by side; returns the start-up seconds and one record per pair."""
    from simulator.sweep import close_client, start_client

    t0 = time.perf_counter()
    client = start_client("local", workers, processes=processes)
    started = time.perf_counter() - t0
    runs = []
    try:
        for _ in range(repeats):
            serial_s, serial_cpu, serial_cells_s = _serial_run(todo)
            run = _dask_run(cfg, client, processes)
            run.update(
                serial_wall_s=serial_s,
                serial_cpu_s=serial_cpu,
                serial_cells_s=serial_cells_s,
                speedup=run["cells_per_s"] * serial_s / len(todo),
            )
            if processes:
                run["cpu_efficiency"] = serial_cpu / (run["client_cpu_s"] + run["workers_cpu_s"])
            runs.append({k: round(v, 4) for k, v in run.items()})
    finally:
        close_client(client)
    return started, runs


@app.command()
def sweep(
    n_cells: int = typer.Option(2000, "--cells", help="About how many cells to run."),
    workers: int | None = typer.Option(None, "--workers", help="Local workers (default 2)."),
    repeats: int = typer.Option(
        3, "--repeats", min=1, help="Pairs of (serial loop, sweep on the cluster) per runner."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Cells per second: serial loop vs LocalCluster (processes, and threads), same cells,
    each pair run side by side ``--repeats`` times; the speedup is the median pair's."""
    from statistics import median

    from simulator.bench import load_average
    from simulator.sweep import cells, run_cell, warm_up

    load = load_average()  # before the bench adds its own
    cfg = bench_config(n_cells)
    todo = cells(cfg)
    n_workers = workers or min(2, os.cpu_count() or 1)
    warm_up()  # the same warm-up as each worker's (imports), then the profile cache
    run_cell(todo[0])
    procs_start, procs = _cluster_runs(cfg, todo, True, n_workers, repeats)
    threads_start, threads = _cluster_runs(cfg, todo, False, n_workers, repeats)
    record = {
        "cells": len(todo),
        "workers": n_workers,
        "cpus": os.cpu_count(),
        "repeats": repeats,
        "serial_cells_per_s": round(len(todo) / median(r["serial_wall_s"] for r in procs), 1),
        "cluster_start_s": {"processes": round(procs_start, 4), "threads": round(threads_start, 4)},
        "dask_processes": procs,
        "dask_threads": threads,
        "speedup_processes": round(median(r["speedup"] for r in procs), 3),
        "speedup_processes_range": [
            min(r["speedup"] for r in procs),
            max(r["speedup"] for r in procs),
        ],
        "speedup_threads": round(median(r["speedup"] for r in threads), 3),
        # the serial loop's CPU over the processes run's (client and workers): the
        # speedup 2 workers can reach on 2 idle cores is about 2x this
        "cpu_efficiency_processes": round(median(r["cpu_efficiency"] for r in procs), 3),
        "load_average": load,
    }
    if as_json:
        typer.echo(strict_json.dumps(record))
        return

    from rich.table import Table

    from termout import console as termout_console

    table = Table(title=f"sweep: {len(todo)} cells, {n_workers} local workers")
    for col in ("runner", "serial s", "sweep s", "batches", "speedup", "cluster start s"):
        table.add_column(col, justify="right")
    for name, runs, started in (
        ("LocalCluster, processes", procs, procs_start),
        ("LocalCluster, threads", threads, threads_start),
    ):
        for r in runs:
            table.add_row(
                name,
                f"{r['serial_wall_s']:.2f}",
                f"{r['wall_s']:.2f}",
                f"{r['batches']:.0f}",
                f"{r['speedup']:.2f}",
                f"{started:.2f}",
            )
    termout_console().print(table)
    termout_console().print(
        f"median speedup: processes {record['speedup_processes']:.2f}, "
        f"threads {record['speedup_threads']:.2f}; "
        f"load average at the start {record['load_average']}"
    )
