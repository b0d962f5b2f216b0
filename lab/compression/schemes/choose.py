"""One variant per DVFS level: the most accurate one that meets the level's deadline.

A scheme trains a few variants of one model (widths, depths, exit thresholds); which one
runs at a governor level is chosen here, on the run's latency estimate (the measured table
or RT3's op counts, ``Compressor.latency_ms``) against the level's deadline (the rules of
:mod:`lab.compression.search.calibration`). A variant is feasible at a level when its
estimate is at most the deadline (no margin: unlike the search's bar on combinations, this
is the final choice); among the feasible ones the most accurate (on validation) wins, the
earlier one (the wider) on a tie. A level no variant meets is the search's error,
"impossible deadline", naming the level, the fastest variant's estimate and the deadline.

>>> from lab.compression.search.reward import LevelSpec
>>> levels = [LevelSpec(1400000, 1.0, 1.0, 1.0), LevelSpec(800000, 1.0, 1.0, 1.0)]
>>> est = {"w1": 1.0, "w0.5": 0.55}
>>> picks = choose_per_level(levels, ["w1", "w0.5"], lambda v, f: est[v] * 1400000 / f,
...                          {"w1": 0.30, "w0.5": 0.25}, "op-count")
>>> [p.variant for p in picks]
['w1', 'w0.5']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab.compression.sparsifier import CompressionError

if TYPE_CHECKING:
    from lab.compression.search.reward import LevelSpec


@dataclass(frozen=True)
class LevelChoice:
    """The variant chosen for one governor level, and every variant's estimate there."""

    freq_khz: int
    deadline_ms: float
    variant: str
    estimate_ms: float
    estimates_ms: dict[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """JSON form (the bundle's provenance)."""
        return {
            "freq_khz": self.freq_khz,
            "deadline_ms": self.deadline_ms,
            "chosen": self.variant,
            "estimate_ms": self.estimate_ms,
            "feasible": [v for v, ms in self.estimates_ms.items() if ms <= self.deadline_ms],
            "estimates_ms": self.estimates_ms,
        }


def choose_per_level(
    levels: Sequence[LevelSpec],
    variants: Sequence[str],
    estimate_ms: Callable[[str, int], float],
    accuracy: Mapping[str, float],
    estimator: str,
) -> list[LevelChoice]:
    """Per governor level (as ``levels``), the most ``accurate`` of ``variants`` whose
    ``estimate_ms(variant, freq_khz)`` meets the level's deadline; ``CompressionError``
    ("impossible deadline") when none does."""
    out = []
    for lv in levels:
        est = {v: float(estimate_ms(v, lv.freq_khz)) for v in variants}
        feasible = [v for v in variants if est[v] <= lv.deadline_ms]
        if not feasible:
            fastest = min(variants, key=lambda v: est[v])
            raise CompressionError(
                f"impossible deadline: at {lv.freq_khz} kHz the fastest variant ({fastest}) "
                f"is estimated ({estimator}) at {est[fastest]:.3f} ms, over the "
                f"{lv.deadline_ms:.3f} ms timing constraint (check the profile's "
                "workload.timing_constraints or --deadlines)"
            )
        best = max(feasible, key=lambda v: (accuracy[v], -variants.index(v)))
        out.append(LevelChoice(lv.freq_khz, lv.deadline_ms, best, est[best], est))
    return out
