"""A deadline study's plan (the client's side): the bundle and its latency table loaded, the
dense model scored, the grid of deadlines and each point's search task; then the points'
sets timed with the dense model and BP, the same grid on those times, and each point's
simulation spec.

The grid is built twice on the same rule (:func:`lab.study.grid.deadline_grid`), once per
unit of time: on the **latency table's** estimates of BP and the dense model (the units the
search compares its sets against, as ``compress`` anchors its deadlines) and on their
**medians timed on the engine** with the points' sets (the units of the simulation). So at
``scaled`` BP meets the top level exactly, and at ``dense-top`` the dense model does, in
each, and nothing the simulation compares was timed in another session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.study.grid import GridPoint, deadline_grid, level_deadlines, timing_constraints
from lab.study.timing import at_level, median_ms

if TYPE_CHECKING:
    from collections.abc import Callable

    from lab.compression.latency.table import LatencyTable
    from lab.study.deadlines import DeadlineStudyOptions
    from lab.study.point_search import PointSets, PointSpec
    from lab.study.point_sim import SimSpec
    from lab.study.setup import StudyBase


@dataclass
class Plan:
    """What the client holds across the study's phases: ``grid`` in the table's units
    (the searches'), ``timed_grid`` in the engine's (the simulations'), once timed."""

    base: StudyBase
    table: LatencyTable
    table_note: str
    dense: dict[str, Any]
    dense_sequences: list[float] | None
    constraints: dict[int, float]
    grid: list[GridPoint]
    specs: list[PointSpec]
    runs: dict[str, list[float]] = field(default_factory=dict)
    timed_grid: list[GridPoint] = field(default_factory=list)

    @property
    def top_khz(self) -> int:
        """The highest level with a timing constraint (the governor's start)."""
        return max(self.constraints)

    def time_points(self, found: list[PointSets], points: int) -> None:
        """Time BP and every point's sets (``p<index>-<set>``) with the dense model, on this
        host, in one interleaved session (``runs``, ms at the host clock), and lay the grid
        on those medians (``timed_grid``)."""
        from lab.study.timing import time_sets

        sets = {f"p{f.index}-{name}": masks for f in found for name, masks in f.masks.items()}
        self.runs = time_sets(self.base, self.table, {"bp": self.base.bp.masks, **sets})
        scaled, dense_top = (
            at_level(median_ms(self.runs[n]), self.table.host_freq_khz, self.top_khz)
            for n in ("bp", "dense")
        )
        by = "the engine's timing with the sets"
        self.timed_grid = deadline_grid(scaled, dense_top, self.constraints, points, by)

    def governor_deadlines(self, top_ms: float) -> tuple[float, ...]:
        """A top-level deadline's deadlines at the governor's levels, highest frequency
        first (the order ``compress --deadlines MS,MS,MS`` takes)."""
        from lab.compression.search.reward import governor_levels

        at = level_deadlines(top_ms, self.constraints)
        return tuple(at[lv.freq_khz] for lv in governor_levels(self.base.profile))


def _episodes(o: DeadlineStudyOptions, base: StudyBase) -> int:
    recorded = base.bundle.provenance.get("episodes")
    if o.episodes is not None:
        return o.episodes
    return int(recorded) if isinstance(recorded, int) and recorded > 0 else base.budget.episodes


def plan_points(o: DeadlineStudyOptions, work: Path, say: Callable[[str], None]) -> Plan:
    """Load the bundle (``lab.study.setup``), take or measure the latency table, score the
    dense model and lay out the points on the table's estimates of BP and the dense model."""
    from lab.compression.latency.table import TABLE_FILE, layer_densities
    from lab.study.point_search import PointSpec, dense_scores
    from lab.study.setup import load_base
    from lab.study.timing import bundle_table, study_table

    table, why = bundle_table(o.bundle, o.threads)
    threads = table.threads if table is not None else (o.threads or 1)
    say("loading the bundle, its data and its candidates")
    base = load_base(str(Path(o.bundle).resolve()), threads)
    used = study_table(base, table, work)
    note = why if used is table else f"measured now ({work / TABLE_FILE}): {why}"
    say("scoring the dense model on the test split")
    acc, ppl, seqs = dense_scores(base)
    constraints = timing_constraints(base.profile)
    top = max(constraints)
    scaled = used.latency_ms(layer_densities(base.bp.masks), top)
    grid = deadline_grid(scaled, used.latency_ms({}, top), constraints, o.points)
    plan = Plan(base, used, note, {"accuracy": acc, "perplexity": ppl}, seqs, constraints,
                grid, [])  # fmt: skip
    rest = (used, _episodes(o, base), threads)
    plan.specs = [
        PointSpec(i, str(base.path), plan.governor_deadlines(g.top_ms), *rest)
        for i, g in enumerate(grid)
    ]
    return plan


def point_variants(
    base: StudyBase, dense_accuracy: float, runs: dict[str, list[float]], f: PointSets
) -> tuple[Any, ...]:
    """A point's variants: the dense model, BP (its mask on the point's backbone) and the
    point's sets, each with its test accuracy and its timed runs (``runs``: ``dense``,
    ``bp`` and ``p<index>-<set>``)."""
    from lab.study.point_sim import SimVariant

    dense_ops = int((base.bundle.reference.get("dense") or {}).get("nonzero_mults") or 0)
    bp = base.bundle.entries["bp"]
    return (
        SimVariant("dense", dense_accuracy, 0.0, dense_ops, tuple(runs["dense"])),
        SimVariant("bp", f.bp["accuracy"], bp.sparsity, bp.nonzero_mults, tuple(runs["bp"])),
        *(
            SimVariant(s["name"], s["accuracy"], s["sparsity"], s["nonzero_mults"],
                       tuple(runs[f"p{f.index}-{s['name']}"]))
            for s in f.sets
        ),
    )  # fmt: skip


def sim_specs(plan: Plan, found: list[PointSets], o: DeadlineStudyOptions) -> list[SimSpec]:
    """Each point's simulation at its deadline on the timed grid, with the test accuracies
    (and sequences, where every variant has them)."""
    from lab.study.deadlines import host_name
    from lab.study.point_sim import SimSpec

    profile = plan.base.profile.model_dump(mode="json", exclude_none=True)
    out = []
    for g, f in zip(plan.timed_grid, found, strict=True):
        seqs = {}
        if plan.dense_sequences is not None and f.sequences:
            seqs = {"dense": plan.dense_sequences, **f.sequences}
        variants = point_variants(plan.base, plan.dense["accuracy"], plan.runs, f)
        out.append(
            SimSpec(f.index, profile, g.top_ms, plan.table.host_freq_khz, host_name(),
                    variants, seqs, o.resamples, plan.base.opts.seed)
        )  # fmt: skip
    return out
