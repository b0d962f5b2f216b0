"""Sweeps: the cross product of profiles, battery models, capacities, workloads, policies and
seeds, run on dask.distributed and streamed into one partitioned Parquet dataset.

A sweep directory::

    OUT/sweep.json                          the configuration and the cell count
    OUT/cells/policy=<policy>/part-<id>.parquet   one file per finished batch of cells

Every cell has a stable id (a hash of its parameters), so a sweep that is interrupted
resumes where it stopped: cells already in the dataset are skipped, never run twice. A cell
that ended in an error is run again on the next run (``retry_failed``, the default); its
failed row stays on disk, and ``read_sweep`` keeps one row per cell, a success first.
Files are written whole and then renamed, so an interruption never leaves half a file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields
from functools import cached_property, lru_cache
from itertools import product
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.results import SWEEP_COLUMNS

# The most cells one sweep holds. A sweep is planned, hashed and checked whole before any
# cell runs (a million cells: minutes and gigabytes before the first); 100,000 is minutes
# of the bench's small cells, hours of full discharges, more than a study here needs.
MAX_CELLS = 100_000
AXES = ("profiles", "policies", "battery_models", "capacities_mah", "workloads", "seeds")


class SweepConfigError(ValueError):
    """A sweep configuration that cannot run; the message names the file and field."""


class SweepConfig(BaseModel):
    """What a sweep crosses. ``None`` as a battery model or capacity means the profile's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profiles: list[str]
    policies: list[str]
    battery_models: list[str | None] = Field(default_factory=lambda: [None])
    capacities_mah: list[float | None] = Field(default_factory=lambda: [None])
    workloads: list[str] = Field(default_factory=lambda: ["continuous"])
    seeds: list[int] = Field(default_factory=lambda: [0])
    mode: str = "fast"
    bundle: str | None = None
    governor_step: str = "finish"


