"""Invalid-action masking: the level combinations worth sampling.

RT3 samples every combination of sparsity levels and pays a penalty for the ones that
break a timing constraint. Latency comes from an estimator, so those are known before the
search: each level's latency is estimated with the first slots' patterns, and a
combination is barred when a set is over its deadline by more than ``FEASIBLE_MARGIN``
(:attr:`lab.compression.search.controller.SearchSpace.allowed`; the controller never
samples the others). None left: the rule of every scheme for a deadline no variant meets
(:mod:`lab.compression.schemes.unmet_deadline`), naming the governor level furthest over
its deadline and its fastest sparsity level; under derived deadlines every combination is
searched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab.compression.schemes.unmet_deadline import UnmetDeadline, no_variant_meets

if TYPE_CHECKING:
    import torch
    from torch import nn

    from lab.compression.compressor import Compressor
    from lab.compression.options import Reporter
    from lab.compression.search.controller import SearchSpace

# A level combination is sampled only if every set's estimated latency (with the first
# slots' patterns) is within this factor of its deadline. On the built-in bundle's search
# the estimate of one level spread up to about 10% with the slot choices.
FEASIBLE_MARGIN = 1.15


@dataclass(frozen=True)
class Feasible:
    """The level combinations worth sampling (``allowed``: indices into
    ``SearchSpace.combos``) and the estimates they were chosen on: ``level_ms[level][s]``,
    the level's first slots' patterns at governor level ``s``."""

    allowed: tuple[int, ...]
    level_ms: list[list[float]]
    note: str | None = None  # why every combination is allowed (none met the deadlines)
    unmet: dict[str, Any] | None = None  # that level's record (unmet_deadline's shape)

    def record(self, levels: tuple[float, ...], freqs_khz: list[int], of: int) -> dict[str, Any]:
        """The bundle's ``provenance.search.level_combinations``.

        >>> Feasible((0, 2), [[1.0, 1.4], [0.5, 0.7]]).record((0.25, 0.5), [1400000, 800000], 3)
        ... # doctest: +NORMALIZE_WHITESPACE
        {'allowed': 2, 'searched': 2, 'note': None, 'unmet': None, 'of': 3,
         'allowed_index': [0, 2], 'margin': 1.15,
         'estimate_ms': {'0.25': {'1400000': 1.0, '800000': 1.4},
                         '0.5': {'1400000': 0.5, '800000': 0.7}}}
        """
        return {
            "allowed": 0 if self.note else len(self.allowed),
            "searched": len(self.allowed),
            "note": self.note,
            "unmet": self.unmet,
            "of": of,
            "allowed_index": list(self.allowed),
            "margin": FEASIBLE_MARGIN,
            "estimate_ms": {
                str(lv): {str(f): ms for f, ms in zip(freqs_khz, row, strict=True)}
                for lv, row in zip(levels, self.level_ms, strict=True)
            },
        }


def feasible_combos(
    c: Compressor,
    model: nn.Module,
    weights: dict[str, torch.Tensor],
    bp: dict[str, torch.Tensor],
    cands: dict[str, torch.Tensor],
    space: SearchSpace,
    strict: bool = True,
    reporter: Reporter | None = None,
) -> Feasible:
    """Level combinations worth sampling: each set's level, with the first slots'
    patterns, estimated within ``FEASIBLE_MARGIN`` of its governor level's deadline.

    The estimate spreads a few percent with the slot choices, hence the margin: only
    combinations clearly over a deadline are barred, the reward still penalises the
    rest. None left means the deadlines cannot be met at any level: an error when
    ``strict`` (deadlines the user gave), else every combination is allowed and ``note``
    says why (deadlines derived from the model's own timing, which a loaded host can
    shift between the anchor's and the sets' measurements: the reward's timing penalty
    then decides, and the simulation shows the misses; the note is a warning on
    ``reporter``).
    """
    levels = c.levels_spec
    n_sets = len(levels)
    lat: list[list[float]] = []  # [level][governor level]
    for level in range(space.n_levels):
        child = c.patterns.level_child(level, len(weights))
        masks = c.patterns.set_masks(weights, bp, cands, child)[0]
        lat.append([c.latency_ms(model, masks, lv.freq_khz) for lv in levels])
    allowed = tuple(
        i
        for i, combo in enumerate(space.combos)
        if all(lat[combo[s]][s] <= levels[s].deadline_ms * FEASIBLE_MARGIN for s in range(n_sets))
    )
    if not allowed:

        def best(s: int) -> int:  # the level with the lowest estimate at position s
            return min(range(space.n_levels), key=lambda i: lat[i][s])

        worst = max(range(n_sets), key=lambda s: lat[best(s)][s] / levels[s].deadline_ms)
        lv, i = levels[worst], best(worst)
        miss = UnmetDeadline(
            lv.freq_khz,
            lv.deadline_ms,
            f"sparsity level {c.opts.levels[i]}",
            lat[i][worst],
            c.opts.estimator,
        )
        unmet = no_variant_meets(
            miss,
            strict,
            reporter,
            "every level combination searched, the reward's timing penalty decides",
            "check the profile's workload.timing_constraints, --deadlines or the levels",
        )
        return Feasible(tuple(range(len(space.combos))), lat, unmet["note"], unmet)
    return Feasible(allowed, lat)
