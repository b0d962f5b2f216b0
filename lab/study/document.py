"""A deadline study's JSON document: per point its deadlines, sets, policies and gains; the
anchors, what was re-used and re-run, and the summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.study.summary import summarise
from lab.study.timing import at_level, median_ms

if TYPE_CHECKING:
    from lab.study.plan import Plan
    from lab.study.point_search import PointSets

NO_SEQUENCES = (
    "none: the task does not score per test sequence here, so the intervals resample the "
    "timed runs only (each accuracy is held at its test-split figure)"
)


def _sets(plan: Plan, f: PointSets, deadlines: dict[int, float]) -> dict[str, Any]:
    """The point's chosen sets by level (kHz): their figures, the table's estimate (what
    the search went by), the median timed on the engine, that time at the set's level and
    whether it meets the level's deadline there."""
    out = {}
    for s in f.sets:
        k = s["freq_khz"]
        host = median_ms(plan.runs[f"p{f.index}-{s['name']}"])
        at = at_level(host, plan.table.host_freq_khz, k)
        out[str(k)] = {
            **{n: s[n] for n in ("name", "level", "sparsity", "accuracy", "perplexity")},
            "latency_estimate_ms": s["latency_estimate_ms"],
            "latency_host_ms": host,
            "latency_at_level_ms": at,
            "meets_deadline": at <= deadlines[k],
        }
    return out


def _point(plan: Plan, i: int, f: PointSets, sim: dict[str, Any]) -> dict[str, Any]:
    g = plan.timed_grid[i]
    at = dict(zip(_levels(plan), plan.governor_deadlines(g.top_ms), strict=True))
    searched = dict(zip(_levels(plan), plan.specs[i].deadlines_ms, strict=True))
    return {
        "index": i,
        "anchor": g.anchor,
        "top_deadline_ms": g.top_ms,
        "deadlines_ms": {str(k): ms for k, ms in at.items()},
        "sets": _sets(plan, f, at),
        "bp": {**f.bp, "latency_host_ms": median_ms(plan.runs["bp"])},
        "dense": {**plan.dense, "latency_host_ms": median_ms(plan.runs["dense"])},
        "search": {
            **f.search,
            "deadlines_ms": {str(k): ms for k, ms in searched.items()},
            "wall_s": round(f.wall_s, 2),
        },
        **sim,
    }


def _levels(plan: Plan) -> list[int]:
    from lab.compression.search.reward import governor_levels

    return [lv.freq_khz for lv in governor_levels(plan.base.profile)]


def assemble(
    plan: Plan, found: list[PointSets], sims: list[dict[str, Any]], wall_s: float
) -> dict[str, Any]:
    """The study's JSON document."""
    from lab.study.deadlines import RERUN, REUSED, host_name

    points = [_point(plan, i, f, s) for i, (f, s) in enumerate(zip(found, sims, strict=True))]
    sequences = bool(plan.dense_sequences) and all(f.sequences for f in found)
    return {
        "bundle": str(plan.base.path),
        "profile": plan.base.profile.name,
        "host": host_name(),
        "host_khz": plan.table.host_freq_khz,
        "threads": plan.table.threads,
        "latency_table": plan.table_note,
        "anchors_ms": {g.anchor: g.top_ms for g in plan.timed_grid if g.anchor},
        "anchors_ms_by_the_table": {g.anchor: g.top_ms for g in plan.grid if g.anchor},
        "accuracy_samples": "per test sequence" if sequences else NO_SEQUENCES,
        "start": plan.base.start,
        "reused": REUSED,
        "rerun": RERUN,
        "points": points,
        "summary": summarise(points),
        "wall_s": round(wall_s, 1),
    }