@dataclass(frozen=True)
class Cell:
    """One simulation of a sweep."""

    profile: str
    battery_model: str | None
    capacity_mah: float | None
    workload: str
    policy: str
    seed: int
    mode: str
    bundle: str | None = None
    governor_step: str = "finish"

    @cached_property
    def cell_id(self) -> str:
        """A stable id: the same parameters give the same id in every run and process.
        Computed once per cell (a sweep asks for it several times per cell, and a cell
        sent to a worker carries it along). A ``rerun`` cell hashes as cells did before
        the governor-step rule existed (they all ran under ``rerun``), so a dataset written
        then resumes under ``governor_step: rerun``.

        >>> Cell("rt3-paper", None, 10.0, "continuous", "rt3", 0, "fast", None, "rerun").cell_id
        'e6a43d8da18c82d74bc1'
        >>> Cell("rt3-paper", None, 10.0, "continuous", "rt3", 0, "fast").cell_id
        '428301a7201966fc545c'
        """
        params = {f: getattr(self, f) for f in _CELL_FIELDS}
        if self.governor_step == "rerun":
            del params["governor_step"]
        text = json.dumps(params, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


_CELL_FIELDS = tuple(f.name for f in fields(Cell))


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep run did: cells in the sweep, skipped as already done, run now."""

    out: Path
    total: int
    skipped: int
    ran: int
    errors: int
    batches: int
    wall_s: float
    retried: int = 0
    failed: tuple[str, ...] = ()


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep configuration (YAML); errors name the file and field."""
    from device_profiles.loader import load_yaml, read_text_file

    p = Path(path)
    if p.is_dir():
        raise SweepConfigError(f"{p}: is a directory, expected a sweep YAML file")
    data = load_yaml(read_text_file(p, SweepConfigError), str(p), SweepConfigError)
    if not isinstance(data, dict):
        raise SweepConfigError(f"{p}: expected a mapping of sweep axes at the top level")
    return validate_config(data, source=str(p))


def validate_config(data: dict[str, Any], source: str = "<sweep>") -> SweepConfig:
    """Validate axes, profiles, policies and battery models (the registered ones); reject an
    empty sweep."""
    from device_profiles import ProfileError, load_profile
    from simulator.api import MODES
    from simulator.battery import battery_models
    from simulator.policies import policy_names

    _check_lengths(data, source)
    try:
        cfg = SweepConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise SweepConfigError(f"{source}: {where}: {first['msg']}") from None
    for axis in AXES:
        if not getattr(cfg, axis):
            raise SweepConfigError(
                f"{source}: {axis}: an empty list makes an empty sweep (0 cells); "
                "give at least one value or leave the key out"
            )
    _check_cells(cfg, source)
    for i, policy in enumerate(cfg.policies):
        if policy not in policy_names():
            raise SweepConfigError(
                f"{source}: policies[{i}]: unknown policy {policy!r}, expected one of "
                f"{list(policy_names())}"
            )
    for i, model in enumerate(cfg.battery_models):
        if model is not None and model not in battery_models():
            raise SweepConfigError(
                f"{source}: battery_models[{i}]: unknown battery model {model!r}, expected "
                f"one of {list(battery_models())} or null for the profile's"
            )
    for i, cap in enumerate(cfg.capacities_mah):
        if cap is not None and not (cap > 0 and math.isfinite(cap)):
            raise SweepConfigError(f"{source}: capacities_mah[{i}]: must be > 0, got {cap}")
    if cfg.mode not in MODES:
        raise SweepConfigError(
            f"{source}: mode: expected {', '.join(map(repr, MODES[:-1]))} or {MODES[-1]!r}, "
            f"got {cfg.mode!r}"
        )
    if cfg.governor_step not in ("finish", "rerun"):
        raise SweepConfigError(
            f"{source}: governor_step: expected 'finish' or 'rerun', got {cfg.governor_step!r}"
        )
    for i, name in enumerate(cfg.profiles):
        try:
            profile = load_profile(name)
        except ProfileError as exc:
            raise SweepConfigError(f"{source}: profiles[{i}]: {exc}") from None
        _check_batteries(profile, cfg.battery_models, source)
    if cfg.bundle is not None and not Path(cfg.bundle).is_dir():
        raise SweepConfigError(f"{source}: bundle: {cfg.bundle} is not a bundle directory")
    _check_work(cfg, source)
    return cfg


def _check_lengths(data: dict[str, Any], source: str) -> None:
    """Refuse an axis longer than a whole sweep may be, before it is validated value by
    value (ten million seeds would take minutes and gigabytes to get that far)."""
    for axis in AXES:
        values = data.get(axis)
        if isinstance(values, list) and len(values) > MAX_CELLS:
            raise SweepConfigError(
                f"{source}: {axis}: {len(values):,} values, over the {MAX_CELLS:,} cells a "
                "sweep may hold; split it into several sweeps"
            )


def _check_cells(cfg: SweepConfig, source: str) -> None:
    """Refuse a cross product over ``MAX_CELLS`` (naming the longest axis) and a seed
    numpy cannot take."""
    from simulator.errors import SimulatorInputError
    from simulator.workload import check_seed

    total = math.prod(len(getattr(cfg, axis)) for axis in AXES)
    if total > MAX_CELLS:
        longest = max(AXES, key=lambda axis: len(getattr(cfg, axis)))
        raise SweepConfigError(
            f"{source}: {longest}: {len(getattr(cfg, longest)):,} values make {total:,} cells "
            f"with the other axes, over the {MAX_CELLS:,} a sweep may hold; split it into "
            "several sweeps"
        )
    for i, seed in enumerate(cfg.seeds):
        try:
            check_seed(seed, f"seeds[{i}]")
        except SimulatorInputError as exc:
            raise SweepConfigError(f"{source}: {exc}") from None


def _check_batteries(profile: Any, models: list[str | None], source: str) -> None:
    """Build each battery model from ``profile`` once: a model that needs parameters the
    profile lacks is refused before any cell runs."""
    from simulator.battery import make_battery
    from simulator.errors import SimulatorInputError

    for model in models:
        try:
            make_battery(profile, model)
        except SimulatorInputError as exc:
            raise SweepConfigError(f"{source}: battery_models: {exc}") from None


def _check_work(cfg: SweepConfig, source: str) -> None:
    """Refuse, before any cell runs, a sweep with a cell over the simulator's work bounds."""
    from simulator.api import check_run
    from simulator.bounds import WorkBoundError

    for i, cap in enumerate(cfg.capacities_mah):
        for name in cfg.profiles:
            for workload in cfg.workloads:
                try:
                    check_run(_profile(name), workload, cfg.mode, cap)
                except WorkBoundError as exc:
                    raise SweepConfigError(f"{source}: capacities_mah[{i}]: {exc}") from None
                except ValueError:
                    continue  # any other bad input is that cell's own error, recorded in it


def cells(cfg: SweepConfig) -> list[Cell]:
    """The cross product, in a fixed order."""
    return [
        Cell(prof, bm, cap, wl, pol, seed, cfg.mode, cfg.bundle, cfg.governor_step)
        for prof, bm, cap, wl, pol, seed in product(
            cfg.profiles,
            cfg.battery_models,
            cfg.capacities_mah,
            cfg.workloads,
            cfg.policies,
            cfg.seeds,
        )
    ]


@lru_cache(maxsize=32)
def _profile(name: str) -> Any:
    from device_profiles import load_profile

    return load_profile(name)


@lru_cache(maxsize=8)
def _bundle_variants(path: str) -> Any:
    from simulator import variants_from_bundle

    return variants_from_bundle(path)


def run_cell(cell: Cell) -> dict[str, Any]:
    """Simulate one cell and return its row: the parameters, the results, and any error.

    Bad input for this cell (a ValueError from the simulator) is recorded in ``error``;
    anything else propagates.
    """
    from simulator import simulate

    row: dict[str, Any] = {"cell_id": cell.cell_id, **{f: getattr(cell, f) for f in _CELL_FIELDS}}
    t0 = time.perf_counter()
    try:
        variants = _bundle_variants(cell.bundle) if cell.bundle else None
        res = simulate(
            _profile(cell.profile),
            policy=cell.policy,
            battery_model=cell.battery_model,
            workload=cell.workload,
            mode=cell.mode,
            seed=cell.seed,
            variants=variants,
            capacity_mah=cell.capacity_mah,
            governor_step=cell.governor_step,
        )
    except ValueError as exc:
        row.update(dict.fromkeys(SWEEP_COLUMNS))
        row.update(warnings=0, error=f"{type(exc).__name__}: {exc}")
    else:
        for key in SWEEP_COLUMNS:
            row[key] = getattr(res, key)
        row.update(warnings=len(res.warnings), error=None)
    row["wall_s"] = time.perf_counter() - t0
    row["worker_pid"] = os.getpid()
    return row


def run_batch(batch: list[Cell]) -> list[dict[str, Any]]:
    """Simulate a batch of cells."""
    return [run_cell(c) for c in batch]


def run_batch_table(batch: list[Cell]) -> Any:
    """Simulate a batch of cells (one dask task) and return it as an Arrow table in the
    dataset's schema: built on the worker, it travels as Arrow buffers rather than
    pickled dicts, and the client only writes it."""
    return _table(run_batch(batch))


def _schema() -> Any:
    import pyarrow as pa

    fields = [
        ("cell_id", pa.string()),
        ("profile", pa.string()),
        ("battery_model", pa.string()),
        ("capacity_mah", pa.float64()),
        ("workload", pa.string()),
        ("seed", pa.int64()),
        ("mode", pa.string()),
        ("bundle", pa.string()),
        ("governor_step", pa.string()),
        *[(k, getattr(pa, t)()) for k, t in SWEEP_COLUMNS.items()],
        ("warnings", pa.int64()),
        ("error", pa.string()),
        ("wall_s", pa.float64()),
        ("worker_pid", pa.int64()),
    ]
    return pa.schema(fields)


def batch_id(batch: Iterable[str]) -> str:
    """A stable id for a batch from its cells' ids."""
    return hashlib.sha256("\n".join(sorted(batch)).encode()).hexdigest()[:16]


def _table(rows: list[dict[str, Any]]) -> Any:
    """Rows of one policy as an Arrow table in the dataset's schema, with the policy kept
    in the table's metadata (the dataset partitions on it)."""
    import pyarrow as pa

    schema = _schema().with_metadata({"policy": rows[0]["policy"]})
    return pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema)


