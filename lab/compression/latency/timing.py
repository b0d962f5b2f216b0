"""Timing variants on the runtime, and reading the timings (:mod:`lab.runtime.measure`).

How they are timed is one :class:`TimingSetup` (block size, threads, input, rounds).

Variants are timed in interleaved rounds and each keeps its fastest run
(:func:`fastest_ms`); the latency table's points per layer come from those times, each
layer's saving taken against the dense run timed just before it (:func:`layer_points`),
fitted non-decreasing in density (:func:`monotone`).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class TimingSetup:
    """How variants are timed on the runtime: the block size of their masks, the thread
    count, the input (``batch`` x ``seq_len`` tokens) and the interleaved rounds (``rounds``
    of ``per_round`` runs of each variant).

    >>> TimingSetup(32, 32, threads=1, seq_len=35).rows
    35
    """

    block_rows: int
    block_cols: int
    threads: int
    seq_len: int
    batch: int = 1
    rounds: int = 12
    per_round: int = 3

    @property
    def rows(self) -> int:
        """Tokens per inference (``batch x seq_len``)."""
        return self.batch * self.seq_len


def fastest_ms(raw: Mapping[str, list[float]]) -> dict[str, float]:
    """Per variant, the fastest of its timings (seconds) in ms.

    The table and ``evaluate``'s measurement both use the minimum, not the median: on this
    project's shared 2-core machine (load averages of 10 to 16 while six engineers train)
    medians of the same variant moved by 2x between rounds, while the fastest run is the
    one a neighbour did not interrupt.

    >>> fastest_ms({"a": [0.003, 0.001, 0.002]})
    {'a': 1.0}
    """
    return {k: 1e3 * min(v) for k, v in raw.items()}


def monotone(points: list[tuple[float, float]], cap: float) -> list[tuple[float, float]]:
    """Least-squares non-decreasing fit (pool adjacent violators) of ``(density, ms)``
    points sorted by density, each first capped at ``cap`` (the model dense).

    A layer keeping fewer weights is not slower, and the runtime can always run it dense:
    timing noise on a shared machine made single buckets of small layers 10-40 % slower
    than dense, and summed over ten layers that noise outweighed the decoder's real saving.

    >>> monotone([(0.25, 1.0), (0.5, 0.8), (0.75, 1.3), (1.0, 1.2)], cap=1.2)
    [(0.25, 0.9), (0.5, 0.9), (0.75, 1.2), (1.0, 1.2)]
    """
    blocks: list[list[float]] = []  # [sum, count]
    for _, y in points:
        blocks.append([min(y, cap), 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    fitted = [b[0] / b[1] for b in blocks for _ in range(int(b[1]))]
    return [(d, round(y, 9)) for (d, _), y in zip(points, fitted, strict=True)]


def layer_points(
    timed: Mapping[str, float], dens: Mapping[str, float], layers: list[str]
) -> tuple[float, dict[str, list[tuple[float, float]]]]:
    """The model's dense ms and every layer's ``(density, ms)`` points from the fastest
    times of the variants (``dense``, ``dense@LAYER`` timed just before LAYER's variants,
    ``LAYER|i`` the layer at bucket ``i`` with ``dens`` its density).

    Each layer's saving is taken against its own neighbouring dense run, and the model's
    dense is the median of all dense runs. With one dense figure for all, its error was
    every layer's: on the engine (default bundle, ~1.5 ms), the dense run that opens each
    round came out 7 % above the others, ten layers showed 2-3 % savings that were not
    there, and estimates fell to 0.2-0.7 of the sets timed in the same rounds (0.92-1.05
    with this).

    >>> t = {"dense": 1.2, "dense@a": 1.0, "a|0": 0.6, "dense@b": 1.0, "b|0": 0.9}
    >>> layer_points(t, {"a|0": 0.5, "b|0": 0.5}, ["a", "b"])
    (1.0, {'a': [(0.5, 0.6), (1.0, 1.0)], 'b': [(0.5, 0.9), (1.0, 1.0)]})

    A dense run slowed by a neighbour (``dense@a`` at 3 ms; the model dense is then the
    median, 1.2 ms) leaves a point at 0, never
    below (the table's loader refuses negative rows):

    >>> t["dense@a"] = 3.0
    >>> layer_points(t, {"a|0": 0.5, "b|0": 0.5}, ["a", "b"])[1]["a"]
    [(0.5, 0.0), (1.0, 1.2)]
    """
    local = {name: timed[dense_key(f"{name}|0")] for name in layers}
    dense = statistics.median([timed["dense"], *local.values()])
    table: dict[str, list[tuple[float, float]]] = {}
    for name in layers:
        pts: dict[float, float] = {1.0: dense}
        for key, d in dens.items():
            if key.split("|", 1)[0] == name:
                # a whole-model time, floored at 0: a neighbouring dense run that a busy
                # machine slowed (local far above dense) must not make it negative
                pts.setdefault(round(d, 6), max(0.0, timed[key] - local[name] + dense))
        table[name] = monotone(sorted(pts.items()), cap=dense)
    return dense, table


def dense_key(key: str) -> str:
    """The variant key of the dense run timed just before layer ``key``'s variants."""
    return "dense@" + key.split("|", 1)[0]
