"""PP in the pipeline: each layer's candidate patterns, and the pattern sets of a child.

The search space per layer is ``(n_levels, n_candidates, R, C)`` candidates fitted to the BP
weights (or RT3's shrunken space, :mod:`lab.compression.pattern_pruning`). A child picks,
per set, a level and per layer ``slots`` of that level's candidates; every block of the
layer then takes the nearest of them, stacked on BP. With ``exclusive > 0`` a sparser set
is offered candidates refitted, at its own level, to what the denser sets leave, *before*
its slot indices are read, so the patterns evaluated are exactly the ones chosen.

BP+rPP, the baseline at equal sparsity, takes random patterns per layer, their zero count
searched so that the layer keeps as many weights as the chosen set's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lab.compression.pattern_pruning import (
    assign_patterns,
    candidate_patterns,
    exclusive_weights,
    fitted_patterns,
    random_patterns,
)
from lab.compression.search.controller import Child

if TYPE_CHECKING:
    import torch

    from lab.compression.block_pruning import BPConfig
    from lab.compression.options import CompressOptions


class PatternSets:
    """Candidates and set masks for one run's BP config (block size) and options (levels,
    family, candidate space, slots, exclusive discount, seed)."""

    def __init__(self, config: BPConfig, opts: CompressOptions) -> None:
        self.config = config
        self.opts = opts
        self._offered: dict[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def candidates(
        self, weights: dict[str, torch.Tensor], levels: Sequence[float] | None = None
    ) -> dict[str, torch.Tensor]:
        """The search space per layer: ``(n_levels, n_candidates, R, C)``; RT3's shrunken
        space or fitted candidates (:func:`fitted_patterns`), at ``levels`` (default: the
        options' levels)."""
        import torch

        gen = torch.Generator().manual_seed(self.opts.seed + 13)
        cfg = self.config
        o = self.opts
        lv = o.levels if levels is None else levels
        if o.candidates == "fitted":
            return {
                name: fitted_patterns(
                    w, cfg.block_rows, cfg.block_cols, lv, o.family, gen, o.n_candidates
                )
                for name, w in weights.items()
            }
        return {
            name: candidate_patterns(
                w,
                cfg.block_rows,
                cfg.block_cols,
                lv,
                o.family,
                gen,
                keep=o.n_candidates,
                repeats=max(16, o.n_candidates),
            )
            for name, w in weights.items()
        }

    def set_masks(
        self,
        weights: dict[str, torch.Tensor],
        bp: dict[str, torch.Tensor],
        cands: dict[str, torch.Tensor],
        child: Child,
    ) -> list[dict[str, torch.Tensor]]:
        """One mask dict per set (highest frequency first): BP & the child's chosen patterns.

        Every layer's mask is ``bp & assign_patterns(w, offered[slots])`` where ``offered``
        and ``w`` are :meth:`offered_candidates` for the set: the child's slot indices pick
        exactly the patterns that are assigned (with ``opts.exclusive > 0`` a sparser set's
        candidates are refitted to what the denser sets leave *before* its indices are read).
        """
        out: list[dict[str, torch.Tensor]] = []
        used: dict[str, torch.Tensor] = {}
        for s, level in enumerate(child.levels):
            masks = {}
            for li, name in enumerate(weights):
                offered, w = self.offered_candidates(
                    name, weights[name], bp[name], cands[name], level, used.get(name)
                )
                slots = list(child.choices[s][li])
                masks[name] = bp[name] & assign_patterns(w, offered[slots])[1]
            out.append(masks)
            used = {n: used[n] | m if n in used else m.clone() for n, m in masks.items()}
        return out

    def level_child(self, level: int, layers: int) -> Child:
        """One set at ``level`` with each of ``layers`` layers' first ``slots`` candidates:
        the level's representative for the latency table and the feasibility test (its
        masks: ``set_masks(...)[0]``)."""
        first = tuple(range(self.opts.slots))
        return Child((level,), ((first,) * layers,))

    def offered_candidates(
        self,
        name: str,
        weight: torch.Tensor,
        bp: torch.Tensor,
        cands: torch.Tensor,
        level: int,
        used: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The candidate patterns a set's slot indices refer to at ``level`` (``(n, R, C)``)
        and the weights they are assigned on.

        The densest set (``used`` None) or ``opts.exclusive == 0``: the layer's fitted
        candidates on the BP weights. A sparser set: candidates refitted at the same level
        on :func:`exclusive_weights` (the squared weight a denser set keeps counts
        ``1 - D``), so it takes weights of its own; memoised per denser-sets mask.
        """
        w = weight * bp
        if used is None or self.opts.exclusive <= 0:
            return cands[level], w
        key = (name, level, hashlib.blake2b(used.numpy().tobytes(), digest_size=16).digest())
        hit = self._offered.get(key)
        if hit is None:
            wx = exclusive_weights({"w": weight}, {"w": used}, self.opts.exclusive)["w"] * bp
            pats = self.candidates({"w": wx}, [self.opts.levels[level]])["w"][0]
            if len(self._offered) > 4096:
                self._offered.clear()
            hit = self._offered[key] = (pats, wx)
        return hit

    def random_matched(
        self,
        weights: dict[str, torch.Tensor],
        bp: dict[str, torch.Tensor],
        target_sets: list[dict[str, torch.Tensor]],
        generator: torch.Generator,
    ) -> list[dict[str, torch.Tensor]]:
        """BP+rPP: per set and layer, random patterns whose zero count makes the layer's
        non-zeros nearest to the target set's (so the comparison is at equal sparsity)."""
        out = []
        R, C = self.config.block_rows, self.config.block_cols
        family, slots = self.opts.family, self.opts.slots
        steps = C if family == "block-column" else R * C
        for target in target_sets:
            masks = {}
            for name, w in weights.items():
                goal = int(target[name].sum())
                best, best_gap = bp[name], abs(int(bp[name].sum()) - goal)
                lo, hi = 1, steps - 1  # binary search on the zeros per pattern
                while lo <= hi:
                    n = (lo + hi) // 2
                    pats = random_patterns(R, C, [n / steps], slots, family, generator)[0]
                    m = bp[name] & assign_patterns(w * bp[name], pats)[1]
                    kept = int(m.sum())
                    if abs(kept - goal) < best_gap:
                        best, best_gap = m, abs(kept - goal)
                    if kept > goal:
                        lo = n + 1
                    elif kept < goal:
                        hi = n - 1
                    else:
                        break
                masks[name] = best
            out.append(masks)
        return out