def write_batch(out: Path, rows: list[dict[str, Any]] | Any) -> Path:
    """Write one finished batch (cells of one policy; rows, or ``_table``'s table)
    atomically into the dataset."""
    import pyarrow.parquet as pq

    table = _table(rows) if isinstance(rows, list) else rows
    policy = table.schema.metadata[b"policy"].decode()
    table = table.replace_schema_metadata(None)
    part = out / "cells" / f"policy={policy}"
    part.mkdir(parents=True, exist_ok=True)
    path = part / f"part-{batch_id(table.column('cell_id').to_pylist())}.parquet"
    tmp = part / f".{path.name}.tmp"  # dot files are ignored by dataset readers
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:  # a Ctrl-C mid-write too: no half-written file left behind
        tmp.unlink(missing_ok=True)
        raise
    return path


def finished_cell_ids(out: str | Path) -> set[str]:
    """Ids of the cells already in the sweep's dataset."""
    import pyarrow.dataset as ds

    root = Path(out) / "cells"
    if not root.is_dir() or not any(root.rglob("*.parquet")):
        return set()
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(columns=["cell_id"])
    return set(table.column("cell_id").to_pylist())


def failed_cells(out: str | Path) -> set[str]:
    """Ids of the cells whose every row in the dataset is an error (retried on rerun)."""
    import pyarrow.dataset as ds

    root = Path(out) / "cells"
    if not root.is_dir() or not any(root.rglob("*.parquet")):
        return set()
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        columns=["cell_id", "error"]
    )
    ok: set[str] = set()
    bad: set[str] = set()
    for cid, err in zip(
        table.column("cell_id").to_pylist(), table.column("error").to_pylist(), strict=True
    ):
        (bad if err else ok).add(cid)
    return bad - ok


