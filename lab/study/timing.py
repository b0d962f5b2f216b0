"""Timing for a deadline study, on this host (the client), after the searches, never beside
a running point.

Every point's sets, BP and the dense model are timed end to end on the engine the latency
table was measured on (:func:`lab.compression.latency.check.measure_end_to_end`,
``evaluate``'s measurement), all in one interleaved session, and each run is kept: the
profile takes a set's median, the bootstrap resamples the runs. A set's time depends on its
masks, not on its weights' values, so every set is timed on the bundle's backbone. BP's and
the dense model's medians anchor the simulation's deadlines (:mod:`lab.study.plan`).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lab.compression.latency.table import LatencyTable
    from lab.study.setup import StudyBase


def bundle_table(bundle: Path, threads: int | None) -> tuple[LatencyTable | None, str]:
    """The bundle's latency table where this study can use it (measured on this host, at
    ``threads`` when given), else None and why not."""
    from lab.compression.latency.table import TABLE_FILE, LatencyTable, LatencyTableError

    path = Path(bundle) / TABLE_FILE
    if not path.is_file():
        return None, f"{path} does not exist (compressed with --estimator op-count or profile)"
    try:
        return LatencyTable.load(path, threads=threads), f"the bundle's ({path})"
    except LatencyTableError as exc:
        return None, str(exc)


def study_table(base: StudyBase, table: LatencyTable | None, out: Path) -> LatencyTable:
    """``table`` when it covers the model's pruned layers, else one measured now on this
    host (written to ``out``), as ``compress --estimator measured`` measures it."""
    if table is not None and sorted(table.layers) == sorted(base.bp.weights):
        return table
    c = base.compressor()
    return c.measure_latency(base.model(), base.bp.weights, base.bp.masks, base.cands, out)


def time_sets(
    base: StudyBase, table: LatencyTable, sets: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[float]]:
    """Every run's milliseconds (host clock) of each set (name -> layer masks) and of the
    model run dense (``dense``), end to end on ``table``'s runtime at its threads."""
    from lab.compression.latency.check import measure_end_to_end
    from lab.compression.latency.timing import TimingSetup
    from lab.model.training import torch_threads

    cfg = base.bp_config
    setup = TimingSetup(cfg.block_rows, cfg.block_cols, table.threads, table.rows)
    raw: dict[str, list[float]] = {}
    with torch_threads(table.threads):
        measure_end_to_end(base.model(), sets, setup, runtime=table.runtime, raw=raw)
    return {name: [1e3 * s for s in runs] for name, runs in raw.items()}


def at_level(host_ms: float, host_khz: int, khz: int) -> float:
    """A host latency projected to ``khz`` by ``a + b/f`` with ``a = 0``, as the latency
    table and ``rt3lab profile --power none`` project it.

    >>> at_level(0.5, 2_800_000, 1_400_000)
    1.0
    """
    return host_ms * host_khz / khz


def median_ms(runs: list[float]) -> float:
    """The median of a set's runs: the figure a profile gives it.

    >>> median_ms([3.0, 1.0, 2.0])
    2.0
    """
    return float(statistics.median(runs))
