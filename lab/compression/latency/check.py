"""The table's estimate against the runtime's measurement: ``rt3lab evaluate``'s latency
columns.

Every set of a saved bundle is timed end to end by :class:`lab.runtime.ReconfigurableModel`
on the runtime its table was measured on, in interleaved rounds (the fastest run of each,
:func:`lab.compression.latency.timing.fastest_ms`), beside the table's estimate at the
host's clock. The README's table of the two comes from :func:`latency_markdown`.

On the engine the same rounds also time the engine's bound call on the same tokens (what
``bench runtime`` and ``bench runner``'s ``ctypes`` side time): the serving call's median
against it says what the figure charges a set beyond the call a serving loop makes, with
both sides on the same caches and the same pool. Against a bench's figure from another
process the context differs too (its pool restarted at every change of thread count, other
sides' caches, the host's load a minute later).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.compression.latency.table import TABLE_FILE, LatencyTable, layer_densities
from lab.compression.latency.timing import TimingSetup, fastest_ms

BOUND = "bound"  # a variant's key in the rounds: (name, BOUND), its bound engine call

if TYPE_CHECKING:
    import torch
    from torch import nn


def measure_end_to_end(
    model: nn.Module,
    sets: Mapping[str, Mapping[str, torch.Tensor]],
    setup: TimingSetup,
    runtime: str = "engine",
    raw: dict[str, list[float]] | None = None,
    bound: dict[str, list[float]] | None = None,
) -> dict[str, float]:
    """Fastest milliseconds of one inference of every set (name -> layer masks) and of the
    model run dense (``"dense"``), end to end by :class:`lab.runtime.ReconfigurableModel`
    (``runtime`` ``engine``: its engine executor; ``per-layer``: the torch reference),
    interleaved, as ``setup`` says; ``raw``, if given, also receives every run's seconds
    by name, in round order. ``bound``, if given, receives the same of the engine's bound
    call on the same tokens, timed in the same rounds after each serving run (left empty
    on the torch reference or a batch of more than one row)."""
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
        fns: dict[str | tuple[str, str], tuple[Callable[[], object], Callable[[], object]]]
        fns = {n: (lambda n=n: rm.switch(n), run) for n in sets}
        fns["dense"] = (lambda: rm.switch(None), run)
        if bound is not None and rm.engine is not None and setup.batch == 1:
            # the same tokens into the same logits: the two calls differ by the wrapper only
            tokens, out = run.tokens, run.logits[0].numpy()  # type: ignore[attr-defined]
            call = rm.engine.bind(tokens[0], out)
            # each set's bound call right after its serving call: both on its own caches
            fns = dict(kv for n, f in fns.items() for kv in ((n, f), ((n, BOUND), (f[0], call))))
        runs: dict[str | tuple[str, str], list[float]] = {}
        timed_rounds(fns, setup.rounds, setup.per_round, warmup=2, raw=runs, settle=1)
    served = {n: v for n, v in runs.items() if isinstance(n, str)}
    if bound is not None:
        bound.update({n[0]: v for n, v in runs.items() if isinstance(n, tuple)})
    if raw is not None:
        raw.update(served)
    return fastest_ms(served)


def bundle_latencies(bundle: Any) -> dict[str, tuple[Any, ...]]:
    """Per set of a saved bundle (and ``dense``): the table's estimate, the runtime's end
    to end measurement (its fastest run, as the table, and its median, as the benches
    report), the median of the engine's bound call in the same rounds and the 95 %
    interval of the measured median over it (None and None on the torch reference), in ms
    at this host's clock and the table's thread count.

    Empty when the bundle has no table (estimator ``op-count`` or ``profile``); a corrupt
    table or one measured on another host is refused, naming it.
    """
    from lab.runtime.measure import ratio_ci
    from lab.runtime.reconfigurable import module_from_bundle

    if bundle.path is None or not os.path.lexists(Path(bundle.path) / TABLE_FILE):
        return {}  # (one that is there but not a regular file is refused by the load)
    table = LatencyTable.load(Path(bundle.path) / TABLE_FILE)
    cfg = bundle.provenance.get("bp_config", {})
    rows, cols = int(cfg.get("block_rows", 32)), int(cfg.get("block_cols", 32))
    sets = {name: ps.masks() for name, ps in bundle.sets.items()}
    module = module_from_bundle(bundle)
    # more rounds than the table's: the medians of the serving and bound calls are compared
    # to 3 %, and a 0.1 ms set's median moves that much over 36 runs on a quiet host
    setup = TimingSetup(rows, cols, table.threads, table.rows, rounds=30, per_round=10)
    raw: dict[str, list[float]] = {}
    bound: dict[str, list[float]] = {}
    measured = measure_end_to_end(module, sets, setup, runtime=table.runtime, raw=raw, bound=bound)

    def medians(name: str) -> tuple[Any, ...]:
        """The serving call's median; the bound call's and the 95 % interval of their
        ratio over whole rounds (None, None on the torch reference)."""
        served, b = raw[name], bound.get(name)
        if not b:
            return 1e3 * statistics.median(served), None, None
        ci = ratio_ci(served, b, setup.per_round)
        return 1e3 * statistics.median(served), 1e3 * statistics.median(b), list(ci)

    out = {"dense": (table.dense_ms, measured["dense"], *medians("dense"))}
    for name, masks in sets.items():
        out[name] = (table.host_ms(layer_densities(masks)), measured[name], *medians(name))
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
