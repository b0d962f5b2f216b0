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


def _sets(plan: Plan, f: PointSets, runs: dict[str, list[float]], dl: dict[int, float]) -> dict:
    """The point's chosen sets by level (kHz), with their figures and times."""
    khz0 = plan.table.host_freq_khz
    out = {}
    for s in f.sets:
        k = s["freq_khz"]
        host = median_ms(runs[f"p{f.index}-{s['name']}"])
        at = at_level(host, khz0, k)
        out[str(k)] = {
            **{n: s[n] for n in ("name", "level", "sparsity", "accuracy", "perplexity")},
            "latency_estimate_ms": s["latency_estimate_ms"],
            "latency_host_ms": host,
            "latency_at_level_ms": at,
            "meets_deadline": at <= dl[k],
        }
    return out


def _point(plan: Plan, i: int, f: PointSets, runs: dict, sim: dict) -> dict[str, Any]:
    g = plan.grid[i]
    dl = dict(zip(_levels(plan), plan.specs[i].deadlines_ms, strict=True))
    return {
        "index": i,
        "anchor": g.anchor,
        "top_deadline_ms": g.top_ms,
        "deadlines_ms": {str(k): ms for k, ms in dl.items()},
        "sets": _sets(plan, f, runs, dl),
        "bp": {**f.bp, "latency_host_ms": median_ms(plan.anchor_runs["bp"])},
        "dense": {**plan.dense, "latency_host_ms": median_ms(plan.anchor_runs["dense"])},
        "search": {**f.search, "wall_s": round(f.wall_s, 2)},
        **sim,
    }


def _levels(plan: Plan) -> list[int]:
    from lab.compression.search.reward import governor_levels

    return [lv.freq_khz for lv in governor_levels(plan.base.profile)]


def assemble(
    plan: Plan,
    found: list[PointSets],
    runs: dict[str, list[float]],
    sims: list[dict],
    wall_s: float,
) -> dict[str, Any]:
    """The study's JSON document."""
    from lab.study.deadlines import RERUN, REUSED, host_name

    points = [_point(plan, i, f, runs, s) for i, (f, s) in enumerate(zip(found, sims, strict=True))]
    anchors = {g.anchor: g.top_ms for g in plan.grid if g.anchor}
    sequences = bool(plan.dense_sequences) and all(f.sequences for f in found)
    dense_again = median_ms(runs["dense"])
    dense_anchor = median_ms(plan.anchor_runs["dense"])
    return {
        "bundle": str(plan.base.path),
        "profile": plan.base.profile.name,
        "host": host_name(),
        "host_khz": plan.table.host_freq_khz,
        "threads": plan.table.threads,
        "latency_table": plan.table_note,
        "anchors_ms": anchors,
        "anchor_timing": {
            "what": "median of the runs timed end to end on the engine before the searches; "
            "the dense model's and BP's latencies in every point's profile",
            "dense_host_ms": dense_anchor,
            "dense_host_ms_with_the_sets": dense_again,
            "drift": dense_again / dense_anchor,
        },
        "accuracy_samples": "per test sequence" if sequences else NO_SEQUENCES,
        "reused": REUSED,
        "rerun": RERUN,
        "points": points,
        "summary": summarise(points),
        "wall_s": round(wall_s, 1),
    }
