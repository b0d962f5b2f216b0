"""A deadline study's plan (the client's side): the bundle and table loaded, the anchors timed,
the grid of deadlines and each point's task; then the timing of the points' sets, each
point's simulation spec, and the JSON document."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.study.grid import (
    GridPoint,
    deadline_grid,
    level_deadlines,
    loose_top_ms,
    timing_constraints,
)
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
    """What the client holds across the study's phases."""

    base: StudyBase
    table: LatencyTable
    table_note: str
    anchor_runs: dict[str, list[float]]
    dense: dict[str, Any]
    dense_sequences: list[float] | None
    constraints: dict[int, float]
    grid: list[GridPoint]
    specs: list[PointSpec]

    def time_points(self, found: list[PointSets]) -> dict[str, list[float]]:
        """Every point's sets timed on this host in one interleaved session (runs in ms,
        host clock, by ``p<index>-<set>``; ``dense`` again, to compare with its anchor)."""
        from lab.study.timing import time_sets

        sets = {f"p{f.index}-{name}": masks for f in found for name, masks in f.masks.items()}
        return time_sets(self.base, self.table, sets)


def _episodes(o: DeadlineStudyOptions, base: StudyBase) -> int:
    recorded = base.bundle.provenance.get("episodes")
    if o.episodes is not None:
        return o.episodes
    return int(recorded) if isinstance(recorded, int) and recorded > 0 else base.budget.episodes


def plan_points(o: DeadlineStudyOptions, work: Path, say: Callable[[str], None]) -> Plan:
    """Load the bundle (``lab.study.setup``), take or measure the latency table, time the
    anchors, score the dense model and lay out the points."""
    from lab.compression.latency.table import TABLE_FILE
    from lab.study.point_search import PointSpec, dense_scores
    from lab.study.setup import load_base
    from lab.study.timing import bundle_table, study_table, time_sets

    table, why = bundle_table(o.bundle, o.threads)
    threads = table.threads if table is not None else (o.threads or 1)
    say("loading the bundle, its data and its candidates")
    base = load_base(str(Path(o.bundle).resolve()), threads)
    used = study_table(base, table, work)
    note = why if used is table else f"measured now ({work / TABLE_FILE}): {why}"
    say("timing the anchors (dense, BP) on this host")
    anchor_runs = time_sets(base, used, {"bp": base.bp.masks})
    say("scoring the dense model on the test split")
    acc, ppl, seqs = dense_scores(base)
    constraints = timing_constraints(base.profile)
    top = max(constraints)
    scaled, dense_top = (
        at_level(median_ms(anchor_runs[n]), used.host_freq_khz, top) for n in ("bp", "dense")
    )
    grid = deadline_grid(scaled, dense_top, loose_top_ms(dense_top, constraints), o.points)
    episodes = _episodes(o, base)
    specs = [
        PointSpec(
            i,
            str(base.path),
            _governor_deadlines(base, g.top_ms, constraints),
            used,
            episodes,
            threads,
        )
        for i, g in enumerate(grid)
    ]
    dense = {"accuracy": acc, "perplexity": ppl}
    return Plan(base, used, note, anchor_runs, dense, seqs, constraints, grid, specs)


def _governor_deadlines(
    base: StudyBase, top_ms: float, constraints: dict[int, float]
) -> tuple[float, ...]:
    """The point's deadlines at the governor's levels, highest frequency first (the order
    ``compress --deadlines MS,MS,MS`` takes)."""
    from lab.compression.search.reward import governor_levels

    at = level_deadlines(top_ms, constraints)
    return tuple(at[lv.freq_khz] for lv in governor_levels(base.profile))


def sim_specs(
    plan: Plan, found: list[PointSets], runs: dict[str, list[float]], o: DeadlineStudyOptions
) -> list[SimSpec]:
    """Each point's simulation: the dense model and BP on their anchor runs, the point's
    sets on theirs, with the test accuracies (and sequences, where every variant has them)."""
    from lab.study.deadlines import host_name
    from lab.study.point_sim import SimSpec, SimVariant

    b = plan.base
    dense_ops = int((b.bundle.reference.get("dense") or {}).get("nonzero_mults") or 0)
    bp_entry = b.bundle.entries["bp"]
    base_profile = b.profile.model_dump(mode="json", exclude_none=True)
    out = []
    for g, f in zip(plan.grid, found, strict=True):
        variants = [
            SimVariant(
                "dense", plan.dense["accuracy"], 0.0, dense_ops, tuple(plan.anchor_runs["dense"])
            ),
            SimVariant(
                "bp",
                f.bp["accuracy"],
                bp_entry.sparsity,
                bp_entry.nonzero_mults,
                tuple(plan.anchor_runs["bp"]),
            ),
            *(
                SimVariant(
                    s["name"],
                    s["accuracy"],
                    s["sparsity"],
                    s["nonzero_mults"],
                    tuple(runs[f"p{f.index}-{s['name']}"]),
                )
                for s in f.sets
            ),
        ]
        seqs = {}
        if plan.dense_sequences is not None and f.sequences:
            seqs = {"dense": plan.dense_sequences, **f.sequences}
        out.append(
            SimSpec(
                f.index,
                base_profile,
                g.top_ms,
                plan.table.host_freq_khz,
                host_name(),
                tuple(variants),
                seqs,
                o.resamples,
                b.opts.seed,
            )
        )
    return out