def cell_name(cell: Cell) -> str:
    """A cell in words, for reports: profile, policy, battery, capacity, workload, seed.

    >>> cell_name(Cell("rt3-paper", None, 10.0, "continuous", "rt3", 0, "fast"))
    'rt3-paper/rt3/profile battery/10 mAh/continuous/seed 0'
    """
    battery = cell.battery_model or "profile battery"
    cap = "profile capacity" if cell.capacity_mah is None else f"{cell.capacity_mah:g} mAh"
    return f"{cell.profile}/{cell.policy}/{battery}/{cap}/{cell.workload}/seed {cell.seed}"


def read_sweep(out: str | Path) -> Any:
    """The sweep's dataset as a pandas DataFrame (one row per cell: a cell retried after an
    error shows its success, or its latest-written failure)."""
    import pandas as pd

    df = pd.read_parquet(Path(out) / "cells")
    df["policy"] = df["policy"].astype(str)
    if df["cell_id"].duplicated().any():
        failed = df["error"].fillna("") != ""
        df = df.assign(_failed=failed).sort_values("_failed", kind="stable")
        df = df.drop_duplicates("cell_id", keep="first").drop(columns="_failed")
        df = df.sort_index().reset_index(drop=True)
    return df


def plan_batches(
    pending: list[Cell], batch_size: int | None = None, workers: int = 1
) -> list[list[Cell]]:
    """Group pending cells by policy (the dataset's partition) into batches, ordered
    round-robin across policies: a policy whose cells cost more (``oracle`` simulates many
    tables per cell) is spread over the run instead of forming its tail.

    With ``batch_size`` every batch holds at most that many cells. Without it the sizes are
    guided (as OpenMP's ``schedule(guided)``): each batch takes a quarter of what is left
    per worker, at most ``MAX_BATCH`` cells and at least ``MIN_BATCH`` (fewer in a sweep
    too small for 16 such batches per worker). The first batches are large, so dask's cost
    per task (about 2 ms of a worker's CPU, as much as one cell) is noise, and the last
    ones are small, so no worker idles long while another finishes a big batch.

    >>> cfg = SweepConfig(profiles=["rt3-paper"], policies=["rt3"], capacities_mah=[*range(1, 101)])
    >>> [len(b) for b in plan_batches(cells(cfg), workers=2)]
    [13, 11, 10, 9, 8, 7, 6, 5, 4, 4, 3, 3, 3, 3, 3, 3, 3, 2]
    """
    by_policy: dict[str, list[Cell]] = {}
    for c in pending:
        by_policy.setdefault(c.policy, []).append(c)
    groups = list(by_policy.values())
    start = [0] * len(groups)
    left = len(pending)
    workers = max(1, workers)
    least = min(MIN_BATCH, max(1, left // (16 * workers)))
    batches: list[list[Cell]] = []
    while left:
        for g, group in enumerate(groups):
            if start[g] == len(group):
                continue
            size = batch_size or min(MAX_BATCH, max(least, math.ceil(left / (4 * workers))))
            batches.append(group[start[g] : start[g] + size])
            start[g] += len(batches[-1])
            left -= len(batches[-1])
    return batches


# Guided batch sizes (``plan_batches``): the most cells in one dask task, and the fewest
# where a sweep has enough cells. Measured with `rt3lab bench sweep` (2,000 cells of about
# 2 ms, 2 local workers, quiet 2-core machine, 3 runs each): fixed batches of 64 cells
# 1.61-1.62x serial; guided with at least 8 cells 1.64-1.79x, 16: 1.75-1.92x, 24:
# 1.79-1.90x, 32: 1.68-1.74x.
MAX_BATCH = 200
MIN_BATCH = 24


def warm_up() -> Any:
    """Import the simulator and run one tiny simulation per battery model (a worker's
    first tasks otherwise pay for the imports: KiBaM's root finder imports scipy, about
    0.7 s); returns a one-cell batch as an Arrow table, whose trip back to the client
    imports Arrow's serialisation at both ends."""
    from simulator import simulate
    from simulator.battery import battery_models

    for model in battery_models():
        simulate(_profile("rt3-paper"), battery_model=model, capacity_mah=0.01)
    return run_batch_table([Cell("rt3-paper", "ideal", 0.01, "continuous", "rt3", 0, "fast")])


def _warm_client() -> None:
    """The client's own imports for writing and reading the dataset (start-up, not sweep)."""
    import pyarrow.dataset
    import pyarrow.parquet  # noqa: F401


# Dask's own monitoring, sized for interactive work, costs a sweep real CPU: each worker's
# statistical profiler samples the running task's stack every 10 ms, and every process
# checks its event loop every 20 ms and samples psutil every 0.5 s. Measured on the 2-core
# machine (2 local workers, the bench's 2,000 cells): workers' CPU for the sweep 5.68 s ->
# 4.97 s, the client's 0.54 s -> 0.36 s; idle, each worker 35 -> 8 ms of CPU per second.
# A sweep has no dashboard to feed. Workers started by ``dask worker`` take the same
# settings from the environment (see the simulator README).
QUIET_DASK = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@contextmanager
def _ctrl_c_for_client_only() -> Iterator[None]:
    """Block SIGINT in this thread while a local cluster starts. The threads the cluster
    starts (its event loop, the nanny's process watchers) inherit the blocked signal, and so
    do the worker processes they spawn: a Ctrl-C (sent by the terminal to every process of
    the group) then reaches only the client, which cancels the sweep and closes the cluster,
    instead of printing a traceback from every worker. A Ctrl-C during the start is held and
    delivered when this block ends.

    multiprocessing's resource tracker, started with the first worker, unblocks SIGINT in
    the thread that starts it (``resource_tracker.ensure_running``): it is started here
    first, so the cluster's threads keep the signal blocked."""
    import signal
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def start_client(
    scheduler: str = "local", workers: int | None = None, processes: bool = True
) -> Any:
    """A dask client: a LocalCluster for ``local``, else the scheduler at that address;
    its workers already warmed up (``warm_up``), so start-up is not counted in a sweep."""
    from dask.distributed import Client, LocalCluster

    if scheduler != "local":
        client = Client(scheduler, timeout="20s")
        client.run(warm_up)
        _warm_client()
        return client
    import dask

    n = workers or min(2, os.cpu_count() or 1)
    quiet_workers = _ctrl_c_for_client_only() if processes else nullcontext()
    with warnings.catch_warnings(), dask.config.set(QUIET_DASK), quiet_workers:
        # Without a dashboard the scheduler still serves health routes; when port 8787 is
        # taken it picks another and warns, which is noise here.
        warnings.filterwarnings("ignore", message="Port 8787 is already in use")
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            silence_logs=40,
        )
    client = Client(cluster)
    client.run(warm_up)
    _warm_client()
    return client


def close_client(client: Any) -> None:
    """Close ``client`` and, for a local cluster, the cluster too. distributed's own logs
    are off meanwhile: after a Ctrl-C its scheduler reports, at CRITICAL, results it can no
    longer send to the client that is closing, a traceback the user did not ask for."""
    import logging

    cluster = getattr(client, "cluster", None)
    was = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        client.close()
        if cluster is not None:
            cluster.close()
    finally:
        logging.disable(was)


# How long finished batches may wait on the client before they are written. Writing a
# Parquet file costs the client about 3 ms (opening the writer is a third of it), as much
# CPU as a task's whole round trip through dask; on a 2-core machine the client shares the
# cores with the workers, so one file per task cost the 2,000-cell bench sweep a tenth of
# its speed at small tasks. Waiting a second costs at most a second of cells if the client
# is killed (a resumed sweep runs them again); an interruption writes what has arrived.
WRITE_EVERY_S = 1.0


def write_interval(seconds: float | None) -> float:
    """``--write-every``: seconds >= 0, or None for ``WRITE_EVERY_S``."""
    every_s = WRITE_EVERY_S if seconds is None else seconds
    if not every_s >= 0:  # NaN too
        raise SweepConfigError(f"--write-every: expected seconds >= 0, got {seconds}")
    return every_s


class _HeldTables:
    """Finished batches not yet written, by policy (the dataset's partition)."""

    def __init__(self, out: Path, every_s: float) -> None:
        self.out = out
        self.every_s = every_s
        self.tables: dict[str, list[Any]] = {}
        self.since = time.monotonic()

    def add(self, table: Any) -> None:
        self.tables.setdefault(table.schema.metadata[b"policy"].decode(), []).append(table)
        if time.monotonic() - self.since >= self.every_s:
            self.write()

    def write(self) -> None:
        """Write every held batch of a policy as one file, then forget it (only once
        written: a write cut short by Ctrl-C is done again by the ``finally`` that follows)."""
        import pyarrow as pa

        for policy in list(self.tables):
            write_batch(self.out, pa.concat_tables(self.tables[policy]))
            del self.tables[policy]
        self.since = time.monotonic()


def run_sweep(
    cfg: SweepConfig,
    out: str | Path,
    client: Any,
    batch_size: int | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    retry_failed: bool = True,
    write_every_s: float | None = None,
) -> SweepSummary:
    """Run every cell of ``cfg`` not yet in ``out`` on ``client``, writing finished batches
    as they arrive (``_HeldTables``: once ``write_every_s`` seconds have passed since the
    last write, default ``WRITE_EVERY_S``, 0 for every batch, and whatever has arrived when
    the run ends or is interrupted). ``on_batch(done, pending)`` is called after each batch
    arrives. With ``retry_failed`` a cell whose earlier run ended in an error is run
    again."""
    from dask.distributed import as_completed

    from contracts.files import output_dir, write_file

    every_s = write_interval(write_every_s)
    out = output_dir(out, SweepConfigError)
    t0 = time.perf_counter()
    every = cells(cfg)
    ids = [c.cell_id for c in every]
    if len(set(ids)) != len(ids):
        raise SweepConfigError("sweep: the configuration repeats a value on some axis")
    manifest = {
        "format": "rt3lab-sweep",
        "version": 1,
        "cells": len(every),
        "config": cfg.model_dump(),
    }
    write_file(out / "sweep.json", json.dumps(manifest, indent=1))
    done = finished_cell_ids(out)
    retry = failed_cells(out) & set(ids) if retry_failed else set()
    done -= retry
    pending = [c for c in every if c.cell_id not in done]
    by_id = {c.cell_id: c for c in every}
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    batches = plan_batches(pending, batch_size, workers)
    futures = [client.submit(run_batch_table, b, pure=False) for b in batches]
    ran = errors = 0
    failed: list[str] = []
    held = _HeldTables(out, every_s)
    try:
        for fut in as_completed(futures):
            table = fut.result()
            held.add(table)
            ran += table.num_rows
            bad = [
                (cid, err)
                for cid, err in zip(
                    table.column("cell_id").to_pylist(),
                    table.column("error").to_pylist(),
                    strict=True,
                )
                if err
            ]
            errors += len(bad)
            failed += [f"{cell_name(by_id[cid])}: {err}" for cid, err in bad]
            fut.release()
            if on_batch is not None:
                on_batch(ran, len(pending))
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        held.write()  # whatever arrived, also on an interruption
    return SweepSummary(
        out,
        len(every),
        len(every) - len(pending),
        ran,
        errors,
        len(batches),
        time.perf_counter() - t0,
        retried=len(retry),
        failed=tuple(sorted(failed)),
    )
