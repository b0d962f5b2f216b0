"""What the runtime's serving call costs over the bare bound engine call, for ``rt3lab bench
runtime`` (its ``serving`` figures).

The latency table, ``evaluate`` and ``profile`` time ``ReconfigurableModel.serving_call``:
the model's lock around the engine's bound call (:meth:`lab.runtime.engine.Engine.bind`,
what ``bench runner`` times as ``ctypes``). Its Python wrapper must stay under
:data:`WRAPPER_LIMIT` of the sparsest set's latency, or the figures charge the sparse sets
a cost a serving loop does not pay. Timed on the sparsest set, in interleaved rounds whose
order rotates: the bound call alone, the serving call, and the general call ``rm(tokens)``
(conversion and a fresh logits buffer per inference), each against the bound call as the
ratio of medians with its 95 % bootstrap interval over whole rounds
(``lab.runtime.measure.ratio_ci``).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lab.runtime.pattern_set import PatternSet
    from lab.runtime.reconfigurable import ReconfigurableModel

WRAPPER_LIMIT = 0.03  # of the sparsest set's latency
PER_ROUND = 50  # calls of each side per round: the medians' noise stays under the wrapper's


def serving_overhead(
    rm: ReconfigurableModel,
    sets: list[PatternSet],
    inputs: dict[str, Any],
    rounds: int,
    warmup: int,
) -> dict[str, Any] | None:
    """The serving call's and the general call's cost per inference over the bound call, on
    the sparsest of ``sets`` (``None`` where the runtime is not the engine, there are no sets,
    or the input is not one token tensor): ``serving_overhead_us``, its ratio to the set's
    latency and whether that is under :data:`WRAPPER_LIMIT`, ``call_overhead_us``."""
    from lab.runtime.measure import ratio_ci

    if rm.engine is None or not sets or inputs["kwargs"] or len(inputs["args"]) != 1:
        return None
    sparsest = min(sets, key=lambda ps: ps.density)
    args = inputs["args"]
    serving = rm.serving_call(*args)
    tokens = serving.tokens  # type: ignore[attr-defined]
    if tokens.shape[0] != 1:
        return None  # the bound reference is one row
    import numpy as np

    out = np.empty((tokens.shape[1], rm.engine.vocab), dtype=np.float32)
    bound = rm.engine.bind(tokens[0], out)

    def general() -> object:
        return rm(*args)

    rm.switch(sparsest.name)
    raw = _rotating_rounds({"bound": bound, "serving": serving, "call": general}, rounds, warmup)
    med = {k: 1e3 * statistics.median(v) for k, v in raw.items()}
    over_us = 1e3 * (med["serving"] - med["bound"])
    row: dict[str, Any] = {
        "set": sparsest.name,
        "density": sparsest.density,
        "bound_median_ms": med["bound"],
        "serving_median_ms": med["serving"],
        "call_median_ms": med["call"],
        "serving_overhead_us": over_us,
        "serving_overhead_ratio": over_us / (1e3 * med["bound"]),
        "call_overhead_us": 1e3 * (med["call"] - med["bound"]),
        "runs_per_side": len(raw["bound"]),
    }
    for side in ("serving", "call"):
        ratio = med[side] / med["bound"]
        lo, hi = ratio_ci(raw[side], raw["bound"], per_round=PER_ROUND)
        row[f"{side}_over_bound"], row[f"{side}_over_bound_ci95"] = ratio, [lo, hi]
    row["serving_under_3pct"] = row["serving_overhead_ratio"] < WRAPPER_LIMIT
    return row


def _rotating_rounds(
    sides: dict[str, Callable[[], object]], rounds: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds of :data:`PER_ROUND` calls of each side per round, after ``warmup`` untimed
    ones there (the caches as the side itself leaves them: the general call's fresh buffers
    slowed the first calls after it by ~1 %); which side goes first rotates by round."""
    names = list(sides)
    raw: dict[str, list[float]] = {k: [] for k in names}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(max(rounds, 1)):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                fn = sides[name]
                for _ in range(max(warmup, 1)):
                    fn()
                for _ in range(PER_ROUND):
                    t0 = time.perf_counter()
                    fn()
                    raw[name].append(time.perf_counter() - t0)
    finally:
        if gc_was:
            gc.enable()
    return raw
