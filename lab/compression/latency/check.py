"""The table's estimate against the runtime's measurement: ``rt3lab evaluate``'s latency
columns.

Every set of a saved bundle is timed end to end by :class:`lab.runtime.ReconfigurableModel`
on the runtime its table was measured on, in interleaved rounds (the fastest run of each,
:func:`lab.compression.latency.timing.fastest_ms`), beside the table's estimate at the
host's clock. The README's table of the two comes from :func:`latency_markdown`.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.compression.latency.table import TABLE_FILE, LatencyTable, layer_densities
from lab.compression.latency.timing import TimingSetup, fastest_ms

if TYPE_CHECKING:
    import torch
    from torch import nn


def measure_end_to_end(
    model: nn.Module,
    sets: Mapping[str, Mapping[str, torch.Tensor]],
    setup: TimingSetup,
    runtime: str = "engine",
    raw: dict[str, list[float]] | None = None,
) -> dict[str, float]:
    """Fastest milliseconds of one inference of every set (name -> layer masks) and of the
    model run dense (``"dense"``), end to end by :class:`lab.runtime.ReconfigurableModel`
    (``runtime`` ``engine``: its engine executor; ``per-layer``: the torch reference),
    interleaved, as ``setup`` says; ``raw``, if given, also receives every run's seconds
    by name, in round order."""
    import copy

    from lab.model.training import torch_threads
    from lab.runtime.measure import make_inputs, timed_rounds
    from lab.runtime.pattern_set import PatternSet
    from lab.runtime.reconfigurable import ReconfigurableModel

    pattern_sets = [
        PatternSet.from_masks(name, dict(masks), setup.block_rows, setup.block_cols)
        for name, masks in sets.items()
    ]
    threads = setup.threads
    with torch_threads(threads):
        base = copy.deepcopy(model).eval()
        if runtime == "engine":
            rm = ReconfigurableModel(base, pattern_sets, executor="engine", engine_threads=threads)
        else:
            rm = ReconfigurableModel(base, pattern_sets, executor="torch", rows_hint=setup.rows)
        inputs = make_inputs(base, setup.batch, setup.seq_len)
        # the call a serving loop makes (the latency table and profile time the same)
        run = rm.serving_call(*inputs["args"], **inputs["kwargs"])

        # the switch before a variant's runs and its first call after it, untimed as the
        # table's (settle): an inference on its own caches is timed,
        # not a switch per inference (the bench times switches apart)
        fns = {n: (lambda n=n: rm.switch(n), run) for n in sets}
        fns["dense"] = (lambda: rm.switch(None), run)
        runs: dict[str, list[float]] = {}
        timed_rounds(fns, setup.rounds, setup.per_round, warmup=2, raw=runs, settle=1)
    if raw is not None:
        raw.update(runs)
    return fastest_ms(runs)


def bundle_latencies(bundle: Any) -> dict[str, tuple[float, float, float]]:
    """Per set of a saved bundle (and ``dense``): the table's estimate and the runtime's end
    to end measurement (its fastest run, as the table, and its median, as the benches
    report), in ms at this host's clock and the table's thread count.

    Empty when the bundle has no table (estimator ``op-count`` or ``profile``); a corrupt
    table or one measured on another host is refused, naming it.
    """
    from lab.runtime.reconfigurable import module_from_bundle

    if bundle.path is None or not os.path.lexists(Path(bundle.path) / TABLE_FILE):
        return {}  # (one that is there but not a regular file is refused by the load)
    table = LatencyTable.load(Path(bundle.path) / TABLE_FILE)
    cfg = bundle.provenance.get("bp_config", {})
    rows, cols = int(cfg.get("block_rows", 32)), int(cfg.get("block_cols", 32))
    sets = {name: ps.masks() for name, ps in bundle.sets.items()}
    module = module_from_bundle(bundle)
    setup = TimingSetup(rows, cols, table.threads, table.rows)
    raw: dict[str, list[float]] = {}
    measured = measure_end_to_end(module, sets, setup, runtime=table.runtime, raw=raw)
    median = {n: 1e3 * statistics.median(runs) for n, runs in raw.items()}
    out = {"dense": (table.dense_ms, measured["dense"], median["dense"])}
    for name, masks in sets.items():
        out[name] = (table.host_ms(layer_densities(masks)), measured[name], median[name])
    return out


def latency_markdown(evaluation: Mapping[str, Any]) -> str:
    """The README's table of an ``rt3lab evaluate --json`` document's latency columns."""
    lines = [
        "| set | MHz | sparsity % | estimate ms | measured ms | estimate / measured |",
        "|---|---|---|---|---|---|",
    ]
    for r in evaluation["sets"]:
        est, meas = r.get("latency_estimate_ms"), r.get("latency_measured_ms")
        if est is None or meas is None:
            continue
        mhz = "-" if r["freq_khz"] is None else f"{r['freq_khz'] // 1000}"
        lines.append(
            f"| {r['name']} | {mhz} | {100 * r['sparsity']:.1f} | {est:.3f} | {meas:.3f} | "
            f"{est / meas:.2f} |"
        )
    return "\n".join(lines)
