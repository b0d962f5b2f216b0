"""The ``oracle`` policy: the best fixed level -> variant table, chosen with hindsight.

Definition: among all tables that give each level the governor can reach one variant that
meets that level's deadline (or any variant, where none does), the oracle takes the one
that maximises the accuracy-weighted count of completed inferences over the whole
discharge, sum over variants of accuracy x inferences (the plain count when a variant has
no accuracy), under the same governor, battery, workload and switch costs. Every such
table is simulated in ``fast`` mode (exhaustive search, up to 4096 tables; beyond that,
coordinate ascent from RT3's table). Ties go to the table listed first, variants being
listed from most to least accurate. Because sparser variants spend less energy per
inference, the oracle can beat RT3's "most accurate that meets the deadline" rule.

For the ideal battery and a continuous workload this is the optimum over every schedule,
not just fixed tables: each level's energy budget is one linear constraint, so the best
use of it puts all of it on the variant with the most accuracy per joule (a test checks
the oracle against that closed form). With KiBaM or Thevenin, a schedule that mixes
variants within a level could in principle do marginally better; the oracle does not
search those.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from simulator.device import Device
from simulator.policies import by_accuracy, deadline_s, rt3_choice

MAX_TABLES = 4096


def weighted_inferences(device: Device, per_variant: dict[str, int]) -> float:
    """The oracle's score of a discharge: sum of accuracy x completed inferences over its
    variants (a variant without accuracy counts 1.0 per inference)."""
    variant = device.variant
    return sum(
        n * (1.0 if variant(v).accuracy is None else variant(v).accuracy)
        for v, n in per_variant.items()
    )


def candidates(device: Device, khz: int, workload_deadline_s: float | None) -> list[str]:
    """Variants allowed at ``khz``: those meeting the deadline, else all."""
    ranked = by_accuracy(device.variants)
    limit = deadline_s(device, khz, workload_deadline_s)
    ok = [v.name for v in ranked if limit is None or v.latency(khz) <= limit]
    return ok or [v.name for v in ranked]


def oracle_table(
    device: Device,
    levels: list[int],
    workload_deadline_s: float | None,
    score: Callable[[dict[int, str]], float],
) -> dict[int, str]:
    """The table that maximises ``score`` (accuracy-weighted inferences)."""
    options = [candidates(device, k, workload_deadline_s) for k in levels]
    total = 1
    for o in options:
        total *= len(o)
    if total <= MAX_TABLES:
        best, best_score = None, -1.0
        for combo in itertools.product(*options):
            table = dict(zip(levels, combo, strict=True))
            s = score(table)
            if s > best_score:
                best, best_score = table, s
        return best
    table = {k: rt3_choice(device, k, workload_deadline_s)[0].name for k in levels}
    best_score = score(table)
    improved = True
    while improved:
        improved = False
        for k, opts in zip(levels, options, strict=True):
            for name in opts:
                trial = {**table, k: name}
                s = score(trial)
                if s > best_score:
                    table, best_score, improved = trial, s, True
    return table
