"""The native engine at several thread counts, for ``rt3lab bench runtime --threads 1,2``.

One engine (``lab.runtime.engine``) runs the dense model and every set at each count, all in
the same interleaved rounds (``lab.runtime.measure.timed_rounds``: a neighbour's load shifts
every count alike); moving to another count restarts the engine's pool, untimed. The
process is held to as many CPUs as the largest count (the first of its affinity mask, where
the OS allows); inside them the scheduler places the engine's workers and the caller (pinned
to CPUs of their own, a worker and the unpinned caller shared one CPU for a third of a run).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from lab.runtime.pattern_set import PatternSet


@contextlib.contextmanager
def held_to_cpus(count: int) -> Iterator[list[int] | None]:
    """Hold the process to the first ``count`` CPUs of its affinity mask for the block
    (yields them; None where the OS has no affinity or refuses), then give the mask back."""
    if not hasattr(os, "sched_getaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpus: list[int] | None = sorted(before)[:count]
    try:
        os.sched_setaffinity(0, cpus)
    except OSError:
        cpus = None
    try:
        yield cpus
    finally:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, before)


def engine_by_threads(
    base: nn.Module,
    sets: list[PatternSet],
    counts: list[int],
    batch: int,
    seq_len: int,
    rounds: int,
    per_round: int,
    warmup: int,
    progress: Callable[[str], None] = lambda _msg: None,
    anchor: Callable[[int], tuple[Callable[[], object], Callable[[int], None]]] | None = None,
) -> dict[str, Any] | None:
    """Median ms of the engine's dense model and of every set at each of ``counts`` threads,
    interleaved; None where the engine cannot run the model. Keyed by the count (a string,
    as JSON has it): ``dense_latency_ms``, ``dense_speedup_over_first`` (the first count's
    dense over this one's) and per set ``latency_ms`` and ``speedup_over_engine_dense``.

    ``anchor`` (``lab.bench.executorch.executorch_by_threads``): given the first count, a
    dense run of a peer runtime and a function that sets its thread count; it is timed in
    the same rounds at every count (``anchor_dense_latency_ms``, and
    ``engine_dense_speedup_over_anchor``: how much faster the engine's dense model runs)."""
    from lab.runtime.measure import make_inputs, timed_rounds
    from lab.runtime.reconfigurable import _engine_for

    eng, _ = _engine_for(base, sets)
    if eng is None:
        return None
    progress(f"the engine at {', '.join(map(str, counts))} threads, interleaved")
    import numpy as np

    tokens = make_inputs(base, batch, seq_len)["args"][0]
    rows, _ = eng.bind_rows(np.ascontiguousarray(tokens.numpy(), dtype=np.int64))
    names: list[str | None] = [None, *(ps.name for ps in sets)]

    def run() -> None:  # the bound calls, as the runtime's serving call makes them
        for row in rows:
            row()

    def setup(n: int, name: str | None) -> Callable[[], None]:
        def go() -> None:
            eng.set_threads(n)  # a restart only when the count changes
            eng.select(name)

        return go

    variants = {f"{n} {name or ' dense'}": (setup(n, name), run) for n in counts for name in names}
    if anchor is not None:
        peer_run, peer_threads = anchor(counts[0])
        for n in counts:
            variants[f"{n} anchor"] = (lambda n=n: peer_threads(n), peer_run)
    try:
        with held_to_cpus(max(counts)) as cpus:
            got = timed_rounds(variants, rounds, per_round, warmup)
    finally:
        eng.close()
    first = got[f"{counts[0]}  dense"].median_ms
    out: dict[str, Any] = {}
    for n in counts:
        d = got[f"{n}  dense"].median_ms
        if anchor is not None:
            a = got[f"{n} anchor"].median_ms
            peer = {"anchor_dense_latency_ms": a, "engine_dense_speedup_over_anchor": a / d}
        else:
            peer = {}
        out[str(n)] = {
            **peer,
            "threads": n,
            "cpus": cpus,
            "dense_latency_ms": d,
            "dense_speedup_over_first": first / d,
            "sets": {
                ps.name: {
                    "latency_ms": got[f"{n} {ps.name}"].median_ms,
                    "speedup_over_engine_dense": d / got[f"{n} {ps.name}"].median_ms,
                }
                for ps in sets
            },
        }
    return out
