"""One variant per DVFS level: the most accurate one that meets the level's deadline.

A scheme trains a few variants of one model (widths, depths, exit thresholds); which one
runs at a governor level is chosen here, on the run's latency estimate (the measured table
or RT3's op counts, ``Compressor.latency_ms``) against the level's deadline (the rules of
:mod:`lab.compression.search.calibration`). A variant is feasible at a level when its
estimate is at most the deadline (no margin: unlike the search's bar on combinations, this
is the final choice); among the feasible ones the most accurate (on validation) wins, the
earlier one (the wider) on a tie. A level no variant meets follows the rule of
:mod:`lab.compression.schemes.unmet_deadline`: refused ("impossible deadline", naming the
level, the fastest variant's estimate and the deadline) when ``strict`` (deadlines the user
gave), else the fastest variant, recorded as missing it.

>>> from lab.compression.search.reward import LevelSpec
>>> levels = [LevelSpec(1400000, 1.0, 1.0, 1.0), LevelSpec(800000, 1.0, 1.0, 1.0)]
>>> est = {"w1": 1.0, "w0.5": 0.55}
>>> picks = choose_per_level(levels, ["w1", "w0.5"], lambda v, f: est[v] * 1400000 / f,
...                          {"w1": 0.30, "w0.5": 0.25}, "op-count")
>>> [p.variant for p in picks]
['w1', 'w0.5']
>>> picks = choose_per_level(levels, ["w1", "w0.5"], lambda v, f: est[v] * 1.6 * 1400000 / f,
...                          {"w1": 0.30, "w0.5": 0.25}, "op-count", strict=False)
>>> [(p.variant, p.record()["meets_deadline"]) for p in picks]
[('w0.5', True), ('w0.5', False)]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab.compression.schemes.unmet_deadline import UnmetDeadline, no_variant_meets

if TYPE_CHECKING:
    from lab.compression.options import Reporter
    from lab.compression.search.reward import LevelSpec


@dataclass(frozen=True)
class LevelChoice:
    """The variant chosen for one governor level, and every variant's estimate there;
    ``unmet``: the level's record when no variant meets its deadline (derived deadlines)."""

    freq_khz: int
    deadline_ms: float
    variant: str
    estimate_ms: float
    estimates_ms: dict[str, float] = field(default_factory=dict)
    unmet: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """JSON form (the bundle's provenance)."""
        return {
            "freq_khz": self.freq_khz,
            "deadline_ms": self.deadline_ms,
            "chosen": self.variant,
            "estimate_ms": self.estimate_ms,
            "feasible": [v for v, ms in self.estimates_ms.items() if ms <= self.deadline_ms],
            "estimates_ms": self.estimates_ms,
            "meets_deadline": self.unmet is None,
            "note": None if self.unmet is None else self.unmet["note"],
        }


def choose_per_level(
    levels: Sequence[LevelSpec],
    variants: Sequence[str],
    estimate_ms: Callable[[str, int], float],
    accuracy: Mapping[str, float],
    estimator: str,
    strict: bool = True,
    reporter: Reporter | None = None,
) -> list[LevelChoice]:
    """Per governor level (as ``levels``), the most ``accurate`` of ``variants`` whose
    ``estimate_ms(variant, freq_khz)`` meets the level's deadline; where none does, the
    rule of :func:`~lab.compression.schemes.unmet_deadline.no_variant_meets` (``strict``:
    ``CompressionError``; else the fastest, its note a warning on ``reporter``)."""
    out = []
    for lv in levels:
        est = {v: float(estimate_ms(v, lv.freq_khz)) for v in variants}
        feasible = [v for v in variants if est[v] <= lv.deadline_ms]
        if feasible:
            best = max(feasible, key=lambda v: (accuracy[v], -variants.index(v)))
            out.append(LevelChoice(lv.freq_khz, lv.deadline_ms, best, est[best], est))
            continue
        fastest = min(variants, key=lambda v: est[v])
        miss = UnmetDeadline(lv.freq_khz, lv.deadline_ms, fastest, est[fastest], estimator)
        unmet = no_variant_meets(miss, strict, reporter)
        out.append(LevelChoice(lv.freq_khz, lv.deadline_ms, fastest, est[fastest], est, unmet))
    return out
